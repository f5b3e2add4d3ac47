// Claim checks: the token's claims must hold given values (`tenant: 'acme'`, `'org.roles': { includes: 'admin' }`),
// or pass a custom predicate; per policy and per rule. For API keys, the record's `metadata` are the claims.
import { z } from 'zod';
import { dropPromise, isAsyncFunction } from '../leaf/callbacks.js';
import { defineCheck, isPromiseLike, type CheckContext } from './check.js';

declare global {
  interface TokenGuardReasonCodes {
    /** The token's claims (or an API key's metadata) do not satisfy a `claims` check. */
    'claims.mismatch': true;
  }
}

/** A claim value a check compares with. */
export type ClaimValue = string | number | boolean;

/**
 * What one claim must be: a value (strict equality), `{ includes: v }` (the claim is an array holding `v`) or
 * `{ oneOf: [...] }` (the claim is one of these values).
 */
export type ClaimMatcher = ClaimValue | { includes: ClaimValue } | { oneOf: readonly ClaimValue[] };

/** What a claims predicate sees of the request. */
export interface ClaimsRequest {
  /** Upper-case method. */
  method: string;
  /** Normalised path (no query string). */
  path: string;
  /** Client IP as resolved (after trustProxy); undefined when unknown. */
  ip: string | undefined;
}

/**
 * A custom claim check, synchronous: `true` lets the request on; `false`, anything else or a throw refuses it
 * (`claims.mismatch`). An `async` predicate is refused at start-up (its answer would be a promise, never `true`); one
 * compiled to a plain function returning a promise (TypeScript below ES2017) is only caught when called, and refuses.
 */
export type ClaimsPredicate = (claims: Readonly<Record<string, unknown>>, request: ClaimsRequest) => boolean;

/**
 * Claims a token must carry, by claim name or dotted path into nested claims (`'org.roles'`; a claim whose
 * own name has dots, such as `'https://example.com/roles'`, is found by its name first), or a predicate.
 */
export type ClaimsRule = Readonly<Record<string, ClaimMatcher>> | ClaimsPredicate;

/** The policy's `claims`. */
export interface ClaimsPolicySlice {
  /**
   * Claims every token must carry (JWT claims; an API key's record `metadata`), or a predicate
   * `(claims, request) => boolean`. A mismatch is 403 `claims.mismatch`. Default: none.
   * @example claims: { tenant: 'acme', 'org.roles': { includes: 'admin' } }
   */
  claims?: ClaimsRule;
}

/** A rule's `claims`. */
export interface ClaimsRuleSlice {
  /** Claims this rule's tokens must carry (on top of the policy's), or a predicate. */
  claims?: ClaimsRule;
}

const value = z.union([z.string(), z.number().finite(), z.boolean()], { error: 'expected a string, number or boolean' });
const matcher = z.union([value, z.strictObject({ includes: value }), z.strictObject({ oneOf: z.array(value).min(1, 'expected at least one value') })], {
  error: 'expected a value, { includes: value } or { oneOf: [values] }',
});

const claimsMap = z
  .record(z.string().regex(/^[^.]+(\.[^.]+)*$/, 'expected a claim name or dotted path without empty segments'), matcher)
  .refine((m) => Object.keys(m).length > 0, 'an empty claims map checks nothing: list claims, or remove claims');

const isMapLike = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * A `claims` value: a non-empty map of claim paths to matchers, or a (synchronous) predicate. Not a zod union: a union
 * whose branches all fail reports one issue at `claims`, so `{ tenant: undefined }` would not say which claim is wrong.
 * The shape picks the branch, and the map's own issues keep their paths (`claims.tenant`).
 */
export const claimsSchema = z
  .custom<ClaimsRule>((v) => typeof v === 'function' || isMapLike(v), 'expected { claim: matcher, … } or a function (claims, request) => boolean')
  .superRefine((v, ctx) => {
    if (typeof v === 'function') {
      if (isAsyncFunction(v)) {
        ctx.addIssue({
          code: 'custom',
          message: 'an async predicate answers with a promise, never true, so it would refuse every request: make it synchronous (read what it needs beforehand)',
        });
      }
      return;
    }
    const parsed = claimsMap.safeParse(v);
    if (parsed.success) return;
    for (const issue of parsed.error.issues) {
      const claim = issue.path.length === 1 ? String(issue.path[0]) : undefined;
      if (claim !== undefined && issue.code === 'invalid_union' && (v as Record<string, unknown>)[claim] === undefined) {
        // An own key whose value is undefined (a variable that was never set) matches no token: say so, not `required`.
        ctx.addIssue({
          code: 'custom',
          path: issue.path,
          message: 'undefined is no claim value: give a value, { includes: value } or { oneOf: [values] }, or remove the claim',
        });
      } else if (issue.code === 'invalid_key') {
        ctx.addIssue({ code: 'custom', path: issue.path, message: issue.issues[0]?.message ?? issue.message });
      } else {
        ctx.addIssue({ ...issue });
      }
    }
  });

/** One compiled claim test. */
export interface ClaimTest {
  path: string;
  segments: readonly string[];
  test: (v: unknown) => boolean;
}

/** A compiled `claims` value. */
export type CompiledClaims = { kind: 'map'; tests: readonly ClaimTest[] } | { kind: 'predicate'; fn: ClaimsPredicate };

const own = (o: unknown, k: string): unknown => (o !== null && typeof o === 'object' && Object.hasOwn(o, k) ? (o as Record<string, unknown>)[k] : undefined);

/** A claim by its own name first, else by dotted path (own properties only: nothing from a prototype). */
function claimAt(claims: Readonly<Record<string, unknown>>, t: ClaimTest): unknown {
  const direct = own(claims, t.path);
  if (direct !== undefined || t.segments.length === 1) return direct;
  let v: unknown = claims;
  for (const s of t.segments) v = own(v, s);
  return v;
}

function compileMatcher(m: ClaimMatcher): (v: unknown) => boolean {
  if (typeof m !== 'object') return (v) => v === m;
  if ('includes' in m) {
    const wanted = m.includes;
    return (v) => Array.isArray(v) && v.includes(wanted);
  }
  const set = new Set<unknown>(m.oneOf);
  return (v) => (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') && set.has(v);
}

function claimsOf(ctx: CheckContext): Readonly<Record<string, unknown>> | undefined {
  const info = ctx.token?.info;
  return info?.claims ?? info?.metadata;
}

function check(ctx: CheckContext, c: CompiledClaims): 'claims.mismatch' | undefined {
  const claims = claimsOf(ctx) ?? {};
  if (c.kind === 'map') {
    for (const t of c.tests) {
      if (!t.test(claimAt(claims, t))) {
        ctx.detail = `claim ${t.path} does not match`;
        return 'claims.mismatch';
      }
    }
    return undefined;
  }
  let ok: unknown;
  try {
    // Called unbound: as `c.fn(…)` a `function` predicate's `this` would be the compiled check, which it could rewrite.
    const fn = c.fn;
    ok = fn(claims, { method: ctx.method, path: ctx.path, ip: ctx.ip?.text });
    if (ok === true) return undefined;
    // A plain function can still hand back a promise (`(c) => lookup(c)`): refused, and its rejection handled.
    if (isPromiseLike(ok)) {
      dropPromise(ok);
      ctx.detail = 'claims predicate returned a promise (predicates must be synchronous)';
      return 'claims.mismatch';
    }
  } catch {
    // A predicate that cannot answer must not let the request on.
    ctx.detail = 'claims predicate threw';
    return 'claims.mismatch';
  }
  ctx.detail = 'claims predicate refused';
  return 'claims.mismatch';
}

/** Claim checks, policy- and rule-level (`claims.mismatch`, 403). */
export const claimsCheck = defineCheck<ClaimsPolicySlice, ClaimsRuleSlice, ClaimsRule, CompiledClaims>({
  name: 'claims',
  phase: 'constraints',
  order: 50,
  policyKey: 'claims',
  ruleKey: 'claims',
  policySchema: claimsSchema,
  reasons: { 'claims.mismatch': { status: 403, challenge: false, title: 'Token claims not accepted' } },
  // A map of claim tests reads only the verified token's claims; a predicate also sees the request.
  memo: (_ctx, c) => c.kind === 'map',
  compile: (rule) =>
    typeof rule === 'function'
      ? { kind: 'predicate', fn: rule }
      : { kind: 'map', tests: Object.entries(rule).map(([path, m]) => ({ path, segments: path.split('.'), test: compileMatcher(m) })) },
  check,
});
