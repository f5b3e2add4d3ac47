// How a Fastify app's router (find-my-way) reads a path, from the app's options, read once at registration: letter
// case and trailing slashes, so rules read a path as the router does.
import type { FastifyInstance } from 'fastify';

/** The router options the guard follows, as `initialConfig` shows them (top level: the older, deprecated spelling). */
type RouterConfig = Record<'caseSensitive' | 'ignoreTrailingSlash', unknown>;

/** How the app's router reads a path: letter case and trailing slashes. */
export interface FastifyRouting {
  caseSensitive: boolean;
  ignoreTrailingSlash: boolean;
}

/**
 * Reads the router's options once, as Fastify resolves them: `routerOptions.x`, else the top-level `x`, else the default.
 * `initialConfig.routerOptions` fills in `false` for the options it knows about whenever `routerOptions` is given, so an
 * explicit `false` there cannot be told from one left out; that case takes the safe reading: `/x/` a route of its own.
 */
export function routingOf(app: FastifyInstance): FastifyRouting {
  const config = app.initialConfig as Partial<RouterConfig> & { routerOptions?: Partial<RouterConfig> };
  const router = config.routerOptions;
  const read = (key: keyof RouterConfig) => (typeof router?.[key] === 'boolean' ? router[key] : config[key]);
  return {
    caseSensitive: read('caseSensitive') !== false,
    ignoreTrailingSlash: router === undefined ? config.ignoreTrailingSlash === true : router.ignoreTrailingSlash === true,
  };
}
