// Rate limits: policy, rule and key-record limits, each its own counter per token; the tightest answers.
import { z } from 'zod';
import { MAX_WINDOW_MS, type RateLimitCheck, type RateLimitResult, type RateLimitRule } from '../leaf/store.js';
import { parseDuration, positiveDurationSchema } from '../leaf/duration.js';
import type { ReasonCode } from '../leaf/types.js';
import { defineCheck, isPromiseLike, type CheckContext, type CheckResult } from './check.js';

/** A rate limit (`{ limit, window }`): the policy's, a rule's and a key record's all use this one schema. */
// Bounded as stores bound them (zod's int() already stops at 2^53 − 1): a window past 100 years would make every
// request a 503.
export const rateLimitSchema = z.strictObject({
  limit: z.number().int().positive(),
  window: positiveDurationSchema.refine((w) => (parseDuration(w) ?? 0) <= MAX_WINDOW_MS, 'expected a window of at most 100 years'),
});

/** RateLimit-* (and on refusal Retry-After) headers for a consume result: the counter with the least room. */
export function rateLimitHeaders(result: RateLimitResult, headers: Record<string, string>): void {
  let tightest = result.limits[0];
  for (const l of result.limits) if (tightest && l.remaining < tightest.remaining) tightest = l;
  if (!tightest) return;
  headers['RateLimit-Limit'] = String(tightest.limit);
  headers['RateLimit-Remaining'] = String(result.allowed ? tightest.remaining : 0);
  headers['RateLimit-Reset'] = String(Math.max(0, Math.ceil(tightest.resetMs / 1000)));
  if (!result.allowed) headers['Retry-After'] = String(Math.max(1, Math.ceil(result.retryAfterMs / 1000)));
}

/** A compiled limit with its counter name. */
export function compileRateLimit(name: string, limit: number, windowMs: number): RateLimitCheck {
  // Stores count in whole milliseconds (exact integer GCRA): a fractional window ('1.5ms') is rounded up, never down.
  return Object.freeze({ name, limit, windowMs: Math.ceil(windowMs) });
}

/** The policy's and a rule's `rateLimit`. */
export interface RateLimitSlice {
  /** A per-token rate limit: for every request (policy), or for the rule's requests, counted apart from the policy's (rule). */
  rateLimit?: RateLimitRule;
}

/**
 * Rate limits (`rate.limited`): the policy's, the rule's and the key record's, each its own counter per token,
 * all spent in one store call so that a refused request spends none of them.
 */
export const rateLimitCheck = defineCheck<RateLimitSlice, RateLimitSlice, RateLimitRule, RateLimitCheck>({
  name: 'rateLimit',
  phase: 'quota',
  order: 10,
  policyKey: 'rateLimit',
  ruleKey: 'rateLimit',
  recordKey: 'rateLimit',
  policySchema: rateLimitSchema,
  // Counter names: 'policy', 'rule:<hash of the rule name>', 'key' (see CompileEnv.scope).
  compile: (r, env) => compileRateLimit(env.scope, r.limit, parseDuration(r.window) as number),
  check: (ctx, limit) => consumeAll(ctx, [limit], false),
  checkAll: consumeAll,
});

function consumeAll(ctx: CheckContext, limits: readonly RateLimitCheck[], trial: boolean): CheckResult {
  const token = ctx.token;
  if (!token || limits.length === 0) return undefined;
  const answer = ctx.store.consume(token.info.id, limits, ctx.nowMs);
  const decide = (result: RateLimitResult): ReasonCode | undefined => {
    // A trialled limit is reported, never shown to the client as its budget.
    if (!trial) rateLimitHeaders(result, ctx.responseHeaders);
    return result.allowed ? undefined : 'rate.limited';
  };
  return isPromiseLike(answer) ? Promise.resolve(answer).then(decide) : decide(answer);
}
