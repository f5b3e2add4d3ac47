// Web-standard adapter (Request → Response): Hono, Next.js route handlers, Bun, Deno, Node via a bridge. No policy here.
import type { Guard } from '../core/guard.js';
import type { AuthResult, Decision, GuardRequest } from '../core/types.js';
import type { ScopesPolicy } from '../checks/scopes.js';
import { outcomeOf, resolveGuard, scopesFromArgs, webHeaders, type AdapterContext, type AdapterInput, type AdapterOptions } from '../core/adapter-kit.js';

/** What a `Request` cannot say about its connection; the runtime or server knows it. */
export interface FetchConnectionInfo {
  /** The peer's IP address (Bun `server.requestIP(req)`, Deno `info.remoteAddr.hostname`, Node `req.socket.remoteAddress`). Default: unknown. */
  remoteAddress?: string | undefined;
  /** The verified TLS client certificate, for mTLS-bound tokens. */
  peerCertificate?: { fingerprint256?: string } | undefined;
}

/**
 * A refusal to return as is, or, when the request may go through, its auth and the headers to put on
 * your response (RateLimit-*: the adapter cannot set them on a response it does not make).
 */
export type FetchGuardResult = Response | { auth: AuthResult; headers: Record<string, string> };

/** The function `guardFetch` returns, with the guard it runs (for `guard.revoke`, `guard.store`). */
export type FetchGuard = ((request: Request, info?: FetchConnectionInfo) => Promise<FetchGuardResult>) & { guard: Guard };

// What requireScopes needs about a request the guard already saw. A WeakMap, not a property: platform
// Request objects are left untouched and the entry goes away with the request.
const seen = new WeakMap<Request, { context: AdapterContext; auth: AuthResult; info: FetchConnectionInfo | undefined }>();

function toGuardRequest(request: Request, info: FetchConnectionInfo | undefined): GuardRequest {
  const url = new URL(request.url);
  return {
    method: request.method,
    path: url.pathname + url.search,
    headers: webHeaders(request.headers),
    remoteAddress: info?.remoteAddress,
    peerCertificate: info?.peerCertificate,
    // Hono, Next.js, Bun routes and URLPattern all tell `/Admin` from `/admin`; a policy's caseSensitive wins.
    caseSensitive: true,
  };
}

function settle(request: Request, context: AdapterContext, decision: Decision, info: FetchConnectionInfo | undefined): FetchGuardResult {
  const auth: AuthResult = { token: decision.token, decision };
  seen.set(request, { context, auth, info });
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
 * Exported from `token-guard/fetch`.
 * @example
 * const guard = guardFetch({ jwt: { issuer, audience, algorithms: ['RS256'], jwksUri }, rules });
 * export async function GET(request: Request) {
 *   const result = await guard(request);
 *   if (result instanceof Response) return result;
 *   return Response.json({ subject: result.auth.token?.subject });
 * }
 */
export function guardFetch(policy: AdapterInput, options?: AdapterOptions): FetchGuard {
  const context = resolveGuard(policy, options);
  const handler = async (request: Request, info?: FetchConnectionInfo): Promise<FetchGuardResult> =>
    settle(request, context, await context.guard.evaluate(toGuardRequest(request, info)), info);
  return Object.assign(handler, { guard: context.guard });
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
    if (!entry) throw new Error('requireScopes() needs the request to pass through guardFetch() first');
    const decision = entry.context.guard.authorize(entry.auth, required, toGuardRequest(request, entry.info));
    return settle(request, entry.context, decision, entry.info);
  };
}
