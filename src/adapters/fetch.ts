// Web-standard adapter (Request → Response): Hono, Next.js route handlers, Bun, Deno, Node via a bridge. No policy here.
import { droppedPromise, isAsyncFunction } from '../leaf/callbacks.js';
import type { Guard } from '../core/guard.js';
import type { AuthResult, Decision, GuardRequest } from '../leaf/types.js';
import type { ScopesPolicy } from '../checks/scopes.js';
import { authOf, outcomeOf, resolveGuard, scopesFromArgs, webGuardRequest, type AdapterContext, type AdapterInput, type AdapterOptions, type ConnectionInfo } from './kit.js';
import { TokenGuardError } from '../leaf/errors.js';
import { SPENT, type SpendingRequest, type SpendLedger } from '../core/engine.js';
import { usageError } from './usage-error.js';

/** What a `Request` cannot say about its connection; the runtime or server knows it. */
export type FetchConnectionInfo = ConnectionInfo;

/**
 * A refusal to return as is, or, when the request may go through, its auth and the headers to put on
 * your response (RateLimit-*: the adapter cannot set them on a response it does not make).
 */
export type FetchGuardResult = Response | { auth: AuthResult; headers: Record<string, string> };

/**
 * Your handler, run only for a request the guard let through: `auth` is what the guard found; any further
 * arguments (Next.js's route context, Bun's server, Hono's `c`) are passed on as the wrapped function got them.
 */
export type FetchHandler<A extends unknown[] = []> = (request: Request, auth: AuthResult, ...args: A) => Response | Promise<Response>;

/** Options of `guard.handler`. */
export interface FetchHandlerOptions<A extends unknown[] = []> {
  /** What the runtime knows about the connection, from the same arguments (e.g. Bun's `server.requestIP(request)`). Default: nothing known. */
  info?: (request: Request, ...args: A) => FetchConnectionInfo | undefined;
}

/**
 * The function `guardFetch` returns: call it for the result form (await it: the Promise itself has no
 * `auth`), or wrap a handler with `.handler` so no result is left to check. Carries the guard it runs
 * (for `guard.revoke`, `guard.store`).
 */
export type FetchGuard = ((request: Request, info?: FetchConnectionInfo) => Promise<FetchGuardResult>) & {
  guard: Guard;
  /**
   * Wraps a handler: the guard answers a refusal itself (problem+json), and only a request it lets through
   * reaches `fn`, whose Response gets the pass headers (`RateLimit-*`). With `errors: 'throw'` the returned
   * promise rejects with an AccessDeniedError instead.
   */
  handler<A extends unknown[] = []>(fn: FetchHandler<A>, options?: FetchHandlerOptions<A>): (request: Request, ...args: A) => Promise<Response>;
};

/** What the adapter keeps about a request it guarded: for requireScopes, and what it spent (a guard met twice spends once). */
interface Seen {
  context: AdapterContext;
  auth: AuthResult;
  info: FetchConnectionInfo | undefined;
  spent: SpendLedger | null;
}

// A WeakMap, not a property: platform Request objects are left untouched and the entry goes away with the request.
const seen = new WeakMap<Request, Seen>();

/** `spent`: what the request spent through the guards it met so far (undefined: not kept, for guard.authorize). */
function toGuardRequest(request: Request, info: FetchConnectionInfo | undefined, spent?: SpendLedger | null): GuardRequest {
  // Hono, Next.js, Bun routes and URLPattern all tell `/Admin` from `/admin`; a policy's caseSensitive wins.
  const guarded = webGuardRequest(request, info, true);
  // Not enumerable: a copy of the GuardRequest (a guard wrapper's spread) does not take the request's ledger along.
  if (spent !== undefined) Object.defineProperty(guarded, SPENT, { value: spent, writable: true });
  return guarded;
}

function settle(request: Request, context: AdapterContext, decision: Decision, info: FetchConnectionInfo | undefined, spent: SpendLedger | null): FetchGuardResult {
  const auth: AuthResult = authOf(decision);
  seen.set(request, { context, auth, info, spent });
  const outcome = outcomeOf(decision, context.errors);
  if (outcome.action === 'next') return { auth, headers: outcome.headers };
  if (outcome.action === 'throw') throw outcome.error;
  return new Response(outcome.response.body, { status: outcome.response.status, headers: outcome.response.headers });
}

/**
 * Guards web-standard requests. Resolves to a `Response` to return as is (the refusal: status, headers,
 * problem+json body), or to `{ auth, headers }` when the request may go through; put `headers`
 * (RateLimit-*) on your response. With `errors: 'throw'` the promise rejects with an
 * AccessDeniedError instead of resolving to a refusal. Pass `info.remoteAddress` for IP rules: a
 * `Request` does not carry it. Throws PolicyError at start-up for an invalid policy.
 *
 * Prefer `guard.handler(fn)`: it answers refusals itself, so there is no result to forget to await or check.
 *
 * Exported from `token-guard/fetch`.
 * @example
 * const guard = guardFetch({ jwt: { issuer, audience, algorithms: ['RS256'], jwksUri }, rules });
 * export const GET = guard.handler((request, auth) => Response.json({ subject: auth.token?.subject }));
 */
export function guardFetch(policy: AdapterInput, options?: AdapterOptions): FetchGuard {
  const context = resolveGuard(policy, options);
  const check = async (request: Request, info?: FetchConnectionInfo): Promise<FetchGuardResult> => {
    // The Request object is the request: a guard that meets it again (mounted twice on its way) spends nothing twice.
    const guarded = toGuardRequest(request, info, seen.get(request)?.spent ?? null);
    const decision = await context.guard.evaluate(guarded);
    return settle(request, context, decision, info, (guarded as SpendingRequest)[SPENT]);
  };
  function handler<A extends unknown[] = []>(fn: FetchHandler<A>, handlerOptions: FetchHandlerOptions<A> = {}): (request: Request, ...args: A) => Promise<Response> {
    if (typeof fn !== 'function') throw usageError('adapter.options_invalid', 'guardFetch().handler: expected a function (request, auth) => Response');
    const infoOf = handlerOptions.info;
    if (infoOf !== undefined && typeof infoOf !== 'function') throw usageError('adapter.options_invalid', 'guardFetch().handler: options.info must be a function');
    if (isAsyncFunction(infoOf))
      throw usageError('adapter.options_invalid', 'guardFetch().handler: options.info must be synchronous (an async function answers with a promise, not the connection info)');
    return async (request, ...args) => {
      const info = infoOf?.(request, ...args);
      // A promise is no connection info: its rejection is handled, and the call fails as a throwing info would.
      if (droppedPromise(info)) throw usageError('adapter.options_invalid', 'guardFetch().handler: options.info returned a promise (it must be synchronous)');
      const result = await check(request, info);
      if (result instanceof Response) return result;
      return withHeaders(await fn(request, result.auth, ...args), result.headers);
    };
  }
  return Object.assign(check, { guard: context.guard, handler });
}

/** Puts the pass headers on the handler's response; copies it first when its headers are immutable (`Response.redirect`, a proxied `fetch`). */
function withHeaders(response: Response, headers: Record<string, string>): Response {
  const names = Object.keys(headers);
  if (names.length === 0 || !response || typeof response !== 'object' || !response.headers) return response;
  // A network error (`Response.error()`, status 0) has no headers to add to and cannot be copied: the runtime fails
  // the request as a network error, which shows nothing a pass header would.
  if (response.type === 'error') return response;
  try {
    for (const name of names) response.headers.set(name, headers[name] as string);
    return response;
  } catch {
    const copy = new Response(response.body, response);
    for (const name of names) copy.headers.set(name, headers[name] as string);
    return copy;
  }
}

/**
 * Per-route scope check for a request `guardFetch` let through: every listed scope is required, or pass
 * one `{ all?, any? }`. Returns the same union as the guard (a 403 `insufficient_scope` Response, or
 * `{ auth, headers }`), synchronously; follows the guard's `errors` option and the policy's mode (never a trialled rule's). Throws if the
 * request was not guarded first.
 *
 * Exported from `token-guard/fetch`.
 * @example
 * const result = requireScopes('orders:write')(request);
 * if (result instanceof Response) return result;
 */
export function requireScopes(...scopes: (string | ScopesPolicy)[]): (request: Request) => FetchGuardResult {
  const required = scopesFromArgs(scopes);
  return (request) => {
    const entry = seen.get(request);
    if (!entry) throw new TokenGuardError('guard.not_mounted', 'requireScopes() needs the request to pass through guardFetch() first', { status: 500, expose: false });
    const decision = entry.context.guard.authorize(entry.auth, required, toGuardRequest(request, entry.info));
    return settle(request, entry.context, decision, entry.info, entry.spent);
  };
}
