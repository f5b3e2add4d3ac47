// What every adapter shares: turning its options into a guard, reading headers Node folds, and
// validating requireScopes arguments. Adapters stay translation only.
import { createGuard, type Guard } from './guard.js';
import type { TokenGuardPolicy } from './policy.js';
import type { ScopesPolicy } from '../checks/scopes.js';

/** Options every adapter understands besides the policy. */
export interface AdapterOptions {
  /**
   * `'respond'` (default): the adapter answers a refusal itself (status, headers, problem+json body).
   * `'throw'`: it hands an AccessDeniedError to the framework's error path instead.
   */
  errors?: 'respond' | 'throw';
}

/** A policy with adapter options mixed in, or an existing guard (to share it, or to call `guard.revoke`). */
export type AdapterInput = (TokenGuardPolicy & AdapterOptions) | Guard;

/** Key under which adapters keep the guard on the request, for `requireScopes`. */
export const GUARD_KEY: unique symbol = Symbol.for('token-guard.guard') as never;

function isGuard(input: unknown): input is Guard {
  return !!input && typeof (input as Guard).evaluate === 'function' && typeof (input as Guard).authorize === 'function';
}

/** What an adapter keeps on each request it guarded, for `requireScopes`. */
export interface AdapterContext {
  guard: Guard;
  errors: 'respond' | 'throw';
}

/** Splits adapter options from the policy and creates the guard (once, at start-up). */
export function resolveGuard(input: AdapterInput, options: AdapterOptions = {}): AdapterContext {
  if (isGuard(input)) return { guard: input, errors: checkErrors(options.errors) };
  if (!input || typeof input !== 'object') throw new TypeError('tokenGuard: expected a policy object or a guard from createGuard()');
  const { errors, ...policy } = input;
  return { guard: createGuard(policy), errors: checkErrors(options.errors ?? errors) };
}

function checkErrors(errors: unknown): 'respond' | 'throw' {
  if (errors === undefined) return 'respond';
  if (errors === 'respond' || errors === 'throw') return errors;
  throw new TypeError(`tokenGuard: errors must be 'respond' or 'throw' (got ${JSON.stringify(errors)})`);
}

/** Validates `requireScopes(...)` arguments once: scope strings (all required), or one `{ all?, any? }` object. */
export function scopesFromArgs(args: readonly (string | ScopesPolicy)[]): ScopesPolicy {
  const valid = (s: unknown) => typeof s === 'string' && /^[\x21\x23-\x5B\x5D-\x7E]+$/.test(s);
  if (args.length === 1 && args[0] && typeof args[0] === 'object' && !Array.isArray(args[0])) {
    const o = args[0] as { all?: unknown[]; any?: unknown[] };
    const all = o.all ?? [];
    const any = o.any ?? [];
    if (!Array.isArray(all) || !Array.isArray(any) || ![...all, ...any].every(valid) || all.length + any.length === 0) {
      throw new TypeError('requireScopes: expected { all?: string[], any?: string[] } with at least one scope');
    }
    return Object.freeze({ all: [...all] as string[], any: [...any] as string[] });
  }
  const flat = args.flat() as unknown[];
  if (flat.length === 0 || !flat.every(valid)) throw new TypeError('requireScopes: expected one or more scope strings');
  return Object.freeze([...flat] as string[]);
}

/**
 * All values of one header from Node's `rawHeaders`. Node keeps only the first of two Authorization
 * headers in `req.headers`; a request carrying two must be seen as such (400), not as its first.
 */
export function rawHeaderValues(rawHeaders: readonly string[], name: string): string[] {
  const values: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const n = rawHeaders[i] as string;
    if (n.length === name.length && n.toLowerCase() === name) values.push(rawHeaders[i + 1] as string);
  }
  return values;
}

/**
 * The headers to hand the guard from a Node request: `req.headers` as is, unless Authorization was
 * sent more than once, in which case the guard gets all of them.
 */
export function nodeHeaders(
  headers: Record<string, string | string[] | undefined>,
  rawHeaders: readonly string[] | undefined,
): Record<string, string | string[] | undefined> {
  if (!rawHeaders || headers['authorization'] === undefined) return headers;
  const all = rawHeaderValues(rawHeaders, 'authorization');
  return all.length > 1 ? { ...headers, authorization: all } : headers;
}
