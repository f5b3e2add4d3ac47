// The Express adapter's state of one request, kept off the request, and the `req.auth` accessor that reads it.
//
// Express gives every request its own hidden class (it swaps the prototype and the router adds properties), so each
// own property written on `req` copies a map and each read misses V8's inline caches. The state is kept beside the
// request instead: in `res.locals`, Express's own per-request store, under a symbol (no template can name it;
// Object.keys and JSON skip it). `res.locals` is a dictionary object, so adding a key copies no map, and the state dies
// with the response. A WeakMap entry, the other way, costs three times the instructions (V8 calls into its runtime for
// the ephemeron write barrier of a young key) and leaves a table for the collector to sweep: it is kept for requests
// that did not come through an Express app, or whose response has no `res.locals`.
import { IncomingMessage } from 'node:http';
import type { Request } from 'express';
import type { AuthResult } from '../leaf/types.js';
import type { SpendLedger } from '../core/engine.js';
import type { AdapterContext } from './kit.js';
import { requestKeys, type Keyed } from './request-keys.js';

/** Turns the guard's result into what `req.auth` shows under an `authShape`. */
export type AuthView = (auth: AuthResult, req: Request) => unknown;

/**
 * What the adapter knows about one request: the guard that saw it (for requireScopes), what `req.auth` reads, under
 * an `authShape` the guard's own result (which then differs from `req.auth`) and the view that shapes it, and what the
 * request spent through the guards it met (a guard mounted twice on its way spends once).
 */
export interface RequestState {
  /** The request it belongs to: a `res.locals` the app shares between responses must not hand one request's state to another. */
  readonly req: object;
  context: AdapterContext | undefined;
  auth: unknown;
  result: AuthResult | undefined;
  view: AuthView | undefined;
  readonly spent: SpendLedger | null;
}

const INSPECT = Symbol.for('nodejs.util.inspect.custom');
// An app that logs `res.locals` (console.log, util.inspect) sees one line, not the request and the token's claims.
const inspectState = (): string => '[token-guard request state]';

/**
 * A request's state. A literal, not a class: the guard's middleware is too large for V8 to inline a constructor into
 * it, and the generic construct path cost about 20 first-level instruction misses a request on Express.
 */
export function requestState(
  req: object,
  context: AdapterContext | undefined,
  auth: unknown,
  result: AuthResult | undefined,
  view: AuthView | undefined,
  spent: SpendLedger | null,
): RequestState {
  return { req, context, auth, result, view, spent, [INSPECT]: inspectState } as RequestState;
}

const states = new WeakMap<object, RequestState>();
/** Whether any state went to the WeakMap: until one does, a `res.locals` without the state says the request has none. */
let parked = false;

/** The key of the state in `res.locals`. */
const STATE = Symbol('token-guard.state');

// `req.res` and `res.locals`, read by key (request-keys.ts): Express gives each response its own hidden class too.
const KEYS = requestKeys('res', 'locals');
const RES = 0;
const LOCALS = 1;

/** `req.res`, the response Express's app.handle ties to the request: where `stateOf` looks for the state. */
export const responseOf = (req: object): unknown => (req as Keyed)[KEYS[RES]];

/** A response's `res.locals`, where a request's state is kept. */
export type Locals = Record<symbol, RequestState | undefined>;

/** `res.locals`, when it is an object the state can be kept in. Read once per request by the middleware (a keyed read). */
export function localsOf(res: unknown): Locals | undefined {
  if (res === null || typeof res !== 'object') return undefined;
  const locals = (res as Keyed)[KEYS[LOCALS]];
  return locals !== null && typeof locals === 'object' ? (locals as Record<symbol, RequestState | undefined>) : undefined;
}

/** The state of `req`: in its response's locals (`req.res`, set by Express), else in the WeakMap. */
export function stateOf(req: object): RequestState | undefined {
  const state = localsOf(responseOf(req))?.[STATE];
  return state !== undefined && state.req === req ? state : states.get(req);
}

/**
 * What `req` spent through the guards it met so far, for its next evaluation, or null. `locals`: its response's when
 * Express made the request (undefined: none known). The WeakMap is read only where the state could not go to `res.locals`.
 */
export function spentOf(req: object, locals: Locals | undefined): SpendLedger | null {
  const state = locals?.[STATE];
  if (state !== undefined && state.req === req) return state.spent;
  if (state === undefined && !parked) return null;
  return states.get(req)?.spent ?? null;
}

/**
 * Keeps `state` for its request. `locals`: those of `req.res` when Express made the request (`stateOf` reads them
 * there), else undefined.
 */
export function keep(locals: Locals | undefined, state: RequestState): void {
  if (locals !== undefined) {
    // Another request's state here means the app shares one res.locals between responses: that request, maybe still
    // in flight, keeps it, and this one goes to the WeakMap.
    const held = locals[STATE];
    if (held === undefined || held.req === state.req) {
      try {
        locals[STATE] = state;
        return;
      } catch {
        // A frozen or sealed res.locals refuses the key: the WeakMap then.
      }
    }
  }
  parked = true;
  states.set(state.req, state);
}

const AUTH_ACCESSOR: PropertyDescriptor = {
  configurable: true,
  enumerable: true,
  get(this: object): unknown {
    return stateOf(this)?.auth;
  },
  // Apps (and other libraries) may assign req.auth themselves; what they assign is what they read back.
  set(this: object, auth: unknown) {
    const state = stateOf(this);
    if (state) state.auth = auth;
    else keep(localsOf(responseOf(this)), requestState(this, undefined, auth, undefined, undefined, null));
  },
};

// Prototypes that carry the accessor (Express 5 and 4 each have their own `request`).
const withAccessor = new WeakSet<object>();

/**
 * Installs the `req.auth` accessor on the request prototype every app of this Express copy shares (the one
 * `app.request` inherits from), so that it also holds after a mounted sub-app hands the request back to its
 * parent. True when `req.auth` now reads the adapter's state.
 */
export function installAuthAccessor(app: unknown): boolean {
  const appRequest = typeof app === 'function' ? (app as { request?: unknown }).request : undefined;
  if (!appRequest || typeof appRequest !== 'object') return false;
  const shared = Object.getPrototypeOf(appRequest) as object | null;
  // Never Node's own IncomingMessage.prototype: that would reach every server in the process.
  const target = shared && shared !== IncomingMessage.prototype ? shared : appRequest;
  if (withAccessor.has(target)) return true;
  const existing = Object.getOwnPropertyDescriptor(target, 'auth');
  if (existing && !existing.configurable) return false;
  Object.defineProperty(target, 'auth', AUTH_ACCESSOR);
  withAccessor.add(target);
  return true;
}

/** Assigns `req.auth` whatever its declared shape (the accessor's setter, or a plain property). */
export function setAuth(req: object, value: unknown): void {
  (req as { auth?: unknown }).auth = value;
}
