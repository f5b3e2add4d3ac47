// Step-up (RFC 9470): a route may demand a recent authentication (auth_time), methods (amr) or a level (acr).
import { z } from 'zod';
import { durationSchema, parseDuration, type Duration } from '../leaf/duration.js';
import { REASONS } from '../leaf/reasons.js';
import { defineCheck } from './check.js';
import { SCOPE_TOKEN_RE } from './scopes.js';

/** A compiled step-up requirement. */
export interface StepUpRequirement {
  /** Longest accepted time since `auth_time`, seconds. */
  maxAgeS?: number;
  /** Every one of these must be in the token's `amr`. */
  amr?: readonly string[];
  /** The token's `acr` must be one of these. */
  acr?: readonly string[];
  /** Ready-made WWW-Authenticate parameters (`max_age="600", acr_values="…"`), built at start-up. */
  challenge: string;
}

/** Authentication facts of a token, as claims. */
export interface AuthenticationFacts {
  authTime?: number;
  amr?: readonly string[];
  acr?: string;
}

/** Builds the requirement and its challenge parameters. */
export function compileStepUp(rule: { maxAgeMs?: number; amr?: readonly string[]; acr?: readonly string[] }): StepUpRequirement {
  const req: StepUpRequirement = { challenge: '' };
  const params: string[] = [];
  if (rule.maxAgeMs !== undefined) {
    req.maxAgeS = Math.floor(rule.maxAgeMs / 1000);
    params.push(`max_age="${req.maxAgeS}"`);
  }
  if (rule.amr?.length) req.amr = [...rule.amr];
  if (rule.acr?.length) {
    req.acr = [...rule.acr];
    params.push(`acr_values="${req.acr.join(' ')}"`);
  }
  req.challenge = params.join(', ');
  return req;
}

/** Whether the token's authentication satisfies the requirement at `nowS` (seconds). */
export function satisfiesStepUp(req: StepUpRequirement, facts: AuthenticationFacts, nowS: number, toleranceS: number): boolean {
  if (req.maxAgeS !== undefined) {
    if (facts.authTime === undefined || facts.authTime > nowS + toleranceS) return false;
    if (nowS - facts.authTime - toleranceS > req.maxAgeS) return false;
  }
  if (req.amr) {
    if (!facts.amr) return false;
    for (const m of req.amr) if (!facts.amr.includes(m)) return false;
  }
  if (req.acr && (facts.acr === undefined || !req.acr.includes(facts.acr))) return false;
  return true;
}

/** Policy form of a step-up requirement (a rule's `stepUp`, risk's `stepUp`). */
export interface StepUpPolicy {
  maxAge?: Duration;
  amr?: readonly string[];
  acr?: readonly string[];
}

// acr and amr values go into the step-up challenge header: same shape as scope tokens.
const challengeValue = (what: string) => z.string().regex(SCOPE_TOKEN_RE, `expected an ${what} value (printable, no spaces, quotes or backslashes)`);

/** A step-up requirement: at least one of maxAge, amr or acr. */
export const stepUpSchema = z
  .strictObject({
    maxAge: durationSchema.optional(),
    amr: z.array(challengeValue('amr')).min(1).optional(),
    acr: z.array(challengeValue('acr')).min(1).optional(),
  })
  .refine((v) => v.maxAge !== undefined || v.amr !== undefined || v.acr !== undefined, 'expected at least one of maxAge, amr or acr (an empty step-up is always satisfied)');

/** Compiles the policy form of a step-up requirement. */
export function compileStepUpPolicy(s: StepUpPolicy): StepUpRequirement {
  return compileStepUp({
    ...(s.maxAge !== undefined && { maxAgeMs: parseDuration(s.maxAge) as number }),
    ...(s.amr && { amr: s.amr }),
    ...(s.acr && { acr: s.acr }),
  });
}

/** The WWW-Authenticate parameters of a step-up refusal for a requirement. */
export function stepUpChallengeParams(req: StepUpRequirement): string {
  return `error="insufficient_user_authentication", error_description="${REASONS['step_up.required'].title}"${req.challenge ? `, ${req.challenge}` : ''}`;
}

/** A rule's `stepUp`. */
export interface StepUpRuleSlice {
  /** Demand recent or stronger authentication (RFC 9470). */
  stepUp?: StepUpPolicy;
}

/** Step-up of a rule (`step_up.required`, with `max_age` / `acr_values` in the challenge). */
export const stepUpCheck = defineCheck<object, StepUpRuleSlice, StepUpPolicy, StepUpRequirement>({
  name: 'stepUp',
  phase: 'constraints',
  order: 40,
  ruleKey: 'stepUp',
  ruleSchema: stepUpSchema,
  compile: compileStepUpPolicy,
  check: (ctx, req) => (ctx.token && satisfiesStepUp(req, ctx.token.facts, Math.floor(ctx.nowMs / 1000), ctx.clockToleranceS) ? undefined : 'step_up.required'),
  challengeReason: 'step_up.required',
  challenge: stepUpChallengeParams,
});
