// How a Fastify app's router (find-my-way) reads a path, from the app's options, read once at registration: letter
// case, trailing slashes, and `;` as the end of the path, so rules read a path as the router does.
import type { FastifyInstance } from 'fastify';

/** The router options the guard follows, as `initialConfig` shows them (top level: the older, deprecated spelling). */
type RouterConfig = Record<'caseSensitive' | 'ignoreTrailingSlash' | 'useSemicolonDelimiter', unknown>;

/** How the app's router reads a path: letter case, trailing slashes, and `;` as a query delimiter. */
export interface FastifyRouting {
  caseSensitive: boolean;
  ignoreTrailingSlash: boolean;
  semicolon: boolean;
}

/**
 * Reads the router's options once, as Fastify resolves them: `routerOptions.x`, else the top-level `x`, else the default.
 * `initialConfig.routerOptions` fills in `false` for the options it knows about whenever `routerOptions` is given, so an
 * explicit `false` there cannot be told from one left out; that case takes the safe reading: `/x/` a route of its own,
 * and a path cut at `;` (the guard then reads `/admin;x` as `/admin`, under the rule meant for `/admin`).
 */
export function routingOf(app: FastifyInstance): FastifyRouting {
  const config = app.initialConfig as Partial<RouterConfig> & { routerOptions?: Partial<RouterConfig> };
  const router = config.routerOptions;
  const read = (key: keyof RouterConfig) => (typeof router?.[key] === 'boolean' ? router[key] : config[key]);
  const both = (key: keyof RouterConfig) => router?.[key] === true || config[key] === true;
  return {
    caseSensitive: read('caseSensitive') !== false,
    ignoreTrailingSlash: router === undefined ? config.ignoreTrailingSlash === true : router.ignoreTrailingSlash === true,
    semicolon: both('useSemicolonDelimiter'),
  };
}

/**
 * The target as find-my-way routes it under `useSemicolonDelimiter`: cut at the first `;` before any `?` or `#` (from the
 * second character on, as find-my-way scans). A `;` only in the query, or none, leaves the target as is (no allocation).
 */
export function cutAtSemicolon(url: string): string {
  const semi = url.indexOf(';', 1);
  if (semi === -1) return url;
  const query = url.indexOf('?');
  const hash = url.indexOf('#');
  if ((query !== -1 && query < semi) || (hash !== -1 && hash < semi)) return url;
  return url.slice(0, semi);
}
