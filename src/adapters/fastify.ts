// Fastify adapter (Fastify 5): a plugin guarding the whole app in onRequest. No policy here.
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import type { AuthResult, Decision } from '../leaf/types.js';
import type { ScopesPolicy } from '../checks/scopes.js';
import {
  GUARD_KEY,
  nodeGuardRequest,
  outcomeOf,
  resolveGuardOptions,
  scopesFromArgs,
  type AdapterContext,
  type GuardOrPolicyOptions,
} from './kit.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by token-guard in `onRequest`: the verified token (when there is one) and the decision. */
    auth: AuthResult | null;
  }
}

/**
 * Options of the plugin: the policy itself plus `errors`, or `{ guard, errors? }` to run a guard made
 * with `createGuard` (to share it, or to call `guard.revoke`).
 */
export type TokenGuardPluginOptions = GuardOrPolicyOptions;

type GuardedRequest = FastifyRequest & { [GUARD_KEY]?: AdapterContext | null };

/** Puts the decision on `request.auth` and answers it; returns the reply once it is sent. */
function settle(request: FastifyRequest, reply: FastifyReply, context: AdapterContext, decision: Decision): FastifyReply | undefined {
  request.auth = { token: decision.token, decision };
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
 * How the app's router reads letter case: `routerOptions.caseSensitive`, else the older top-level
 * `caseSensitive`, else Fastify's default (case-sensitive), as Fastify itself resolves them.
 */
function routesCaseSensitively(app: FastifyInstance): boolean {
  const config = app.initialConfig as { caseSensitive?: unknown; routerOptions?: { caseSensitive?: unknown } };
  const fromRouter = config.routerOptions?.caseSensitive;
  if (typeof fromRouter === 'boolean') return fromRouter;
  return config.caseSensitive !== false;
}

const plugin: FastifyPluginAsync<TokenGuardPluginOptions> = async (app, options) => {
  const context = resolveGuardOptions(options);
  const caseSensitive = routesCaseSensitively(app);
  app.decorateRequest('auth', null);
  app.decorateRequest(GUARD_KEY, null);
  app.addHook('onRequest', async (request, reply) => {
    const decision = await context.guard.evaluate(nodeGuardRequest(request.raw, request.raw.url, caseSensitive));
    (request as GuardedRequest)[GUARD_KEY] = context;
    return settle(request, reply, context, decision);
  });
};

/**
 * Fastify plugin enforcing a token-guard policy on every route of the app, whatever the encapsulation
 * context it is registered in (it skips Fastify's override, like `fastify-plugin`). Runs in `onRequest`
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
    const context = (request as GuardedRequest)[GUARD_KEY];
    if (!context) throw new Error('requireScopes() needs the tokenGuard plugin registered');
    const decision = context.guard.authorize(request.auth ?? undefined, required, nodeGuardRequest(request.raw, request.raw.url));
    return settle(request, reply, context, decision);
  };
}
