// What every adapter shares: turning its options into a guard, reading headers Node folds, and
// validating requireScopes arguments. Adapters stay translation only.
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { createGuard, type Guard } from '../core/guard.js';
import type { TokenGuardPolicy } from '../core/policy.js';
import type { AccessDeniedError } from '../leaf/errors.js';
import { decisionError, denialResponse, passHeaders, type DenialResponse } from '../leaf/http.js';
import type { Decision, GuardRequest } from '../leaf/types.js';
import { SCOPE_TOKEN_RE, type ScopesPolicy } from '../checks/scopes.js';

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
  const valid = (s: unknown) => typeof s === 'string' && SCOPE_TOKEN_RE.test(s);
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

/**
 * The GuardRequest of a Node `IncomingMessage` (Express, Koa, Fastify all sit on one). `path` is the
 * target the app routes on, which each framework names differently (`originalUrl`, `raw.url`);
 * `caseSensitive` how the app's router reads letter case.
 */
export function nodeGuardRequest(req: IncomingMessage, path: string | undefined, caseSensitive = false): GuardRequest {
  const socket = req.socket as TLSSocket | undefined;
  return {
    method: req.method ?? '',
    path: path ?? '',
    caseSensitive,
    headers: nodeHeaders(req.headers, req.rawHeaders),
    // Undefined for unix sockets and some test harnesses: the guard treats the client IP as unknown.
    remoteAddress: socket?.remoteAddress,
    get peerCertificate() {
      // Read only when a token is certificate-bound: getPeerCertificate() is not free.
      return socket?.authorized && typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate() : undefined;
    },
  };
}

/**
 * The headers of a web-standard `Request` as the guard reads them (lower-case names). `Headers` joins a
 * repeated field with ", "; the core refuses a comma inside a credential, so two Authorization
 * headers still read as `request.malformed`, never as the first one.
 */
export function webHeaders(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((value, name) => {
    out[name] = value;
  });
  return out;
}

/**
 * What an adapter does with a decision: let the request through (setting `headers` on the response),
 * hand `error` to the framework's error path, or send `response`. One place decides this, so the
 * adapters differ only in how they talk to their framework.
 */
export type Outcome =
  | { action: 'next'; headers: Record<string, string> }
  | { action: 'throw'; error: AccessDeniedError }
  | { action: 'respond'; response: DenialResponse };

/** Turns a decision and the adapter's `errors` option into the adapter's next step. */
export function outcomeOf(decision: Decision, errors: AdapterContext['errors']): Outcome {
  const response = denialResponse(decision);
  if (!response) return { action: 'next', headers: passHeaders(decision) };
  return errors === 'throw' ? { action: 'throw', error: decisionError(decision) } : { action: 'respond', response };
}

/** Fastify-style plugin options: a policy (plus adapter options), or an existing guard under `guard`. */
export type GuardOrPolicyOptions = AdapterInput | (AdapterOptions & { guard: Guard });

/** Like `resolveGuard`, also accepting `{ guard, errors? }` where the options object is the only argument. */
export function resolveGuardOptions(input: GuardOrPolicyOptions): AdapterContext {
  if (input && typeof input === 'object' && 'guard' in input) {
    if (!isGuard(input.guard)) throw new TypeError('tokenGuard: options.guard must be a guard from createGuard()');
    const { guard, ...rest } = input;
    const unknown = Object.keys(rest).filter((k) => k !== 'errors');
    // A policy next to a guard would be silently ignored: refuse it instead.
    if (unknown.length) throw new TypeError(`tokenGuard: with options.guard, only errors may be given (got ${unknown.join(', ')})`);
    return resolveGuard(guard, { errors: input.errors });
  }
  return resolveGuard(input);
}
