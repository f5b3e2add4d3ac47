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

/** A copy of a requirement as given, to tell later whether the caller's object was changed (`sameScopes`). */
export function snapshotScopes(scopes: ScopesPolicy): ScopesPolicy {
  if (Array.isArray(scopes)) return Object.freeze([...scopes]);
  const s = scopes as Record<string, unknown>;
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(s)) copy[key] = Array.isArray(s[key]) ? Object.freeze([...(s[key] as unknown[])]) : s[key];
  return Object.freeze(copy) as ScopesPolicy;
}

function sameList(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Whether `scopes` still says what `seen` (its snapshot) said: same keys, same lists. A few comparisons, no allocation. */
export function sameScopes(scopes: ScopesPolicy, seen: ScopesPolicy): boolean {
  if (Array.isArray(scopes) || Array.isArray(seen)) return sameList(scopes, seen);
  const a = scopes as Record<string, unknown>;
  const b = seen as Record<string, unknown>;
  let n = 0;
  for (const key in a) {
    if (!Object.hasOwn(b, key) || !sameList(a[key], b[key])) return false;
    n++;
  }
  for (const _ in b) n--;
  return n === 0;
}

const isScopeList = (v: unknown): boolean => Array.isArray(v) && v.length > 0 && v.every((s) => typeof s === 'string' && SCOPE_TOKEN_RE.test(s));

/**
 * Why a scope requirement given at run time (guard.authorize, requireScopes) is not one, or undefined: what the policy
 * schema accepts, checked by hand so a call pays no schema run. An empty list, an unknown key (`anyOf`) or a scope that
 * is not a scope token would otherwise require nothing, and let every token through.
 */
export function scopesProblem(scopes: unknown): string | undefined {
  if (Array.isArray(scopes)) return isScopeList(scopes) ? undefined : 'expected one or more scope tokens';
  if (!scopes || typeof scopes !== 'object') return 'expected an array of scopes or { all?: [...], any?: [...] }';
  const o = scopes as Record<string, unknown>;
  for (const key of Object.keys(o)) if (key !== 'all' && key !== 'any') return `unknown key "${key}" (expected all and/or any)`;
  if (o['all'] === undefined && o['any'] === undefined) return 'an object without all or any requires no scope';
  for (const key of ['all', 'any']) if (o[key] !== undefined && !isScopeList(o[key])) return `"${key}" must be a non-empty list of scope tokens`;
  return undefined;
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
