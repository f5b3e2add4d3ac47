// Limits before authentication: a rate limit per client IP, applied before the token is read, so floods of
// unauthenticated requests, key guessing and failed-auth storms are throttled in process, with no store call
// and no signature check per attempt. What apps otherwise add express-rate-limit in front of the guard for.
import { z } from 'zod';
import { parseDuration, positiveDurationSchema, type Duration } from '../leaf/duration.js';
import type { ReasonCode } from '../leaf/types.js';
import { defineCheck, type CheckContext } from './check.js';

/** The policy's `preAuthLimit`. */
export interface PreAuthLimitPolicy {
  /** Requests (or, with `failedAuth`, failed authentications) allowed per client per window. */
  limit: number;
  /** The window, e.g. `'1m'`. */
  window: Duration;
  /** What a client is: its IP as resolved after `trustProxy`. Default: `'ip'`. */
  by?: 'ip';
  /**
   * Count only failed authentications (a malformed, unknown or forged token): clients that authenticate
   * are never slowed, a client that keeps failing is refused (429) before its next attempt is looked at.
   * Default: `false` (every request counts).
   */
  failedAuth?: boolean;
  /** Most clients tracked at once (memory bound); beyond it the least recently seen is forgotten. Default: 10 000. */
  maxClients?: number;
}

/** The policy's `preAuthLimit` slice. */
export interface PreAuthLimitPolicySlice {
  /**
   * A rate limit per client IP applied before authentication, kept in process (no store call): answers 429
   * `rate.limited` with `RateLimit-Policy`, `RateLimit` (IETF draft), `RateLimit-Limit/Remaining/Reset` and
   * `Retry-After`. Default: none.
   * @example preAuthLimit: { limit: 100, window: '1m' }
   */
  preAuthLimit?: PreAuthLimitPolicy;
}

/** The `preAuthLimit` schema. */
export const preAuthLimitSchema = z.strictObject({
  limit: z.number().int().positive().max(1_000_000),
  window: positiveDurationSchema.refine((w) => (parseDuration(w) as number) <= 86_400_000, 'expected at most a day'),
  by: z.literal('ip').optional(),
  failedAuth: z.boolean().optional(),
  maxClients: z.number().int().min(1).max(10_000_000).optional(),
});

/** One client's theoretical arrival time: `base + t / limit` ms (integers: no float drift over a burst). */
interface Tat {
  base: number;
  t: number;
}

/** An in-process GCRA limiter over a bounded map of clients. */
export class PreAuthLimiter {
  private readonly clients = new Map<string, Tat>();
  private readonly windowMs: number;
  private readonly tolerance: number;
  readonly policyHeader: string;

  constructor(readonly config: Required<Pick<PreAuthLimitPolicy, 'limit' | 'failedAuth' | 'maxClients'>> & { windowMs: number }) {
    this.windowMs = Math.max(1, Math.ceil(config.windowMs));
    // In units of 1/limit ms: the TAT may run at most one window ahead of now.
    this.tolerance = this.windowMs * config.limit;
    this.policyHeader = `"preauth";q=${config.limit};w=${Math.max(1, Math.ceil(this.windowMs / 1000))}`;
  }

  /** Charges one request for `key` at `now` (when `charge`), or only looks; returns whether it is within the limit. */
  step(key: string, now: number, charge: boolean, headers: Record<string, string> | undefined): boolean {
    const { limit } = this.config;
    const known = this.clients.get(key);
    // Re-inserted below: the map's order is least recently seen first.
    if (known !== undefined) this.clients.delete(key);
    const tat = known === undefined || known.base + known.t / limit <= now ? { base: now, t: 0 } : known;
    const nowU = (now - tat.base) * limit;
    const from = Math.max(tat.t, nowU);
    const next = from + this.windowMs;
    const allowed = next - nowU <= this.tolerance;
    if (charge && allowed) tat.t = next;
    // Rebase so the numbers stay small under steady traffic.
    const whole = Math.floor(Math.min(tat.t, nowU) / limit);
    if (whole > 0) {
      tat.base += whole;
      tat.t -= whole * limit;
    }
    // A look at a client with no history stores nothing (failedAuth: clients that authenticate cost no memory).
    if (charge || tat.t > 0) this.clients.set(key, tat);
    if (this.clients.size > this.config.maxClients) {
      const oldest = this.clients.keys().next().value;
      if (oldest !== undefined) this.clients.delete(oldest);
    }
    if (headers) {
      const used = Math.max(tat.t, (now - tat.base) * limit) - (now - tat.base) * limit;
      const remaining = allowed ? Math.max(0, Math.floor((this.tolerance - used) / this.windowMs)) : 0;
      const resetS = Math.max(0, Math.ceil(used / limit / 1000));
      headers['RateLimit-Policy'] = this.policyHeader;
      headers['RateLimit'] = `"preauth";r=${remaining};t=${resetS}`;
      if (!allowed) {
        headers['RateLimit-Limit'] = String(limit);
        headers['RateLimit-Remaining'] = '0';
        headers['RateLimit-Reset'] = String(resetS);
        headers['Retry-After'] = String(Math.max(1, Math.ceil((next - nowU - this.tolerance) / limit / 1000)));
      }
    }
    return allowed;
  }
}

const keyOf = (ctx: CheckContext): string => ctx.ip?.text ?? 'unknown';

// Failed authentications: unreadable, unknown or forged credentials. Not a request without any (a client
// learning that it needs one), nor a revoked or expired real token.
const FAILED_AUTH: ReadonlySet<ReasonCode> = new Set<ReasonCode>(['token.malformed', 'token.invalid', 'request.malformed']);

/** Per-IP limits before authentication (`rate.limited`, 429). */
export const preAuthLimitCheck = defineCheck<PreAuthLimitPolicySlice, object, PreAuthLimitPolicy, PreAuthLimiter>({
  name: 'preAuthLimit',
  phase: 'pre-auth',
  order: 10,
  policyKey: 'preAuthLimit',
  policySchema: preAuthLimitSchema,
  compile: (p) => new PreAuthLimiter({ limit: p.limit, windowMs: parseDuration(p.window) as number, failedAuth: p.failedAuth ?? false, maxClients: p.maxClients ?? 10_000 }),
  check(ctx, limiter) {
    const allowed = limiter.step(keyOf(ctx), ctx.nowMs, !limiter.config.failedAuth, ctx.responseHeaders);
    if (allowed) return undefined;
    ctx.detail = `more than ${limiter.config.limit} ${limiter.config.failedAuth ? 'failed authentications' : 'requests'} from this client before authentication`;
    return 'rate.limited';
  },
  onRefusal(ctx, limiter, reason) {
    if (limiter.config.failedAuth && FAILED_AUTH.has(reason)) limiter.step(keyOf(ctx), ctx.nowMs, true, undefined);
  },
});
