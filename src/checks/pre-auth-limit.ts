// Limits before authentication: a rate limit per client IP (or per client IP and the subject its token claims),
// applied before the token is verified, so floods of unauthenticated requests, key guessing and failed-auth storms
// are throttled in process, with no store call and no signature check per attempt. What apps otherwise add
// express-rate-limit in front of the guard for.
import { z } from 'zod';
import { parseDuration, positiveDurationSchema, type Duration } from '../leaf/duration.js';
import { EvictionCursor } from '../leaf/bounded-map.js';
import type { ParsedIp } from '../leaf/ip.js';
import type { ReasonCode } from '../leaf/types.js';
import { defineCheck, type CheckContext } from './check.js';
import { claimedSubject } from './pre-auth-subject.js';

/** The policy's `preAuthLimit`. */
export interface PreAuthLimitPolicy {
  /** Requests (or, with `failedAuth`, failed authentications) allowed per client per window. */
  limit: number;
  /** The window, e.g. `'1m'`. */
  window: Duration;
  /**
   * What a client is. `'ip'`: its IP as resolved after `trustProxy` (IPv6 grouped by `ipv6Subnet`).
   * `'ip+subject'`: its IP and the subject its token claims (a JWT's unverified `sub`; an API key or an unreadable
   * token claims none), each pair allowed `limit`, all of one IP together allowed `ipLimit`: a guesser is throttled
   * per subject it claims and per IP, and can never spend another IP's budget for a subject. There is no
   * `'subject'`: a subject claimed before verification is anyone's to claim (see docs/security.md).
   * Default: `'ip'`.
   */
  by?: 'ip' | 'ip+subject';
  /**
   * With `by: 'ip+subject'`: requests (or failed authentications) allowed per client IP per window, whatever the
   * subjects it claims, so cycling through subjects does not multiply a client's budget. Default: 10 × `limit`.
   */
  ipLimit?: number;
  /**
   * The IPv6 prefix length that makes one client: one subscriber usually holds a whole /64 (often a /56 or /48),
   * and could otherwise rotate through its addresses to escape the limit. 128 counts every address apart.
   * IPv4 addresses are always counted one by one. Default: 64.
   */
  ipv6Subnet?: number;
  /**
   * Count only failed authentications (a malformed, unknown or forged token): a client that keeps failing is refused
   * (429) before its next attempt is looked at. An attempt counts from the moment it arrives until its token is
   * verified (then it is handed back), so concurrent guesses cannot all be looked at before the first one fails: a
   * client's requests still being authenticated at once (an API key looked up in an asynchronous store, say) are held
   * to `limit` too. Default: `false` (every request counts).
   */
  failedAuth?: boolean;
  /** Most clients tracked at once (memory bound); beyond it the least recently seen is forgotten. Default: 10 000. */
  maxClients?: number;
}

/** The policy's `preAuthLimit` slice. */
export interface PreAuthLimitPolicySlice {
  /**
   * A rate limit per client IP (or IP and claimed subject) applied before authentication, kept in process (no
   * store call): answers 429 `rate.limited` with `RateLimit-Policy`, `RateLimit` (IETF draft),
   * `RateLimit-Limit/Remaining/Reset` and `Retry-After`. Default: none.
   * @example preAuthLimit: { limit: 100, window: '1m' }
   */
  preAuthLimit?: PreAuthLimitPolicy;
}

/** Why `by: 'subject'` is refused, and what to use instead (the PolicyError's message at `preAuthLimit.by`). */
export const SUBJECT_BEFORE_VERIFICATION =
  "by: 'subject' is refused: before verification the subject is only what the token claims, so anyone could send forged tokens " +
  "claiming a victim's sub and lock the victim out. Use by: 'ip+subject' (the claimed subject within the client's IP: a forger only " +
  "spends its own IP's budget), or rateLimit: { by: 'subject' } to count a verified subject's requests (docs/security.md)";

const bySchema = z.enum(['ip', 'ip+subject'], {
  error: (issue) => (issue.input === 'subject' ? SUBJECT_BEFORE_VERIFICATION : undefined),
});

/** The `preAuthLimit` schema. */
export const preAuthLimitSchema = z
  .strictObject({
    limit: z.number().int().positive().max(1_000_000),
    window: positiveDurationSchema.refine((w) => (parseDuration(w) as number) <= 86_400_000, 'expected at most a day'),
    by: bySchema.optional(),
    ipLimit: z.number().int().positive().max(10_000_000).optional(),
    ipv6Subnet: z.number().int().min(32).max(128).optional(),
    failedAuth: z.boolean().optional(),
    maxClients: z.number().int().min(1).max(10_000_000).optional(),
  })
  .superRefine((p, ctx) => {
    if (p.ipLimit === undefined) return;
    if (p.by !== 'ip+subject') ctx.addIssue({ code: 'custom', path: ['ipLimit'], message: "only with by: 'ip+subject' (with by: 'ip', limit is the per-IP limit)" });
    else if (p.ipLimit < p.limit) ctx.addIssue({ code: 'custom', path: ['ipLimit'], message: 'expected at least limit: one subject cannot have more room than its whole IP' });
  });

/** One client's theoretical arrival time: `base + t / limit` ms (integers: no float drift over a burst). */
interface Tat {
  base: number;
  t: number;
}

/** One GCRA rate (a limit per window) and how the headers name it. */
interface Rate {
  readonly name: string;
  readonly limit: number;
  readonly windowMs: number;
  /** In units of 1/limit ms: the TAT may run at most one window ahead of now. */
  readonly tolerance: number;
}

/** One bucket as a request finds it: its TAT (a fresh one for a new or lapsed client) and whether one more fits. */
export interface Look {
  readonly key: string;
  readonly rate: Rate;
  readonly tat: Tat;
  readonly nowU: number;
  readonly next: number;
  readonly allowed: boolean;
  /** The request's time, ms. */
  readonly now: number;
  /** With `'ip+subject'`, on the IP's look: the pair's, charged with it. */
  pair: Look | undefined;
}

/** What a step keeps: `'charge'` one request now; `'hold'` (failedAuth) one until it settles; `'look'` (a dry run) none. */
export type Spend = 'charge' | 'hold' | 'look';

/** The compiled `preAuthLimit`. */
export interface PreAuthLimiterConfig {
  limit: number;
  windowMs: number;
  failedAuth: boolean;
  maxClients: number;
  /** Default: `'ip'`. */
  by?: 'ip' | 'ip+subject';
  /** Default: 10 × limit (with `'ip+subject'`). */
  ipLimit?: number;
  /** Default: 64. */
  ipv6Subnet?: number;
  /** The longest token whose claimed subject is read. Default: 8192. */
  maxTokenBytes?: number;
}

/** An in-process GCRA limiter over a bounded map of clients (IPs, and with `'ip+subject'` also IP and subject pairs). */
export class PreAuthLimiter {
  // Keys: an IP key (no space in it), or `<IP key> <claimed subject>` (the first space ends the IP).
  private readonly clients = new Map<string, Tat>();
  // Every look re-inserts its client, so deleted entries pile up at the front of the Map: a cursor passes them once.
  private readonly leastRecent = new EvictionCursor(this.clients);
  // failedAuth: each request's attempt from the moment it passes this limit until its authentication settles. Were it
  // only counted once it failed, a burst of concurrent guesses would all pass before the first one failed.
  private readonly held = new WeakMap<object, Look>();
  // The attempt that passed last, charged only once another request comes before it settles: most settle in the same
  // turn (a cached token, a synchronous store), then none is written at all. Until then this keeps its request alive.
  private pendingRequest: object | undefined = undefined;
  private pendingLook: Look | undefined = undefined;
  private readonly pair: Rate | undefined;
  private readonly ip: Rate;
  readonly policyHeader: string;
  readonly config: Required<PreAuthLimiterConfig>;

  constructor(config: PreAuthLimiterConfig) {
    const by = config.by ?? 'ip';
    this.config = {
      ...config,
      by,
      ipLimit: Math.min(10_000_000, config.ipLimit ?? config.limit * 10),
      ipv6Subnet: config.ipv6Subnet ?? 64,
      maxTokenBytes: config.maxTokenBytes ?? 8192,
    };
    const windowMs = Math.max(1, Math.ceil(config.windowMs));
    const rate = (name: string, limit: number): Rate => ({ name, limit, windowMs, tolerance: windowMs * limit });
    const w = Math.max(1, Math.ceil(windowMs / 1000));
    if (by === 'ip') {
      this.pair = undefined;
      this.ip = rate('preauth', config.limit);
      this.policyHeader = `"preauth";q=${config.limit};w=${w}`;
    } else {
      // Two quotas, both named in RateLimit-Policy: the subject's within its IP ("preauth"), and the IP's ("preauth-ip").
      this.pair = rate('preauth', config.limit);
      this.ip = rate('preauth-ip', this.config.ipLimit);
      this.policyHeader = `"preauth";q=${config.limit};w=${w}, "preauth-ip";q=${this.config.ipLimit};w=${w}`;
    }
  }

  /** The client's IP key: the address, or for IPv6 its `ipv6Subnet` prefix (`2001:db8:0:1::/64`). */
  ipKey(ip: ParsedIp): string {
    const bits = this.config.ipv6Subnet;
    if (ip.v4 || bits >= 128) return ip.text;
    let out = '';
    for (let i = 0; i < 4; i++) {
      const keep = Math.max(0, Math.min(32, bits - i * 32));
      if (keep === 0) break;
      const word = (ip.words[i] as number) & ((0xffffffff << (32 - keep)) >>> 0);
      out += `${(word >>> 16).toString(16)}:${(word & 0xffff).toString(16)}:`;
    }
    return `${out}:/${bits}`;
  }

  /**
   * One request of the client, spent as `spend` says: its look (the IP's, with the pair's) when it is within the limit,
   * undefined when it is not. With `'ip+subject'`, `subject` is what the token claims (undefined: none); both buckets
   * are charged or neither is. A look keeps nothing (a look at a later `now` would otherwise drop a client's history).
   * A held attempt is not spent yet (see `hold`): the budget is shown as it was, the attempt not being a failure yet.
   */
  step(ipKey: string, subject: string | undefined, now: number, spend: Spend, headers: Record<string, string> | undefined): Look | undefined {
    // The attempt passed last counts before anything else is looked at.
    this.commit();
    const ipLook = this.look(ipKey, this.ip, now);
    const pairLook = this.pair === undefined ? undefined : this.look(`${ipKey} ${subject ?? ''}`, this.pair, now);
    const allowed = ipLook.allowed && (pairLook === undefined || pairLook.allowed);
    if (spend !== 'look') {
      const spent = allowed && spend === 'charge';
      this.keep(ipLook, spent);
      if (pairLook) this.keep(pairLook, spent);
    }
    if (headers) this.headers(pairLook === undefined ? [ipLook] : [pairLook, ipLook], now, headers);
    if (!allowed) return undefined;
    ipLook.pair = pairLook;
    return ipLook;
  }

  /** Holds a request's attempt (its look from a `'hold'` step) until `settle`: it counts as a failure would meanwhile. */
  hold(request: object, look: Look): void {
    this.pendingRequest = request;
    this.pendingLook = look;
  }

  /**
   * Ends a request's held attempt, if any (a second call does nothing): kept as a failed authentication (`failed`: then
   * true), or handed back (a pass, or a store failure: the engine tells of one as a `store.unavailable` refusal).
   */
  settle(request: object, failed: boolean): boolean {
    if (request === this.pendingRequest) {
      const look = this.pendingLook as Look;
      this.pendingRequest = this.pendingLook = undefined;
      // Never charged (no other request came meanwhile): only a failure is.
      if (failed) this.charge(look);
      return failed;
    }
    const look = this.held.get(request);
    if (look === undefined) return false;
    this.held.delete(request);
    if (failed) return true;
    this.refund(look, look.now);
    if (look.pair) this.refund(look.pair, look.now);
    return false;
  }

  /** Charges the attempt passed last, if it has not settled: it is held from now on. */
  private commit(): void {
    const request = this.pendingRequest;
    if (request === undefined) return;
    const look = this.pendingLook as Look;
    this.pendingRequest = this.pendingLook = undefined;
    this.held.set(request, this.charge(look));
  }

  /** Spends one request of each bucket a look found, as the bucket is now (others may have spent or refunded since). */
  private charge(l: Look): Look {
    const ip = this.look(l.key, l.rate, l.now);
    this.keep(ip, true);
    if (l.pair) {
      ip.pair = this.look(l.pair.key, l.pair.rate, l.now);
      this.keep(ip.pair, true);
    }
    return ip;
  }

  private refund(l: Look, now: number): void {
    const { tat, rate } = l;
    // Forgotten (maxClients), or lapsed and begun again since: nothing of this request's is left there to hand back.
    if (this.clients.get(l.key) !== tat) return;
    tat.t = Math.max(0, tat.t - rate.windowMs);
    // Nothing left: a client that authenticates costs no memory.
    if (tat.t === 0 || tat.t <= (now - tat.base) * rate.limit) this.clients.delete(l.key);
  }

  private look(key: string, rate: Rate, now: number): Look {
    const known = this.clients.get(key);
    const tat = known === undefined || known.base + known.t / rate.limit <= now ? { base: now, t: 0 } : known;
    const nowU = (now - tat.base) * rate.limit;
    const next = Math.max(tat.t, nowU) + rate.windowMs;
    return { key, rate, tat, nowU, next, allowed: next - nowU <= rate.tolerance, now, pair: undefined };
  }

  private keep(l: Look, spend: boolean): void {
    const { tat, rate } = l;
    if (spend) tat.t = l.next;
    // Rebase so the numbers stay small under steady traffic.
    const whole = Math.floor(Math.min(tat.t, l.nowU) / rate.limit);
    if (whole > 0) {
      tat.base += whole;
      tat.t -= whole * rate.limit;
    }
    // Re-inserted: the map's order is least recently seen first. A client with no history (nothing spent, now or
    // within the window) is not stored.
    this.clients.delete(l.key);
    if (tat.t > 0) this.clients.set(l.key, tat);
    while (this.clients.size > this.config.maxClients) {
      const oldest = this.leastRecent.oldest();
      if (oldest === undefined) break;
      this.clients.delete(oldest);
    }
  }

  private headers(looks: readonly Look[], now: number, headers: Record<string, string>): void {
    let value = '';
    let refused: Look | undefined;
    let retryS = 1;
    let resetOfRefused = 0;
    for (const l of looks) {
      const { tat, rate } = l;
      // After keep(): the TAT may have been charged and rebased, so "now" is re-expressed against its base.
      const nowU = (now - tat.base) * rate.limit;
      const used = Math.max(tat.t, nowU) - nowU;
      const remaining = l.allowed ? Math.max(0, Math.floor((rate.tolerance - used) / rate.windowMs)) : 0;
      const resetS = Math.max(0, Math.ceil(used / rate.limit / 1000));
      value += `${value ? ', ' : ''}"${rate.name}";r=${remaining};t=${resetS}`;
      if (!l.allowed) {
        retryS = Math.max(retryS, Math.ceil((l.next - l.nowU - rate.tolerance) / rate.limit / 1000));
        if (!refused) {
          refused = l;
          resetOfRefused = resetS;
        }
      }
    }
    headers['RateLimit-Policy'] = this.policyHeader;
    headers['RateLimit'] = value;
    if (refused) {
      headers['RateLimit-Limit'] = String(refused.rate.limit);
      headers['RateLimit-Remaining'] = '0';
      headers['RateLimit-Reset'] = String(resetOfRefused);
      headers['Retry-After'] = String(retryS);
    }
  }
}

const subjectOf = (ctx: CheckContext, limiter: PreAuthLimiter): string | undefined =>
  limiter.config.by === 'ip+subject' ? claimedSubject(ctx.headers, limiter.config.maxTokenBytes) : undefined;
/** Passes a request as its earlier evaluation by this guard did, with the budget that one was shown (`state`). */
const answered = (headers: Record<string, string>, policy: string, state: string): undefined => void Object.assign(headers, { 'RateLimit-Policy': policy, RateLimit: state });

// Failed authentications: unreadable, unknown or forged credentials. Not a request without any (a client
// learning that it needs one), nor a revoked or expired real token.
const FAILED_AUTH: ReadonlySet<ReasonCode> = new Set<ReasonCode>(['token.malformed', 'token.invalid', 'request.malformed']);

/** The trace's note for a client without an address. */
const NO_ADDRESS = 'client address unknown: not limited before authentication (one bucket for every such client would let any of them lock the others out)';

/** Limits before authentication, per client IP or per client IP and claimed subject (`rate.limited`, 429). */
export const preAuthLimitCheck = defineCheck<PreAuthLimitPolicySlice, object, PreAuthLimitPolicy, PreAuthLimiter>({
  name: 'preAuthLimit',
  phase: 'pre-auth',
  order: 10,
  policyKey: 'preAuthLimit',
  policySchema: preAuthLimitSchema,
  compile: (p, env) =>
    new PreAuthLimiter({
      limit: p.limit,
      windowMs: parseDuration(p.window) as number,
      failedAuth: p.failedAuth ?? false,
      maxClients: p.maxClients ?? 10_000,
      by: p.by ?? 'ip',
      ...(p.ipLimit !== undefined && { ipLimit: p.ipLimit }),
      ...(p.ipv6Subnet !== undefined && { ipv6Subnet: p.ipv6Subnet }),
      maxTokenBytes: env.maxTokenBytes,
    }),
  check(ctx, limiter) {
    if (ctx.ip === null) {
      ctx.skipped = NO_ADDRESS;
      return undefined;
    }
    // A dry run (explain with spend: false) reads the client's budget without spending it.
    const spend: Spend = !ctx.store.spends ? 'look' : limiter.config.failedAuth ? 'hold' : 'charge';
    const ipKey = limiter.ipKey(ctx.ip);
    // The guard mounted twice on the request's way: one request is one attempt, counted (and answered) by the first.
    const before = ctx.store.recall?.(limiter, ipKey);
    if (typeof before === 'string') return answered(ctx.responseHeaders, limiter.policyHeader, before);
    const look = limiter.step(ipKey, subjectOf(ctx, limiter), ctx.nowMs, spend, ctx.responseHeaders);
    if (look !== undefined) {
      if (spend === 'hold') limiter.hold(ctx, look);
      else if (spend === 'charge') ctx.store.remember?.(limiter, ipKey, ctx.responseHeaders['RateLimit']);
      return undefined;
    }
    const what = limiter.config.failedAuth ? 'failed (or pending) authentications' : 'requests';
    const which = limiter.config.by === 'ip' ? '' : ` for the subject its token claims, or ${limiter.config.ipLimit} for all its subjects,`;
    ctx.detail = `more than ${limiter.config.limit} ${what} from this client${which} before authentication`;
    return 'rate.limited';
  },
  // failedAuth settles each held attempt: an authentication that failed keeps it, any other end hands it back. The
  // hooks are the engine's: refused before a token was verified (onRefusal), verified (prefetch, which starts nothing:
  // called once a token is verified and bound), or any decision after that (decorate, e.g. a proof refused).
  onRefusal(ctx, limiter, reason) {
    // A failure kept counts once a request, however often the guard is mounted on its way (see check).
    if (limiter.settle(ctx, FAILED_AUTH.has(reason)) && ctx.ip !== null) ctx.store.remember?.(limiter, limiter.ipKey(ctx.ip), ctx.responseHeaders['RateLimit']);
  },
  prefetch(ctx, limiter) {
    if (limiter.config.failedAuth) limiter.settle(ctx, false);
    return undefined;
  },
  decorate(ctx, limiter) {
    limiter.settle(ctx, false);
  },
  decorates: (limiter) => limiter.config.failedAuth,
});
