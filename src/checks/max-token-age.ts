// Token age per rule: a rule's `maxTokenAge` refuses tokens issued longer ago than that (short-lived tokens for
// sensitive routes), on top of the policy-wide `jwt.maxTokenAge`.
import { durationSchema, parseDuration, type Duration } from '../leaf/duration.js';
import { defineCheck } from './check.js';

/** A rule's `maxTokenAge`. */
export interface MaxTokenAgeRuleSlice {
  /**
   * Refuse tokens issued longer ago than this on this rule's routes (`token.expired`): a JWT by its `iat` (a JWT
   * without `iat` is refused, nothing proves it fresh), an API key by its `createdAt`. Checked with the clock
   * tolerance. Default: none (only `jwt.maxTokenAge` applies).
   */
  maxTokenAge?: Duration;
}

/** The schema of `maxTokenAge`: any duration above zero. */
export const maxTokenAgeSchema = durationSchema.refine((v) => (parseDuration(v) ?? 0) > 0, 'expected a duration greater than zero');

/** Per-rule token age (`token.expired`). */
export const maxTokenAgeCheck = defineCheck<object, MaxTokenAgeRuleSlice, Duration, number>({
  name: 'maxTokenAge',
  phase: 'constraints',
  // After the other constraints: an old token on a sensitive route is told so only once scopes and place fit.
  order: 60,
  ruleKey: 'maxTokenAge',
  ruleSchema: maxTokenAgeSchema,
  compile: (value) => parseDuration(value) as number,
  check(ctx, maxAgeMs) {
    const issued = ctx.token?.info.issuedAt?.getTime();
    if (issued === undefined || !Number.isFinite(issued)) {
      ctx.detail ??= 'token has no issue time (iat) and this rule sets maxTokenAge';
      return 'token.expired';
    }
    if (ctx.nowMs - issued - ctx.clockToleranceS * 1000 > maxAgeMs) {
      ctx.detail ??= `token issued ${Math.floor((ctx.nowMs - issued) / 1000)}s ago; this rule accepts at most ${Math.floor(maxAgeMs / 1000)}s (maxTokenAge)`;
      return 'token.expired';
    }
    return undefined;
  },
});
