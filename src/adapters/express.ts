// Express adapter (Express 5 and 4): request → GuardRequest, Decision → response. No policy here.
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Guard } from '../core/guard.js';
import type { AuthResult, Decision, GuardRequest } from '../leaf/types.js';
import type { ScopesPolicy } from '../checks/scopes.js';
import {
  GUARD_KEY,
  nodeGuardRequest,
  outcomeOf,
  resolveGuard,
  scopesFromArgs,
  type AdapterContext,
  type AdapterInput,
  type AdapterOptions,
} from './kit.js';
import { warnOnce } from '../leaf/warnings.js';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** Set by token-guard: the verified token (when there is one) and the decision. */
      auth?: AuthResult;
    }
  }
}

/** The Express middleware, with the guard it runs (for `guard.revoke`, `guard.store`). */
export type TokenGuardMiddleware = RequestHandler & { guard: Guard };

/** The parts of an Express router the adapter reads: how it routes case, and what is mounted in which order. */
interface ExpressRouterLike {
  caseSensitive?: unknown;
  stack?: unknown;
}

/** The parts of an Express 5 or 4 app that say how it routes letter case and where the guard sits. */
interface ExpressAppCase {
  /** Express 4's router (its `app.router` getter throws). */
  _router?: ExpressRouterLike;
  /** Express 5's router. */
  router?: ExpressRouterLike;
  enabled?: (setting: string) => boolean;
}

// An app's router reads `case sensitive routing` once, when Express creates it: its own flag is the truth,
// and it cannot change afterwards, so it is read once per app (a WeakMap: nothing is put on the app).
const caseByApp = new WeakMap<object, boolean>();

/** The app's router (Express 4 keeps it on `_router` and throws from `app.router`), if it has one yet. */
function appRouter(app: ExpressAppCase): ExpressRouterLike | undefined {
  try {
    return app._router ?? app.router;
  } catch {
    return undefined;
  }
}

function readAppCase(app: ExpressAppCase): boolean {
  const router = appRouter(app);
  if (router && typeof router.caseSensitive === 'boolean') return router.caseSensitive;
  return typeof app.enabled === 'function' && app.enabled('case sensitive routing') === true;
}

/** One entry of an Express router's stack, as far as the mount-order check reads it. */
interface ExpressLayerLike {
  handle?: unknown;
  route?: { path?: unknown; methods?: Record<string, boolean> };
}

/**
 * The routes (and routers) registered on the app before this guard: requests they answer never meet the
 * guard. Read from the app's router stack, once per app; empty when the guard is not mounted on the app itself.
 */
function routesBefore(app: ExpressAppCase, middleware: unknown): string[] {
  const stack = appRouter(app)?.stack;
  if (!Array.isArray(stack)) return [];
  const at = stack.findIndex((layer: ExpressLayerLike | undefined) => layer?.handle === middleware);
  const before: string[] = [];
  for (const layer of stack.slice(0, Math.max(at, 0)) as (ExpressLayerLike | undefined)[]) {
    const route = layer?.route;
    if (route) {
      const methods = Object.keys(route.methods ?? {}).filter((m) => m !== '_all' && route.methods?.[m]).map((m) => m.toUpperCase());
      before.push(`${methods.length ? methods.join(',') : 'ALL'} ${String(route.path)}`);
    } else if (layer?.handle && Array.isArray((layer.handle as { stack?: unknown }).stack)) {
      before.push('a Router');
    }
  }
  return before;
}

/** Whether the app that runs this request routes case-sensitively (`app.set('case sensitive routing', true)`). */
function routesCaseSensitively(req: Request): boolean {
  const app = req.app as unknown as ExpressAppCase | undefined;
  if (!app || typeof app !== 'function') return false;
  let cased = caseByApp.get(app);
  if (cased === undefined) {
    cased = readAppCase(app);
    caseByApp.set(app, cased);
  }
  return cased;
}

function toGuardRequest(req: Request): GuardRequest {
  // originalUrl: rules match the full path even when the guard is mounted under a prefix.
  return nodeGuardRequest(req, req.originalUrl ?? req.url, routesCaseSensitively(req));
}

function answer(decision: Decision, res: Response, next: NextFunction, errors: 'respond' | 'throw'): boolean {
  const outcome = outcomeOf(decision, errors);
  if (outcome.action === 'next') {
    for (const name in outcome.headers) res.setHeader(name, outcome.headers[name] as string);
    return true;
  }
  if (outcome.action === 'throw') {
    next(outcome.error);
    return false;
  }
  res.statusCode = outcome.response.status;
  for (const name in outcome.response.headers) res.setHeader(name, outcome.response.headers[name] as string);
  res.end(outcome.response.body);
  return false;
}

/**
 * Express middleware enforcing a token-guard policy. Sets `req.auth = { token, decision }` and calls
 * `next()` when the request may go through; otherwise answers it (or with `errors: 'throw'` calls
 * `next(err)` with an AccessDeniedError). Throws PolicyError at start-up for an invalid policy.
 *
 * Exported from `token-guard/express`.
 * @example
 * app.use(tokenGuard({ jwt: { issuer, audience, algorithms: ['RS256'], jwksUri }, rules: [{ path: '/orders/**', scopes: ['orders:read'] }] }));
 */
export function tokenGuard(policy: AdapterInput, options?: AdapterOptions): TokenGuardMiddleware {
  const context = resolveGuard(policy, options);
  const { guard, errors } = context;
  // Apps whose mount order was checked. The last one is remembered so the common one-app process pays one
  // comparison per request; the check itself runs once per app.
  const checked = new WeakSet<object>();
  let lastApp: unknown;
  const checkMountOrder = (app: unknown): void => {
    lastApp = app;
    if (typeof app !== 'function' || checked.has(app)) return;
    checked.add(app);
    const before = routesBefore(app as ExpressAppCase, middleware);
    if (before.length === 0) return;
    const listed = before.slice(0, 5).join(', ') + (before.length > 5 ? `, and ${before.length - 5} more` : '');
    warnOnce(
      'TOKEN_GUARD_NOT_MOUNTED',
      `token-guard: tokenGuard() is mounted after ${listed}: Express answers those without the guard (no req.auth, no checks). Mount tokenGuard() before your routes, and give paths that need no token a { path, public: true } rule.`,
    );
  };
  const middleware: RequestHandler = (req, res, next) => {
    if (req.app !== lastApp) checkMountOrder(req.app);
    guard.evaluate(toGuardRequest(req)).then(
      (decision) => {
        let goOn: boolean;
        // A throw here (a header Node refuses, say) would be an unhandled rejection that kills the process.
        try {
          (req as unknown as Record<symbol, AdapterContext>)[GUARD_KEY] = context;
          req.auth = { token: decision.token, decision };
          goOn = answer(decision, res, next, errors);
        } catch (err) {
          next(err);
          return;
        }
        if (goOn) next();
      },
      // next() with a falsy argument means "carry on": a rejection must never read as that.
      (err: unknown) => next(err ?? new Error('token-guard: evaluation failed')),
    );
  };
  return Object.assign(middleware, { guard });
}

/**
 * Per-route scope check, after `tokenGuard`: every listed scope is required, or pass one `{ all?, any? }`.
 * Answers 403 `insufficient_scope` like the guard does; follows the policy's mode (report-only on the whole policy), never a trialled rule's.
 *
 * Exported from `token-guard/express`.
 * @example
 * app.post('/orders', requireScopes('orders:write'), createOrder);
 */
export function requireScopes(...scopes: (string | ScopesPolicy)[]): RequestHandler {
  const required = scopesFromArgs(scopes);
  return (req, res, next) => {
    const context = (req as unknown as Record<symbol, AdapterContext | undefined>)[GUARD_KEY];
    let decision: Decision;
    try {
      if (!context) throw new Error('requireScopes() needs tokenGuard() mounted before it');
      decision = context.guard.authorize(req.auth, required, toGuardRequest(req));
    } catch (err) {
      next(err);
      return;
    }
    req.auth = { token: decision.token, decision };
    if (answer(decision, res, next, context.errors)) next();
  };
}
