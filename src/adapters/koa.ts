// Koa adapter (Koa 3 and 2, @koa/router): ctx → GuardRequest, Decision → ctx response. No policy here.
import type { Context, Middleware, Next } from 'koa';
import type { Guard } from '../core/guard.js';
import type { TokenGuardPolicy } from '../core/policy.js';
import type { AuthResult, Decision } from '../leaf/types.js';
import type { ScopesPolicy } from '../checks/scopes.js';
import { authOf, isPromiseLike, nodeGuardRequest, outcomeOf, resolveGuard, scopesFromArgs, type AdapterContext, type AdapterInput, type AdapterOptions } from './kit.js';
import { TokenGuardError } from '../leaf/errors.js';
import { claimsOf, takeAuthShape } from './auth-shape.js';
import { hasHeaders } from './pass-headers.js';
import { NodeGuardRequest } from './node-request.js';
import { SPENT, type SpendLedger } from '../core/engine.js';

export type { TokenClaims } from './auth-shape.js';

declare module 'koa' {
  interface DefaultState {
    /** Set by token-guard: the verified token (when there is one) and the decision. */
    auth?: AuthResult;
  }
}

/** The Koa middleware, with the guard it runs (for `guard.revoke`, `guard.store`). */
export type TokenGuardMiddleware = Middleware & { guard: Guard };

/**
 * Koa adapter options. `authShape: 'user'` also puts the token's claims on `ctx.state.user`, as koa-jwt does
 * (unset when no valid token was presented); `ctx.state.auth` is set either way.
 */
export interface KoaAdapterOptions extends AdapterOptions {
  authShape?: 'native' | 'user';
}

/** What `tokenGuard` takes: a policy (with adapter options), or a guard from `createGuard`. */
export type KoaAdapterInput = (TokenGuardPolicy & KoaAdapterOptions) | Guard;

// The guard that saw each request, for requireScopes. A symbol-keyed property on ctx rather than a WeakMap entry:
// Koa builds every ctx the same way, so the property is one hidden-class transition all ctx objects share, where a
// WeakMap entry per request (an identity hash, an ephemeron for the garbage collector) showed in CPU profiles of
// the guarded bench server. Private to this module, as the WeakMap was; a symbol stays out of Object.keys, JSON and
// Koa's ctx.toJSON().
const GUARD_KEY = Symbol('token-guard.guard');
// What the request spent through the guards it met (so a guard mounted again on its way spends once), kept the same way.
const SPENT_KEY = Symbol('token-guard.spent');

type GuardedContext = Context & { [GUARD_KEY]?: AdapterContext; [SPENT_KEY]?: SpendLedger | null };

// Koa has no router of its own and the guard cannot see @koa/router's options (`sensitive`, `strict`), so rules take the
// safe reading: restricting rules match any letter case and public rules only their own, and `/x/` is read as a route
// apart from `/x` (nodeGuardRequest's default), so no spelling reaches a route under a laxer rule than its own.
const ROUTER_CASE = 'mixed';

/** Puts the decision on `ctx.state.auth` and answers it; true when the request goes on to `next`. */
function settle(ctx: Context, context: AdapterContext, decision: Decision): boolean {
  // ctx.state is a plain object Koa creates per request: a property on it costs no hidden-class churn.
  ctx.state.auth = authOf(decision);
  // An allow (nearly every request) goes on with the decision's own headers, most often none: no Outcome is built
  // and Koa's delegated ctx.set is not called for an empty set.
  if (decision.effect === 'allow') {
    if (hasHeaders(decision.headers)) ctx.set(decision.headers);
    return true;
  }
  const outcome = outcomeOf(decision, context.errors);
  if (outcome.action === 'next') {
    ctx.set(outcome.headers);
    return true;
  }
  if (outcome.action === 'throw') throw outcome.error;
  ctx.status = outcome.response.status;
  // Headers before the body: Koa only guesses a Content-Type for a string body when none is set.
  ctx.set(outcome.response.headers);
  ctx.body = outcome.response.body;
  return false;
}

/**
 * Koa middleware enforcing a token-guard policy. Sets `ctx.state.auth = { token, decision }` and calls
 * `next()` when the request may go through; otherwise answers it and does not call `next()` (with
 * `errors: 'throw'` it throws an AccessDeniedError for Koa's error handling instead). Rules see
 * `ctx.originalUrl`. Throws PolicyError at start-up for an invalid policy.
 *
 * Exported from `token-guard/koa`.
 * @example
 * app.use(tokenGuard({ jwt: { issuer, audience, algorithms: ['RS256'], jwksUri }, rules: [{ path: '/orders/**', scopes: ['orders:read'] }] }));
 */
export function tokenGuard(policy: KoaAdapterInput, options?: KoaAdapterOptions): TokenGuardMiddleware {
  const shaped = takeAuthShape(policy, options?.authShape, ['user'] as const);
  const context = resolveGuard(shaped.input as AdapterInput, options);
  const asUser = shaped.shape === 'user';
  const proceed = (ctx: Context, next: Next, decision: Decision, guarded: NodeGuardRequest): unknown => {
    (ctx as GuardedContext)[GUARD_KEY] = context;
    (ctx as GuardedContext)[SPENT_KEY] = guarded[SPENT] ?? null;
    // koa-jwt leaves ctx.state.user unset without a token (passthrough); so does this.
    if (asUser && decision.token) ctx.state.user = claimsOf(decision.token);
    return settle(ctx, context, decision) ? next() : undefined;
  };
  // Not async: a decision that needed no store call goes on to next() in the same tick. A throw (errors:
  // 'throw') is turned into a rejection by koa-compose, as from an async middleware.
  const middleware: Middleware = (ctx, next) => {
    // With what the request spent so far: Koa makes one ctx a request, and only this adapter sets the key.
    const guarded = new NodeGuardRequest(ctx.req, ctx.originalUrl, ROUTER_CASE, false, ctx, undefined, (ctx as GuardedContext)[SPENT_KEY] ?? null);
    const decision = context.guard.decide(guarded);
    if (isPromiseLike(decision)) return decision.then((d) => proceed(ctx, next, d, guarded));
    return proceed(ctx, next, decision, guarded);
  };
  return Object.assign(middleware, { guard: context.guard });
}

/**
 * Per-route scope check, after `tokenGuard`: every listed scope is required, or pass one `{ all?, any? }`.
 * Answers 403 `insufficient_scope` like the guard does; follows the policy's mode (report-only on the whole policy), never a trialled rule's.
 *
 * Exported from `token-guard/koa`.
 * @example
 * router.post('/orders', requireScopes('orders:write'), createOrder);
 */
export function requireScopes(...scopes: (string | ScopesPolicy)[]): Middleware {
  const required = scopesFromArgs(scopes);
  return async (ctx, next) => {
    const context = (ctx as GuardedContext)[GUARD_KEY];
    if (!context) throw new TokenGuardError('guard.not_mounted', 'requireScopes() needs tokenGuard() mounted before it', { status: 500, expose: false });
    const decision = context.guard.authorize(ctx.state.auth, required, nodeGuardRequest(ctx.req, ctx.originalUrl, ROUTER_CASE, ctx));
    if (settle(ctx, context, decision)) await next();
  };
}
