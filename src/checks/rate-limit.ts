// Rate limits: policy, rule and key-record limits, each its own counter per token (or per verified subject, shared by
// every token of it); the tightest answers.
import { z } from 'zod';
import { MAX_WINDOW_MS, type RateLimitCheck, type RateLimitResult, type RateLimitRule, type RateLimitState } from '../leaf/store.js';
import { parseDuration, positiveDurationSchema } from '../leaf/duration.js';
import type { ReasonCode } from '../leaf/types.js';
import { defineCheck, isPromiseLike, type CheckContext, type CheckResult, type CheckStore } from './check.js';

/** A rate limit (`{ limit, window, by? }`): the policy's, a rule's and a key record's all use this one schema. */
// Bounded as stores bound them (zod's int() already stops at 2^53 − 1): a window past 100 years would make every
// request a 503.
export const rateLimitSchema = z.strictObject({
  limit: z.number().int().positive(),
  window: positiveDurationSchema.refine((w) => (parseDuration(w) ?? 0) <= MAX_WINDOW_MS, 'expected a window of at most 100 years'),
  by: z.enum(['token', 'subject']).optional(),
});

/** At most 15 digits, as RFC 8941 structured-field integers are: a larger limit would make the whole list unreadable. */
const sfInteger = (n: number): number => Math.min(n, 999_999_999_999_999);

// Each compiled limit's RateLimit-Policy item, made once (a key record's limits are compiled once per record).
const policyItems = new WeakMap<RateLimitCheck, string>();
function policyItem(l: RateLimitCheck): string {
  let item = policyItems.get(l);
  if (item === undefined) {
    item = `"${l.name}";q=${sfInteger(l.limit)};w=${Math.max(1, Math.ceil(l.windowMs / 1000))}`;
    policyItems.set(l, item);
  }
  return item;
}

/** Appends to a list-valued header (the pre-auth limit may have written its own quota first). */
const append = (headers: Record<string, string>, name: string, value: string): void => {
  const before = headers[name];
  headers[name] = before === undefined ? value : `${before}, ${value}`;
};

/**
 * The rate-limit headers of a consume result over `limits` (the counters consumed, in the order consumed):
 * `RateLimit-Policy` and `RateLimit` (IETF draft httpapi-ratelimit-headers), named as the counters are (`policy`,
 * `rule:<hash>`, `key`, `s:` before a subject's); the legacy `RateLimit-Limit/Remaining/Reset` of the counter with
 * the least room; and on refusal `Retry-After`. A refused call charged nothing and reports its counters as they
 * stand (the store contract): the refusing ones at 0, the others with what they still have.
 */
export function rateLimitHeaders(result: RateLimitResult, headers: Record<string, string>, limits: readonly RateLimitCheck[]): void {
  let tightest = result.limits[0];
  if (!tightest) return;
  for (const l of result.limits) if (l.remaining < tightest.remaining) tightest = l;
  const resetS = (l: RateLimitState): number => Math.max(0, Math.ceil(l.resetMs / 1000));
  let policy = '';
  let state = '';
  for (let i = 0; i < result.limits.length; i++) {
    const l = result.limits[i] as RateLimitState;
    const compiled = limits[i];
    // A store answers for the counters it was given, in order: an item is written only for a counter named alike.
    if (compiled === undefined || compiled.name !== l.name) continue;
    policy += (policy === '' ? '' : ', ') + policyItem(compiled);
    state += `${state === '' ? '' : ', '}"${l.name}";r=${sfInteger(Math.max(0, Math.floor(l.remaining)))};t=${resetS(l)}`;
  }
  if (policy !== '') append(headers, 'RateLimit-Policy', policy);
  if (state !== '') append(headers, 'RateLimit', state);
  headers['RateLimit-Limit'] = String(tightest.limit);
  headers['RateLimit-Remaining'] = String(result.allowed ? tightest.remaining : 0);
  headers['RateLimit-Reset'] = String(resetS(tightest));
  if (!result.allowed) headers['Retry-After'] = String(Math.max(1, Math.ceil(result.retryAfterMs / 1000)));
}

/** A compiled limit with its counter name. */
export function compileRateLimit(name: string, limit: number, windowMs: number): RateLimitCheck {
  // Stores count in whole milliseconds (exact integer GCRA): a fractional window ('1.5ms') is rounded up, never down.
  return Object.freeze({ name, limit, windowMs: Math.ceil(windowMs) });
}

/**
 * Where a verified subject's counters live in the store: `sub:<subject>` as the counter owner (the store's
 * "token id"), each counter named `s:<scope>`; with several issuer configurations a JWT's subject is counted under its
 * `subjectKey` instead, `isub:<name>:<subject>`, so one tenant's `alice` does not spend another's budget (no `sub:…`
 * owner starts with `isub:`). Token counters are named `policy`, `rule:<hash>` or `key`, never `s:…`, so an (owner,
 * name) pair of a subject can never be a token's, whatever a token id spells.
 */
export const subjectCounterOwner = (subject: string): string => `sub:${subject}`;

// The subject-wide limits, as compiled: their counter names start with `s:` (see subjectCounterOwner).
const bySubject = new WeakSet<RateLimitCheck>();
const isBySubject = (l: RateLimitCheck): boolean => bySubject.has(l);

/** The policy's and a rule's `rateLimit`. */
export interface RateLimitSlice {
  /**
   * A rate limit per token, or with `by: 'subject'` per verified subject (every token of it together, through the
   * store, so every instance shares it): for every request (policy), or for the rule's requests, counted apart from
   * the policy's (rule).
   * @example rateLimit: { limit: 600, window: '1m', by: 'subject' }
   */
  rateLimit?: RateLimitRule;
}

/**
 * Rate limits (`rate.limited`): the policy's, the rule's and the key record's, each its own counter per token (or
 * per verified subject), all spent in one store call so that a refused request spends none of them. Limits by
 * token and by subject on one request take two calls (their counters live under two owners, in two Redis Cluster
 * slots, and the store contract is atomic per owner): the token's first, the subject's only if the token's had
 * room. So a request refused by its token's limit spends nothing, and one refused by its subject's limit has spent
 * only its own token's counters, never the subject's shared budget or another token's.
 */
export const rateLimitCheck = defineCheck<RateLimitSlice, RateLimitSlice, RateLimitRule, RateLimitCheck>({
  name: 'rateLimit',
  phase: 'quota',
  order: 10,
  policyKey: 'rateLimit',
  ruleKey: 'rateLimit',
  recordKey: 'rateLimit',
  policySchema: rateLimitSchema,
  // Counter names: 'policy', 'rule:<hash of the rule name>', 'key' (see CompileEnv.scope); 's:' before them by subject.
  compile: (r, env) => {
    const windowMs = parseDuration(r.window) as number;
    if (r.by !== 'subject') return compileRateLimit(env.scope, r.limit, windowMs);
    const compiled = compileRateLimit(`s:${env.scope}`, r.limit, windowMs);
    bySubject.add(compiled);
    return compiled;
  },
  check: (ctx, limit) => consumeAll(ctx, [limit], false),
  checkAll: consumeAll,
});

function consumeAll(ctx: CheckContext, limits: readonly RateLimitCheck[], trial: boolean): CheckResult {
  const token = ctx.token;
  if (!token || limits.length === 0) return undefined;
  const store = ctx.store;
  if (!store.spends && store.peekRateLimit === undefined) {
    // Without a peek a store counter cannot be read without spending it: a dry run says so rather than guess.
    ctx.skipped = 'not checked: a dry run (explain with spend: false) spends no rate-limit unit, and this store cannot read a counter without one (no peekRateLimit)';
    return undefined;
  }
  const subject = token.info.subject;
  let n = 0;
  for (const l of limits) if (isBySubject(l)) n++;
  // A token without a subject is its own subject: its subject-wide limits count under its id, apart from its token limits.
  // One call (the usual case): its verdict with no closure made for it when the store answers synchronously.
  if (n === 0 || subject === undefined || subject === '') return verdictOf(ctx, trial, consume(store, token.info.id, limits, ctx.nowMs), limits);
  const owner = token.subjectKey ?? subjectCounterOwner(subject);
  if (n === limits.length) return verdictOf(ctx, trial, consume(store, owner, limits, ctx.nowMs), limits);
  // Both kinds: the token's counters first, so a token over its own limit never spends its subject's shared budget
  // (its siblings' room); the subject's only when the token's had room.
  const byToken = limits.filter((l) => !isBySubject(l));
  const bySubj = limits.filter(isBySubject);
  return settle(consume(store, token.info.id, byToken, ctx.nowMs), (first) =>
    first.allowed
      ? settle(consume(store, owner, bySubj, ctx.nowMs), (second) => verdict(ctx, trial, merge(first, second), [...byToken, ...bySubj]))
      : verdict(ctx, trial, first, byToken),
  );
}

/**
 * Spends one unit of each counter (`consume`), or in a dry run peeks at them (what a request would be answered, nothing
 * charged). Called on the store: a request an adapter made has its own, which keeps what it spent (a guard mounted twice).
 */
function consume(store: CheckStore, owner: string, limits: readonly RateLimitCheck[], nowMs: number): RateLimitResult | PromiseLike<RateLimitResult> {
  return store.spends ? store.consume(owner, limits, nowMs) : (store.peekRateLimit as NonNullable<CheckStore['peekRateLimit']>)(owner, limits, nowMs);
}

/** A consume result's verdict, and its headers unless trialled; `consumed`: its counters, in the order consumed. */
function verdict(ctx: CheckContext, trial: boolean, result: RateLimitResult, consumed: readonly RateLimitCheck[]): ReasonCode | undefined {
  // A trialled limit is reported, never shown to the client as its budget.
  if (!trial) rateLimitHeaders(result, ctx.responseHeaders, consumed);
  return result.allowed ? undefined : 'rate.limited';
}

/** `verdict` of a store answer, synchronously when the store answered synchronously. */
function verdictOf(ctx: CheckContext, trial: boolean, answer: RateLimitResult | PromiseLike<RateLimitResult>, consumed: readonly RateLimitCheck[]): CheckResult {
  return isPromiseLike(answer) ? Promise.resolve(answer).then((r) => verdict(ctx, trial, r, consumed)) : verdict(ctx, trial, answer, consumed);
}

/** One result for two calls' counters: allowed when both were. */
function merge(a: RateLimitResult, b: RateLimitResult): RateLimitResult {
  return { allowed: a.allowed && b.allowed, retryAfterMs: Math.max(a.retryAfterMs, b.retryAfterMs), limits: [...a.limits, ...b.limits] };
}

/** Applies `then` to a store answer, synchronously when the store answered synchronously. */
function settle<T>(answer: RateLimitResult | PromiseLike<RateLimitResult>, then: (r: RateLimitResult) => T | PromiseLike<T>): T | PromiseLike<T> {
  return isPromiseLike(answer) ? Promise.resolve(answer).then(then) : then(answer);
}
