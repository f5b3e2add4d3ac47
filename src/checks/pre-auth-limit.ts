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
interface Look {
  readonly key: string;
  readonly rate: Rate;
  readonly tat: Tat;
  readonly nowU: number;
  readonly next: number;
  readonly allowed: boolean;
}

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

// A claimed subject longer than this counts as none (the IP alone): it bounds the memory one client can make us keep.
const MAX_SUBJECT_CHARS = 256;

/** An in-process GCRA limiter over a bounded map of clients (IPs, and with `'ip+subject'` also IP and subject pairs). */
export class PreAuthLimiter {
  // Keys: an IP key (no space in it), or `<IP key> <claimed subject>` (the first space ends the IP).
  private readonly clients = new Map<string, Tat>();
  // Every look re-inserts its client, so deleted entries pile up at the front of the Map: a cursor passes them once.
  private readonly leastRecent = new EvictionCursor(this.clients);
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
  ipKey(ip: ParsedIp | null): string {
    if (ip === null) return 'unknown';
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
   * Charges one request of the client (when `charge`), or only looks; returns whether it is within the limit. With
   * `'ip+subject'`, `subject` is what the token claims (undefined: none); both buckets are charged or neither is.
   * `readOnly` (a dry run) keeps nothing at all: a look at a later `now` would otherwise drop a client's history.
   */
  step(ipKey: string, subject: string | undefined, now: number, charge: boolean, headers: Record<string, string> | undefined, readOnly = false): boolean {
    const ipLook = this.look(ipKey, this.ip, now);
    if (this.pair === undefined) {
      if (!readOnly) this.keep(ipLook, charge && ipLook.allowed, charge);
      if (headers) this.headers([ipLook], now, headers);
      return ipLook.allowed;
    }
    const pairLook = this.look(`${ipKey} ${subject ?? ''}`, this.pair, now);
    const allowed = ipLook.allowed && pairLook.allowed;
    if (!readOnly) {
      this.keep(ipLook, charge && allowed, charge);
      this.keep(pairLook, charge && allowed, charge);
    }
    if (headers) this.headers([pairLook, ipLook], now, headers);
    return allowed;
  }

  private look(key: string, rate: Rate, now: number): Look {
    const known = this.clients.get(key);
    const tat = known === undefined || known.base + known.t / rate.limit <= now ? { base: now, t: 0 } : known;
    const nowU = (now - tat.base) * rate.limit;
    const next = Math.max(tat.t, nowU) + rate.windowMs;
    return { key, rate, tat, nowU, next, allowed: next - nowU <= rate.tolerance };
  }

  private keep(l: Look, spend: boolean, charge: boolean): void {
    const { tat, rate } = l;
    if (spend) tat.t = l.next;
    // Rebase so the numbers stay small under steady traffic.
    const whole = Math.floor(Math.min(tat.t, l.nowU) / rate.limit);
    if (whole > 0) {
      tat.base += whole;
      tat.t -= whole * rate.limit;
    }
    // Re-inserted: the map's order is least recently seen first. A look at a client with no history stores nothing
    // (failedAuth: clients that authenticate cost no memory).
    this.clients.delete(l.key);
    if (charge || tat.t > 0) this.clients.set(l.key, tat);
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

// base64url, as the payload segment of a compact JWS is written.
const B64URL_RE = /^[A-Za-z0-9_-]+$/;

/** The end (one past the closing quote) of the JSON string that starts at `i`, or -1 when it does not end. */
function stringEnd(s: string, i: number): number {
  for (let j = i + 1; j < s.length; j++) {
    const c = s.charCodeAt(j);
    if (c === 0x5c) j++;
    else if (c === 0x22) return j + 1;
  }
  return -1;
}

/** The JSON string value after the key that ends at `end` (`"key": "value"`): the value and where it ends, or undefined. */
function stringValue(json: string, end: number): { value: string; next: number } | undefined {
  let j = end;
  while (json.charCodeAt(j) <= 0x20 && j < json.length) j++;
  if (json.charCodeAt(j) !== 0x3a) return undefined;
  j++;
  while (json.charCodeAt(j) <= 0x20 && j < json.length) j++;
  if (json.charCodeAt(j) !== 0x22) return undefined;
  const next = stringEnd(json, j);
  if (next === -1 || next - j - 2 > MAX_SUBJECT_CHARS * 6) return undefined;
  const raw = json.slice(j, next);
  if (!raw.includes('\\')) return { value: raw.slice(1, -1), next };
  try {
    return { value: JSON.parse(raw) as string, next };
  } catch {
    return undefined;
  }
}

/**
 * The top-level `sub` and `iss` of a JWT payload's JSON text, read in one pass without parsing the document: nested
 * ones (an `act` claim's) are skipped, only string values count. Untrusted input: whatever it yields only picks one
 * of the sender's own IP's buckets, so a forger gains nothing by confusing it.
 */
function topLevelSubject(json: string): { sub: string | undefined; iss: string | undefined } | undefined {
  let depth = 0;
  let sub: string | undefined;
  let iss: string | undefined;
  for (let i = 0; i < json.length; ) {
    const c = json.charCodeAt(i);
    if (c === 0x22) {
      const end = stringEnd(json, i);
      if (end === -1) return undefined;
      const isSub = depth === 1 && end - i === 5 && json.startsWith('"sub"', i);
      if (isSub || (depth === 1 && end - i === 5 && json.startsWith('"iss"', i))) {
        const v = stringValue(json, end);
        if (v === undefined) return undefined;
        if (isSub) sub ??= v.value;
        else iss ??= v.value;
        if (sub !== undefined && iss !== undefined) break;
        i = v.next;
        continue;
      }
      i = end;
      continue;
    }
    if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) depth--;
    i++;
  }
  return { sub, iss };
}

/**
 * The subject the request's token claims, unverified: a JWT's `sub` (with its `iss`, when it has one); undefined for
 * an API key, an opaque or unreadable token, several Authorization headers, or a token longer than `maxTokenBytes`
 * (checked before anything is decoded, so the work per request stays bounded by the policy's own token size cap).
 */
export function claimedSubject(headers: CheckContext['headers'], maxTokenBytes: number): string | undefined {
  const value = headers['authorization'];
  if (typeof value !== 'string' || value.length > maxTokenBytes + 16) return undefined;
  const sp = value.indexOf(' ');
  if (sp === -1) return undefined;
  const scheme = value.slice(0, sp).toLowerCase();
  if (scheme !== 'bearer' && scheme !== 'dpop') return undefined;
  const d1 = value.indexOf('.', sp + 1);
  const d2 = d1 === -1 ? -1 : value.indexOf('.', d1 + 1);
  // A compact JWS has exactly three segments (a JWE has five: its payload is not readable anyway).
  if (d2 === -1 || value.indexOf('.', d2 + 1) !== -1 || d1 === sp + 1) return undefined;
  const payload = value.slice(d1 + 1, d2);
  if (!B64URL_RE.test(payload)) return undefined;
  const claimed = topLevelSubject(Buffer.from(payload, 'base64url').toString('utf8'));
  const sub = claimed?.sub;
  if (sub === undefined || sub === '' || sub.length > MAX_SUBJECT_CHARS) return undefined;
  // With its issuer: two issuers' `alice` (two tenants behind one NAT) are two people, each with its own budget.
  const iss = claimed?.iss;
  return iss === undefined || iss.length > MAX_SUBJECT_CHARS ? sub : `${sub}\u0000${iss}`;
}

const keyOf = (ctx: CheckContext, limiter: PreAuthLimiter): string => limiter.ipKey(ctx.ip);
const subjectOf = (ctx: CheckContext, limiter: PreAuthLimiter): string | undefined =>
  limiter.config.by === 'ip+subject' ? claimedSubject(ctx.headers, limiter.config.maxTokenBytes) : undefined;

// Failed authentications: unreadable, unknown or forged credentials. Not a request without any (a client
// learning that it needs one), nor a revoked or expired real token.
const FAILED_AUTH: ReadonlySet<ReasonCode> = new Set<ReasonCode>(['token.malformed', 'token.invalid', 'request.malformed']);

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
    // A dry run (explain with spend: false) reads the client's budget without spending it, as failedAuth mode does.
    const spends = ctx.store.spends;
    const allowed = limiter.step(keyOf(ctx, limiter), subjectOf(ctx, limiter), ctx.nowMs, !limiter.config.failedAuth && spends, ctx.responseHeaders, !spends);
    if (allowed) return undefined;
    const what = limiter.config.failedAuth ? 'failed authentications' : 'requests';
    ctx.detail =
      limiter.config.by === 'ip'
        ? `more than ${limiter.config.limit} ${what} from this client before authentication`
        : `more than ${limiter.config.limit} ${what} from this client for the subject its token claims, or ${limiter.config.ipLimit} for all its subjects, before authentication`;
    return 'rate.limited';
  },
  onRefusal(ctx, limiter, reason) {
    if (limiter.config.failedAuth && ctx.store.spends && FAILED_AUTH.has(reason)) limiter.step(keyOf(ctx, limiter), subjectOf(ctx, limiter), ctx.nowMs, true, undefined);
  },
});
