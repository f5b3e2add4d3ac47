// How an Express 5 or 4 app routes, read from its router tree once per app: letter case and trailing slashes (so
// rules read a path as the routers do), and what was mounted before the guard (TOKEN_GUARD_NOT_MOUNTED).
import { warnOnce } from '../leaf/warnings.js';

/** The parts of an Express router the adapter reads: how it routes case and trailing slashes, and what is mounted in which order. */
interface ExpressRouterLike {
  caseSensitive?: unknown;
  strict?: unknown;
  stack?: unknown;
}

/** The parts of an Express 5 or 4 app that say how it routes and where the guard sits. */
export interface ExpressAppLike {
  /** Express 4's router (its `app.router` getter throws). */
  _router?: ExpressRouterLike;
  /** Express 5's router. */
  router?: ExpressRouterLike;
  enabled?: (setting: string) => boolean;
  /** The app this one is mounted in (`app.use(path, subApp)` sets it). */
  parent?: unknown;
}

/** One entry of an Express router's stack: a middleware (a Router, a mounted app's wrapper, …) or a route. */
interface ExpressLayerLike {
  handle?: unknown;
  route?: { path?: unknown; methods?: Record<string, boolean>; stack?: unknown };
}

/** How the routers of one app read a path, as GuardRequest carries it. */
export interface ExpressRouting {
  readonly caseSensitive: boolean | 'mixed';
  readonly ignoreTrailingSlash: boolean;
}

/** The app's router (Express 4 keeps it on `_router` and throws from `app.router`), if it has one yet. */
function appRouter(app: ExpressAppLike): ExpressRouterLike | undefined {
  try {
    return app._router ?? app.router;
  } catch {
    return undefined;
  }
}

/** An app's own router settings: its router's flags (fixed when Express built it), else the app settings it will read. */
function appSettings(app: ExpressAppLike): { cased: boolean; strict: boolean } {
  const router = appRouter(app);
  const setting = (name: string) => typeof app.enabled === 'function' && app.enabled(name) === true;
  return {
    cased: typeof router?.caseSensitive === 'boolean' ? router.caseSensitive : setting('case sensitive routing'),
    strict: typeof router?.strict === 'boolean' ? router.strict : setting('strict routing'),
  };
}

/** What a walk of the router tree found. */
interface Found {
  cased: Set<boolean>;
  strict: boolean;
  /** Mounted sub-apps: Express wraps each in a `mounted_app` function, so its router cannot be read. */
  subApps: number;
  seen: Set<object>;
}

function walk(stack: unknown, found: Found): void {
  if (!Array.isArray(stack)) return;
  for (const layer of stack as (ExpressLayerLike | undefined)[]) {
    if (layer?.route) walk(layer.route.stack, found);
    const fn = layer?.handle;
    if (typeof fn !== 'function' || found.seen.has(fn)) continue;
    const handle = fn as ExpressRouterLike & { name: string };
    found.seen.add(fn);
    if (Array.isArray(handle.stack)) {
      // Router({ caseSensitive, strict }): each defaults to off, whatever the app's settings.
      found.cased.add(handle.caseSensitive === true);
      if (handle.strict === true) found.strict = true;
      walk(handle.stack, found);
    } else if (handle.name === 'mounted_app') {
      found.subApps++;
    }
  }
}

/**
 * How the app's routers read a path. Letter case: the one setting every router shares, else `'mixed'` (routers that
 * disagree, or a sub-app whose router cannot be read), where rules take the strict reading per kind. Trailing slashes:
 * ignored only when no router is strict and none is hidden. Warns once (TOKEN_GUARD_MIXED_CASE_ROUTING) on `'mixed'`.
 */
export function readRouting(app: ExpressAppLike): ExpressRouting {
  const own = appSettings(app);
  const found: Found = { cased: new Set([own.cased]), strict: own.strict, subApps: 0, seen: new Set() };
  walk(appRouter(app)?.stack, found);
  // An app mounted in another is reached through its parents' mount paths, matched with their case settings.
  for (let parent = app.parent, depth = 0; typeof parent === 'function' && depth < 16; parent = (parent as ExpressAppLike).parent, depth++) {
    found.cased.add(appSettings(parent as ExpressAppLike).cased);
  }
  const hidden = found.subApps > 0;
  if (found.cased.size === 1 && !hidden) return { caseSensitive: own.cased, ignoreTrailingSlash: !found.strict };
  const why = found.cased.size > 1 ? 'its routers do not all read letter case the same way' : `a mounted sub-app's router settings cannot be read`;
  warnOnce(
    'TOKEN_GUARD_MIXED_CASE_ROUTING',
    `token-guard: the Express app may route letter case in more than one way (${why}): rules that restrict access match paths case-insensitively and public rules only in their own case, so no spelling reaches a route under a laxer rule${hidden ? ', and a trailing slash is read as a route of its own' : ''}. Set the policy's caseSensitive to read case one way everywhere.`,
  );
  return { caseSensitive: 'mixed', ignoreTrailingSlash: !found.strict && !hidden };
}

/**
 * The routes (and routers) registered on the app before this guard: requests they answer never meet the
 * guard. Read from the app's router stack, once per app; empty when the guard is not mounted on the app itself.
 */
export function routesBefore(app: ExpressAppLike, middleware: unknown): string[] {
  const stack = appRouter(app)?.stack;
  if (!Array.isArray(stack)) return [];
  const at = stack.findIndex((layer: ExpressLayerLike | undefined) => layer?.handle === middleware);
  const before: string[] = [];
  for (const layer of stack.slice(0, Math.max(at, 0)) as (ExpressLayerLike | undefined)[]) {
    const route = layer?.route;
    if (route) {
      const methods = Object.keys(route.methods ?? {})
        .filter((m) => m !== '_all' && route.methods?.[m])
        .map((m) => m.toUpperCase());
      before.push(`${methods.length ? methods.join(',') : 'ALL'} ${String(route.path)}`);
    } else if (layer?.handle && Array.isArray((layer.handle as { stack?: unknown }).stack)) {
      before.push('a Router');
    }
  }
  return before;
}
