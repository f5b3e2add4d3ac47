// Scope requirements: all of a list, any of a list, or both; never a substring or prefix match.

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
