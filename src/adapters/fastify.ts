// Fastify adapter (Fastify 5): a plugin guarding the whole app in onRequest. No policy here.
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest, HookHandlerDoneFunction, preHandlerAsyncHookHandler } from 'fastify';
import type { AuthResult, Decision, GuardRequest } from '../leaf/types.js';
import type { ScopesPolicy } from '../checks/scopes.js';
import { authOf, isPromiseLike, nodeGuardRequest, outcomeOf, resolveGuardOptions, scopesFromArgs, type AdapterContext, type GuardOrPolicyOptions } from './kit.js';
import { TokenGuardError, shownValue } from '../leaf/errors.js';
import { claimsOf, takeAuthShape } from './auth-shape.js';
import { hasHeaders } from './pass-headers.js';
import { cutAtSemicolon, routingOf, type FastifyRouting } from './fastify-routing.js';

export type { TokenClaims } from './auth-shape.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by token-guard in `onRequest`: the verified token (when there is one) and the decision. */
    auth: AuthResult | null;
  }
}

/**
 * Options of the plugin: the policy itself plus `errors`, or `{ guard, errors? }` to run a guard made
 * with `createGuard` (to share it, or to call `guard.revoke`). `authShape: 'user'` also puts the token's
 * claims on `request.user`, as @fastify/jwt does (declare its type with `declare module 'fastify'`).
 */
export type TokenGuardPluginOptions = GuardOrPolicyOptions & { authShape?: 'native' | 'user' };

// Where the plugin keeps the guard that saw a request, for requireScopes. Declared with decorateRequest, so it
// is part of the shape Fastify gives every request from the start, not a property added on the hot path.
const GUARD_KEY: unique symbol = Symbol.for('token-guard.guard') as never;

/** What the plugin keeps on a request for requireScopes: its guard, and how the app's router reads a path. */
interface PluginState {
  context: AdapterContext;
  routing: FastifyRouting;
}

type GuardedRequest = FastifyRequest & { [GUARD_KEY]?: PluginState | null };

/** The GuardRequest of a Fastify request, its path read as the app's router reads it (case, `/x/`, `;`). */
function guardRequestOf(request: FastifyRequest, routing: FastifyRouting): GuardRequest {
  const raw = request.raw;
  const url = routing.semicolon && raw.url !== undefined ? cutAtSemicolon(raw.url) : raw.url;
  return nodeGuardRequest(raw, url, routing.caseSensitive, request, routing.ignoreTrailingSlash);
}

/** Puts the decision on `request.auth` and answers it; returns the reply once it is sent. */
function settle(request: FastifyRequest, reply: FastifyReply, context: AdapterContext, decision: Decision): FastifyReply | undefined {
  request.auth = authOf(decision);
  // An allow (nearly every request) goes on with the decision's own headers, most often none: no Outcome is built
  // and Fastify is not asked to set an empty set of headers.
  if (decision.effect === 'allow') {
    if (hasHeaders(decision.headers)) reply.headers(decision.headers);
    return undefined;
  }
  const outcome = outcomeOf(decision, context.errors);
  if (outcome.action === 'next') {
    reply.headers(outcome.headers);
    return undefined;
  }
  // Fastify's error handler reads `status` and `headers` from the error: WWW-Authenticate comes through.
  if (outcome.action === 'throw') throw outcome.error;
  // A Buffer, not a string: Fastify would append "; charset=utf-8" to a string's Content-Type.
  return reply.code(outcome.response.status).headers(outcome.response.headers).send(Buffer.from(outcome.response.body));
}

/**
 * Whether `app` is the root context (what `Fastify()` returned): only there does an onRequest hook reach every route,
 * every plugin and the 404 handler. Either of two signals marks a child context: Fastify builds each one with
 * `Object.create(parent)` (lib/plugin-override.js), so its prototype is a Fastify instance; and `pluginName`, documented
 * as `'fastify'` at the root (`'fastify -> …'` once skip-override plugins joined it), starts with the enclosing plugin's
 * name anywhere else. Two, so that a change to one of them in a later Fastify cannot silently let a child through.
 */
function isRootContext(app: FastifyInstance): boolean {
  const parent: unknown = Object.getPrototypeOf(app);
  const inherits = typeof parent === 'object' && parent !== null && typeof (parent as { addHook?: unknown }).addHook === 'function';
  const name: unknown = app.pluginName;
  return !inherits && (name === 'fastify' || (typeof name === 'string' && name.startsWith('fastify -> ')));
}

/** Refuses a registration below the root: the guard would cover that plugin's routes only and leave the rest open. */
function assertRootContext(app: FastifyInstance): void {
  if (isRootContext(app)) return;
  // The prefix only: a plugin's name can be the first lines of its source, which may hold a literal secret.
  const where = app.prefix ? `an encapsulated plugin (prefix ${shownValue(app.prefix)})` : 'an encapsulated plugin';
  throw new TokenGuardError(
    'adapter.not_root',
    `token-guard: the tokenGuard plugin is registered inside ${where}, where it would guard only that plugin's routes ` +
      'and leave every other route of the app open. Register it on the root instance (the one Fastify() returns, or a ' +
      "fastify-plugin wrapped plugin registered on it), and open routes with public rules: { path: '/health', public: true }.",
    { status: 500, expose: false },
  );
}

const plugin: FastifyPluginAsync<TokenGuardPluginOptions> = async (app, options) => {
  assertRootContext(app);
  const shaped = takeAuthShape(options, undefined, ['user'] as const);
  const context = resolveGuardOptions(shaped.input);
  const asUser = shaped.shape === 'user';
  // One per registration: the request keeps a reference to it, so requireScopes reads paths as the hook does.
  const state: PluginState = { context, routing: routingOf(app) };
  app.decorateRequest('auth', null);
  app.decorateRequest(GUARD_KEY, null);
  // Declared up front like auth (part of every request's shape); fails at start-up next to @fastify/jwt's own `user`.
  // (Typed as a plain name: where @fastify/jwt's types are loaded, `user` has its type, not null.)
  if (asUser) app.decorateRequest('user' as string, null);
  // Callback style, not async: a decision that needed no store call goes on in the same tick, without a microtask.
  const proceed = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction, decision: Decision): void => {
    let sent: FastifyReply | undefined;
    try {
      (request as GuardedRequest)[GUARD_KEY] = state;
      if (asUser && decision.token) (request as { user?: unknown }).user = claimsOf(decision.token);
      sent = settle(request, reply, context, decision);
    } catch (err) {
      done(err as Error);
      return;
    }
    // A hook that answered the request must not call done(): Fastify would run the route as well.
    if (!sent) done();
  };
  app.addHook('onRequest', (request, reply, done) => {
    let decision: Decision | Promise<Decision>;
    try {
      decision = context.guard.decide(guardRequestOf(request, state.routing));
    } catch (err) {
      done(err as Error);
      return;
    }
    if (!isPromiseLike(decision)) {
      proceed(request, reply, done, decision);
      return;
    }
    decision.then(
      (d) => proceed(request, reply, done, d),
      (err: unknown) => done(err instanceof Error ? err : new TokenGuardError('guard.failed', 'token-guard: evaluation failed')),
    );
  });
};

/**
 * Fastify plugin enforcing a token-guard policy on every route of the app: register it on the root instance (it
 * skips Fastify's override, like `fastify-plugin`, so its hook lands in the root context and reaches every plugin's
 * routes and the 404 handler). Registered inside an encapsulated plugin, where it would guard only that plugin's
 * routes, it fails `app.ready()` with a TokenGuardError `adapter.not_root`. Runs in `onRequest`
 * and sets `request.auth = { token, decision }`; rules read letter case as the app's router does
 * (`routerOptions.caseSensitive`, case-sensitive by default) unless the policy sets `caseSensitive`. Answers a refusal itself, or with `errors: 'throw'`
 * hands an AccessDeniedError to Fastify's error handler. An invalid policy fails `app.ready()`.
 *
 * Exported from `token-guard/fastify`.
 * @example
 * await app.register(tokenGuard, { jwt: { issuer, audience, algorithms: ['RS256'], jwksUri }, rules: [{ path: '/orders/**', scopes: ['orders:read'] }] });
 */
export const tokenGuard: FastifyPluginAsync<TokenGuardPluginOptions> = Object.assign(plugin, {
  [Symbol.for('skip-override')]: true,
  [Symbol.for('fastify.display-name')]: 'token-guard',
  [Symbol.for('plugin-meta')]: { name: 'token-guard', fastify: '5.x' },
});

/**
 * Per-route scope check as a `preHandler`: every listed scope is required, or pass one `{ all?, any? }`.
 * Answers 403 `insufficient_scope` like the guard does; follows the policy's mode (report-only on the whole policy), never a trialled rule's.
 *
 * Exported from `token-guard/fastify`.
 * @example
 * app.post('/orders', { preHandler: requireScopes('orders:write') }, createOrder);
 */
export function requireScopes(...scopes: (string | ScopesPolicy)[]): preHandlerAsyncHookHandler {
  const required = scopesFromArgs(scopes);
  return async function requireScopesHandler(request, reply) {
    const state = (request as GuardedRequest)[GUARD_KEY];
    if (!state) throw new TokenGuardError('guard.not_mounted', 'requireScopes() needs the tokenGuard plugin registered', { status: 500, expose: false });
    const decision = state.context.guard.authorize(request.auth ?? undefined, required, guardRequestOf(request, state.routing));
    return settle(request, reply, state.context, decision);
  };
}
