// The adapter kit, published as `token-guard/adapter-kit`: what every adapter shares and what an adapter
// written outside this repo (NestJS, h3, Hono-native) must get right to be as safe as ours: reading headers
// Node folds (two Authorization headers are a 400, never the first one), building the GuardRequest, turning
// a Decision into the answer, `errors: 'throw'`, and validating requireScopes arguments. No policy here.
import type { IncomingMessage } from 'node:http';
import { createGuard, type Guard } from '../core/guard.js';
import type { TokenGuardPolicy } from '../core/policy.js';
import type { AccessDeniedError } from '../leaf/errors.js';
import { decisionError, denialResponse, passHeaders, type DenialResponse } from '../leaf/http.js';
import type { AuthResult, Decision, GuardRequest } from '../leaf/types.js';
import { scopesProblem, type ScopesPolicy } from '../checks/scopes.js';
import { usageError } from './usage-error.js';
import { NodeGuardRequest } from './node-request.js';

export type { Guard } from '../core/guard.js';
export type { TokenGuardPolicy } from '../core/policy.js';
export type { AuthResult, Decision, GuardRequest } from '../leaf/types.js';
export type { ScopesPolicy } from '../checks/scopes.js';
export type { DenialResponse } from '../leaf/http.js';
export { AccessDeniedError, TokenGuardError } from '../leaf/errors.js';
export { PROBLEM_CONTENT_TYPE } from '../leaf/http.js';

export type { AdapterUsageCode, AdapterUsageError } from './usage-error.js';
export { nodeHeaders, rawHeaderValues } from './node-request.js';

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

function isGuard(input: unknown): input is Guard {
  return !!input && typeof (input as Guard).evaluate === 'function' && typeof (input as Guard).authorize === 'function';
}

/** What an adapter keeps per request it guarded, for `requireScopes`: the guard and the `errors` option. */
export interface AdapterContext {
  guard: Guard;
  errors: 'respond' | 'throw';
}

/**
 * Splits adapter options from the policy and creates the guard (once, at start-up). Throws PolicyError for
 * an invalid policy, and a TypeError with code `adapter.options_invalid` for anything else that cannot work.
 */
export function resolveGuard(input: AdapterInput, options: AdapterOptions = {}): AdapterContext {
  if (isGuard(input)) {
    // A hand-made guard without decide() would fail on every request: refuse it at start-up instead.
    if (typeof input.decide !== 'function') throw usageError('adapter.options_invalid', 'tokenGuard: the guard has no decide(): pass a guard from createGuard()');
    return { guard: input, errors: checkErrors(options.errors) };
  }
  if (!input || typeof input !== 'object') throw usageError('adapter.options_invalid', 'tokenGuard: expected a policy object or a guard from createGuard()');
  const { errors, ...policy } = input;
  return { guard: createGuard(policy), errors: checkErrors(options.errors ?? errors) };
}

function checkErrors(errors: unknown): 'respond' | 'throw' {
  if (errors === undefined) return 'respond';
  if (errors === 'respond' || errors === 'throw') return errors;
  throw usageError('adapter.options_invalid', `tokenGuard: errors must be 'respond' or 'throw' (got ${JSON.stringify(errors)})`);
}

/** Fastify-style plugin options: a policy (plus adapter options), or an existing guard under `guard`. */
export type GuardOrPolicyOptions = AdapterInput | (AdapterOptions & { guard: Guard });

/** Like `resolveGuard`, also accepting `{ guard, errors? }` where the options object is the only argument. */
export function resolveGuardOptions(input: GuardOrPolicyOptions): AdapterContext {
  if (input && typeof input === 'object' && 'guard' in input) {
    if (!isGuard(input.guard)) throw usageError('adapter.options_invalid', 'tokenGuard: options.guard must be a guard from createGuard()');
    const { guard, ...rest } = input;
    const unknown = Object.keys(rest).filter((k) => k !== 'errors');
    // A policy next to a guard would be silently ignored: refuse it instead.
    if (unknown.length) throw usageError('adapter.options_invalid', `tokenGuard: with options.guard, only errors may be given (got ${unknown.join(', ')})`);
    return resolveGuard(guard, { errors: input.errors });
  }
  return resolveGuard(input);
}

/**
 * Validates `requireScopes(...)` arguments once, at start-up: scope strings (all required), or one
 * `{ all?, any? }` object. Throws a TypeError with code `adapter.scopes_invalid` otherwise.
 */
export function scopesFromArgs(args: readonly (string | ScopesPolicy)[]): ScopesPolicy {
  if (args.length === 1 && args[0] && typeof args[0] === 'object' && !Array.isArray(args[0])) {
    const o = args[0] as { all?: unknown[]; any?: unknown[] };
    const problem = scopesProblem(o);
    if (problem !== undefined) throw usageError('adapter.scopes_invalid', `requireScopes: ${problem}`);
    // Only the keys given: an empty list is no requirement, and guard.authorize refuses one.
    return Object.freeze({ ...(o.all && { all: [...o.all] as string[] }), ...(o.any && { any: [...o.any] as string[] }) });
  }
  const flat = args.flat() as unknown[];
  if (scopesProblem(flat) !== undefined) throw usageError('adapter.scopes_invalid', 'requireScopes: expected one or more scope strings');
  return Object.freeze([...flat] as string[]);
}

/**
 * The GuardRequest of a Node `IncomingMessage` (Express, Koa, Fastify, h3 on Node all sit on one), with the
 * duplicate-Authorization rule applied. `path` is the target the app routes on, which each framework names
 * differently (`originalUrl`, `raw.url`); `caseSensitive` how the app's router reads letter case (`'mixed'` when its
 * routers disagree or cannot all be seen); `context` the framework's own request object (Express `req`, Koa `ctx`,
 * Fastify `request`) that `onDecision` gets as its second argument and reads a request id from (default: `req`);
 * `ignoreTrailingSlash` whether the router reads `/x/` as `/x` (default: false, the safe reading when unknown).
 */
export function nodeGuardRequest(
  req: IncomingMessage,
  path: string | undefined,
  caseSensitive: boolean | 'mixed' = false,
  context: unknown = req,
  ignoreTrailingSlash = false,
): GuardRequest {
  // No spend ledger: only this package's adapters keep one for a request (see core/engine.ts, requestStore).
  return new NodeGuardRequest(req, path, caseSensitive, ignoreTrailingSlash, context, undefined, undefined);
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

/** What a web `Request` cannot say about its connection; the runtime or server knows it. */
export interface ConnectionInfo {
  /** The peer's IP address (Bun `server.requestIP(req)`, Deno `info.remoteAddr.hostname`, Node `req.socket.remoteAddress`). Default: unknown. */
  remoteAddress?: string | undefined;
  /** The verified TLS client certificate, for mTLS-bound tokens. */
  peerCertificate?: { fingerprint256?: string } | undefined;
}

/**
 * The GuardRequest of a web-standard `Request` (Hono, h3 v2, Next.js, Bun, Deno). `caseSensitive` defaults to
 * true: Hono, Next.js, Bun routes and URLPattern all tell `/Admin` from `/admin` (a policy's own setting wins).
 */
export function webGuardRequest(request: Request, info?: ConnectionInfo, caseSensitive = true, context: unknown = request): GuardRequest {
  const url = new URL(request.url);
  return {
    method: request.method,
    path: url.pathname + url.search,
    headers: webHeaders(request.headers),
    remoteAddress: info?.remoteAddress,
    peerCertificate: info?.peerCertificate,
    caseSensitive,
    context,
  };
}

/**
 * What an adapter does with a decision: let the request through (setting `headers` on the response),
 * hand `error` to the framework's error path, or send `response`. One place decides this, so the
 * adapters differ only in how they talk to their framework.
 */
export type Outcome = { action: 'next'; headers: Record<string, string> } | { action: 'throw'; error: AccessDeniedError } | { action: 'respond'; response: DenialResponse };

/**
 * Turns a decision and the adapter's `errors` option into the adapter's next step: `next` (an allow, or a
 * report-only refusal; set `headers`), `throw` (hand `error` to the framework), or `respond` (send
 * `response`: status, headers, problem+json body).
 *
 * Exported from `token-guard/adapter-kit`.
 * @example
 * // A minimal adapter for node:http: the kit reads the request and shapes the answer; the guard decides.
 * import { authOf, isPromiseLike, nodeGuardRequest, outcomeOf, resolveGuard, type AdapterInput } from 'token-guard/adapter-kit';
 * export function guarded(policy: AdapterInput, handler: (req: IncomingMessage, res: ServerResponse, auth: AuthResult) => void) {
 *   const { guard, errors } = resolveGuard(policy);
 *   return (req: IncomingMessage, res: ServerResponse) => {
 *     const go = (decision: Decision) => {
 *       const outcome = outcomeOf(decision, errors);
 *       if (outcome.action === 'respond') return res.writeHead(outcome.response.status, outcome.response.headers).end(outcome.response.body);
 *       if (outcome.action === 'throw') return res.writeHead(500).end(); // your framework's error path
 *       for (const [name, value] of Object.entries(outcome.headers)) res.setHeader(name, value);
 *       handler(req, res, authOf(decision));
 *     };
 *     const decision = guard.decide(nodeGuardRequest(req, req.url));
 *     if (isPromiseLike(decision)) decision.then(go, () => res.writeHead(500).end());
 *     else go(decision);
 *   };
 * }
 */
export function outcomeOf(decision: Decision, errors: AdapterContext['errors']): Outcome {
  const response = denialResponse(decision);
  if (!response) return { action: 'next', headers: passHeaders(decision) };
  return errors === 'throw' ? { action: 'throw', error: decisionError(decision) } : { action: 'respond', response };
}

/** What an adapter puts on the request for the app: the verified token (if any) and the decision. */
export function authOf(decision: Decision): AuthResult {
  return { token: decision.token, decision };
}

/**
 * Whether `guard.decide` waits on something (a store call, a JWKS fetch). When it does not, continue in
 * the same tick: no microtask, no Promise allocated per request.
 */
export function isPromiseLike<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}
