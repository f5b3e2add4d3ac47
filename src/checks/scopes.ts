// Scope requirements: all of a list, any of a list, or both; never a substring or prefix match.
import { z } from 'zod';
import { defineCheck } from './check.js';

/**
 * A scope token (RFC 6749 §3.3): printable ASCII without space, `"` or `\`. The same shape is required of
 * every value that goes into a WWW-Authenticate parameter (acr, amr), so no header can be broken by policy.
 */
export const SCOPE_TOKEN_RE = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

/** Scopes a route requires: every one of `all`, and at least one of `any` when it is not empty. */
export interface ScopeRequirement {
  all: readonly string[];
  any: readonly string[];
}

/** Policy form: an array means "all of these"; an object may combine `all` and `any`. */
export type ScopesPolicy = readonly string[] | { all?: readonly string[]; any?: readonly string[] };

/** Normalises the policy form of a scope requirement. */
export function toScopeRequirement(scopes: ScopesPolicy): ScopeRequirement {
  if (Array.isArray(scopes)) return { all: [...scopes], any: [] };
  const s = scopes as { all?: readonly string[]; any?: readonly string[] };
  return { all: [...(s.all ?? [])], any: [...(s.any ?? [])] };
}

/** Whether a token's scopes satisfy the requirement (exact string matches only). */
export function hasScopes(required: ScopeRequirement, granted: ReadonlySet<string>): boolean {
  for (const s of required.all) if (!granted.has(s)) return false;
  if (required.any.length === 0) return true;
  for (const s of required.any) if (granted.has(s)) return true;
  return false;
}

/** The `scope="…"` value of an insufficient_scope challenge: the scopes that would satisfy the route. */
export function scopeChallengeValue(required: ScopeRequirement): string {
  return [...required.all, ...required.any].join(' ');
}

/** One scope token: what a policy may require and what a key record may grant (one rule for both). */
export const scopeSchema = z.string().regex(SCOPE_TOKEN_RE, 'expected a scope token (printable, no spaces, quotes or backslashes)');

// An empty requirement would let any valid token through: refused, never dropped. A route open to every
// valid token is written without scopes.
const EMPTY_SCOPES = 'requires no scope, so any valid token would pass: list at least one scope, or remove scopes if any valid token may call this route';

/** A rule's scope requirement. */
export const scopesSchema = z.union(
  [
    z.array(scopeSchema).min(1, `an empty scope list ${EMPTY_SCOPES}`),
    z
      .strictObject({
        all: z.array(scopeSchema).min(1, `an empty "all" ${EMPTY_SCOPES}`).optional(),
        any: z.array(scopeSchema).min(1, 'an empty "any" list names no scope a token could have: list at least one scope, or remove any').optional(),
      })
      .refine((v) => v.all !== undefined || v.any !== undefined, `an object without all or any ${EMPTY_SCOPES}`),
  ],
  { error: 'expected an array of scopes or { all?: [...], any?: [...] }' },
);

/** A rule's `scopes`. */
export interface ScopesRuleSlice {
  /** Required scopes: an array (all of them) or `{ all?, any? }`. */
  scopes?: ScopesPolicy;
}

/** Required scopes of a rule (`scope.insufficient`, with the `scope="…"` challenge). */
export const scopesCheck = defineCheck<object, ScopesRuleSlice, ScopesPolicy, ScopeRequirement>({
  name: 'scopes',
  phase: 'constraints',
  order: 30,
  ruleKey: 'scopes',
  ruleSchema: scopesSchema,
  compile: (scopes) => toScopeRequirement(scopes),
  check: (ctx, required) => (ctx.token && hasScopes(required, ctx.token.scopeSet) ? undefined : 'scope.insufficient'),
  // A verified token's scopes do not change between requests.
  memo: () => true,
  challengeReason: 'scope.insufficient',
  challenge: (required) => `error="insufficient_scope", scope="${scopeChallengeValue(required)}"`,
});
