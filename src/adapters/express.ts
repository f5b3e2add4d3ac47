// Express adapter (Express 5 and 4): request → GuardRequest, Decision → response. No policy here.
import { IncomingMessage } from 'node:http';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Guard } from '../core/guard.js';
import type { TokenGuardPolicy } from '../core/policy.js';
import type { AuthResult, Decision } from '../leaf/types.js';
import type { ScopesPolicy } from '../checks/scopes.js';
import { authOf, isPromiseLike, outcomeOf, resolveGuard, scopesFromArgs, type AdapterContext, type AdapterInput, type AdapterOptions } from './kit.js';
import { TokenGuardError } from '../leaf/errors.js';
import { warnOnce } from '../leaf/warnings.js';
import { readRouting, routesBefore, type ExpressAppLike, type ExpressRouting } from './express-routing.js';
import { claimsOf, payloadAuthOf, takeAuthShape, type PayloadAuth, type TokenClaims } from './auth-shape.js';
import { hasHeaders } from './pass-headers.js';
import { requestKeys, type Keyed } from './request-keys.js';
import { NodeGuardRequest } from './node-request.js';
import { installAuthAccessor, keep, localsOf, requestState, responseOf, setAuth, spentOf, stateOf, type AuthView, type Locals } from './express-state.js';
import { SPENT, type SpendLedger } from '../core/engine.js';

export type { PayloadAuth, TokenClaims } from './auth-shape.js';

/**
 * Declares which `authShape` the app uses, for the type of `req.auth` (a type cannot follow a runtime option):
 * `declare module 'token-guard/express' { interface ExpressAuthShape { shape: 'payload' } }`.
 */
// biome-ignore lint/suspicious/noEmptyInterface: apps augment it (declaration merging)
export interface ExpressAuthShape {}

/** The type of `req.auth`: AuthResult, or the shape declared in ExpressAuthShape. */
export type ExpressAuth = ExpressAuthShape extends { shape: 'payload' } ? PayloadAuth : ExpressAuthShape extends { shape: 'claims' } ? TokenClaims : AuthResult;

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** Set by token-guard: the verified token (when there is one) and the decision, or the `authShape` chosen. */
      auth?: ExpressAuth;
    }
  }
}

/**
 * Express adapter options. `authShape` puts the token on `req.auth` as the library you migrate from does:
 * `'payload'` as express-oauth2-jwt-bearer (`{ payload, header, token }`), `'claims'` as express-jwt (the
 * claims); `'native'` (default) is `{ token, decision }`. Under a shape, `req.auth` is unset when no valid token was presented.
 */
export interface ExpressAdapterOptions extends AdapterOptions {
  authShape?: 'native' | 'payload' | 'claims';
}

/** What `tokenGuard` takes: a policy (with adapter options), or a guard from `createGuard`. */
export type ExpressAdapterInput = (TokenGuardPolicy & ExpressAdapterOptions) | Guard;

/** The Express middleware, with the guard it runs (for `guard.revoke`, `guard.store`). */
export type TokenGuardMiddleware = RequestHandler & { guard: Guard };

// How an app routes is fixed once Express built its routers, so it is read once per app (a WeakMap: nothing is put on
// the app). A request that did not come through an Express app gets the safe reading.
const routingByApp = new WeakMap<object, ExpressRouting>();
const UNKNOWN_ROUTING: ExpressRouting = Object.freeze({ caseSensitive: 'mixed', ignoreTrailingSlash: false });

/** How the app that runs this request routes letter case and trailing slashes. */
function routingOf(app: unknown): ExpressRouting {
  if (!app || typeof app !== 'function') return UNKNOWN_ROUTING;
  let routing = routingByApp.get(app);
  if (routing === undefined) {
    routing = readRouting(app as ExpressAppLike);
    routingByApp.set(app, routing);
  }
  return routing;
}

// Express's request properties, read by key (request-keys.ts): each request has its own hidden class.
const EXPRESS_KEYS = requestKeys('app', 'originalUrl', 'url');
const APP = 0;
const ORIGINAL_URL = 1;
const PLAIN_URL = 2;

// Node's lazy `headers` getter. Looking `headers` up on an Express request leaves V8's builtins even when read by key
// (the getter is found on a prototype of a hidden class V8 has not seen), so the getter is called directly when the
// request has no own `headers` and nothing between it and IncomingMessage.prototype defines one: what `req.headers`
// returns, without the lookup.
const NODE_HEADERS = Object.getOwnPropertyDescriptor(IncomingMessage.prototype, 'headers')?.get;

// Express gives each request its app's `app.request` as prototype, which holds `app` as an own property. What the
// adapter needs from it is read once per prototype: the app (a lookup through `req` leaves the builtins as above), and
// whether `headers` is Node's. A request with any other prototype (a hand-made one in a test harness) is read as is.
let seenProto: object | undefined;
let seenApp: unknown;
let seenNodeHeaders = false;

function learnProto(proto: object | null): boolean {
  if (proto === null || !Object.hasOwn(proto, 'app')) return false;
  seenProto = proto;
  seenApp = (proto as { app?: unknown }).app;
  seenNodeHeaders = false;
  for (let p: object | null = proto; p !== null; p = Object.getPrototypeOf(p) as object | null) {
    if (p === IncomingMessage.prototype) {
      seenNodeHeaders = NODE_HEADERS !== undefined && Object.getOwnPropertyDescriptor(p, 'headers')?.get === NODE_HEADERS;
      break;
    }
    if (Object.hasOwn(p, 'headers')) break;
  }
  return true;
}

/** The request's prototype, taken once per request: appOf and toGuardRequest both read it. */
const protoOf = (req: Request): object | null => Object.getPrototypeOf(req) as object | null;

/** `req.app`, for a request whose prototype is `proto`. */
function appOf(req: Request, proto: object | null): unknown {
  if (proto === seenProto || learnProto(proto)) return seenApp;
  return (req as unknown as Keyed)[EXPRESS_KEYS[APP]];
}

/** `req.headers` through Node's getter when that is what it reads, else undefined (read by key instead). */
function nodeHeadersOf(req: Request, proto: object | null): Request['headers'] | undefined {
  if (!seenNodeHeaders || proto !== seenProto || Object.hasOwn(req, 'headers')) return undefined;
  return (NODE_HEADERS as (this: Request) => Request['headers']).call(req);
}

/** `spent`: what the request spent through the guards it met so far (undefined: not kept, for guard.authorize). */
function toGuardRequest(req: Request, proto: object | null, routing: ExpressRouting, spent: SpendLedger | null | undefined): NodeGuardRequest {
  const r = req as unknown as Keyed;
  // originalUrl: rules match the full path even when the guard is mounted under a prefix.
  const path = (r[EXPRESS_KEYS[ORIGINAL_URL]] ?? r[EXPRESS_KEYS[PLAIN_URL]]) as string | undefined;
  return new NodeGuardRequest(req, path, routing.caseSensitive, routing.ignoreTrailingSlash, req, nodeHeadersOf(req, proto), spent);
}

/**
 * Records the guard and the auth result of a request. `locals`: its response's `res.locals` when Express made the
 * request, else undefined; `viaAccessor` false for requests without Express's prototype.
 */
function remember(
  req: Request,
  locals: Locals | undefined,
  context: AdapterContext,
  result: AuthResult,
  viaAccessor: boolean,
  view: AuthView | undefined,
  spent: SpendLedger | null,
): void {
  const auth = view ? view(result, req) : result;
  // A new state, so one the app's own `req.auth = …` made before is replaced whole: one write, no read.
  keep(locals, requestState(req, context, auth, result, view, spent));
  // A request that did not come through an Express app (a hand-made object in a test harness) gets a plain property.
  if (!viaAccessor) setAuth(req, auth);
}

const VIEWS: Record<'payload' | 'claims', AuthView> = {
  payload: (auth, req) => payloadAuthOf(auth, req.headers),
  claims: (auth) => claimsOf(auth.token),
};

function answer(decision: Decision, res: Response, next: NextFunction, errors: 'respond' | 'throw'): boolean {
  // An allow (nearly every request) goes on with the decision's own headers, most often none: no Outcome is built.
  if (decision.effect === 'allow') {
    if (hasHeaders(decision.headers)) for (const name in decision.headers) res.setHeader(name, decision.headers[name] as string);
    return true;
  }
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
export function tokenGuard(policy: ExpressAdapterInput, options?: ExpressAdapterOptions): TokenGuardMiddleware {
  const shaped = takeAuthShape(policy, options?.authShape, ['payload', 'claims'] as const);
  const view = shaped.shape ? VIEWS[shaped.shape] : undefined;
  const context = resolveGuard(shaped.input as AdapterInput, options);
  const { guard, errors } = context;
  // Apps whose mount order was checked. The last one is remembered so the common one-app process pays one
  // comparison per request; the check itself runs once per app.
  const checked = new WeakSet<object>();
  let lastApp: unknown;
  const checkMountOrder = (app: unknown): void => {
    lastApp = app;
    if (typeof app !== 'function' || checked.has(app)) return;
    checked.add(app);
    const before = routesBefore(app as ExpressAppLike, middleware);
    if (before.length === 0) return;
    const listed = before.slice(0, 5).join(', ') + (before.length > 5 ? `, and ${before.length - 5} more` : '');
    warnOnce(
      'TOKEN_GUARD_NOT_MOUNTED',
      `token-guard: tokenGuard() is mounted after ${listed}: Express answers those without the guard (no req.auth, no checks). Mount tokenGuard() before your routes, and give paths that need no token a { path, public: true } rule.`,
    );
  };
  let lastAppHasAccessor = false;
  // How the last app routes: fixed per app, so read again only when the app changes (inside the try below, like the
  // read it replaces: a throw goes to Express's error path and is tried again next time).
  let lastAppRouting: ExpressRouting | undefined;
  const proceed = (req: Request, res: Response, next: NextFunction, decision: Decision, viaAccessor: boolean, locals: Locals | undefined, guarded: NodeGuardRequest): void => {
    let goOn: boolean;
    // A throw here (a header Node refuses, say) must reach Express's error path, not escape as an unhandled rejection.
    try {
      // What the evaluation spent goes with the state: the guard mounted again on the request's way does not spend it again.
      remember(req, locals, context, authOf(decision), viaAccessor, view, guarded[SPENT] ?? null);
      goOn = answer(decision, res, next, errors);
    } catch (err) {
      next(err);
      return;
    }
    if (goOn) next();
  };
  const middleware: RequestHandler = (req, res, next) => {
    const proto = protoOf(req);
    const app = appOf(req, proto);
    if (app !== lastApp) {
      checkMountOrder(app);
      lastAppHasAccessor = installAuthAccessor(app);
      lastAppRouting = undefined;
    }
    // Taken now: another app's request may change lastAppHasAccessor while this decision is pending.
    const viaAccessor = lastAppHasAccessor;
    let decision: Decision | Promise<Decision>;
    let guarded: NodeGuardRequest;
    let locals: Locals | undefined;
    try {
      // Where readers of the state look: `req.res`, which Express's app.handle sets (a harness may not, or may pass
      // another `res`: its state then goes to the WeakMap). Its `res.locals` is read once, here, for both uses.
      locals = proto === seenProto && responseOf(req) === res ? localsOf(res) : undefined;
      lastAppRouting ??= routingOf(app);
      guarded = toGuardRequest(req, proto, lastAppRouting, spentOf(req, locals));
      decision = guard.decide(guarded);
    } catch (err) {
      next(err);
      return;
    }
    // A decision that needed no store call arrives as is: continue in this tick, without a microtask.
    if (!isPromiseLike(decision)) {
      proceed(req, res, next, decision, viaAccessor, locals, guarded);
      return;
    }
    decision.then(
      (d) => proceed(req, res, next, d, viaAccessor, locals, guarded),
      // next() with a falsy argument means "carry on": a rejection must never read as that.
      (err: unknown) => next(err ?? new TokenGuardError('guard.failed', 'token-guard: evaluation failed')),
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
    const state = stateOf(req);
    const context = state?.context;
    let decision: Decision;
    try {
      if (!context) {
        // The state lives in res.locals: an app that replaced the object between the two dropped it (docs/express.md).
        throw new TokenGuardError(
          'guard.not_mounted',
          'requireScopes() found no tokenGuard() state on this request: mount tokenGuard() before it, and add to res.locals rather than replacing it (res.locals = {…} drops the state)',
          { status: 500, expose: false },
        );
      }
      // Under an authShape req.auth is the app's view; the guard's own result is kept beside it.
      const current = state.view ? state.result : (req.auth as AuthResult | undefined);
      const proto = protoOf(req);
      decision = context.guard.authorize(current, required, toGuardRequest(req, proto, routingOf(appOf(req, proto)), undefined));
    } catch (err) {
      next(err);
      return;
    }
    const result = authOf(decision);
    if (state.view) state.result = result;
    setAuth(req, state.view ? state.view(result, req) : result);
    if (answer(decision, res, next, context.errors)) next();
  };
}
