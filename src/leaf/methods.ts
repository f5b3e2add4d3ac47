// HTTP method names a rule may list: the registered ones (Node's parser knows exactly these), plus
// extension methods the policy declares on purpose, so a typo such as 'GTE' cannot leave a rule inert.
import { METHODS } from 'node:http';
import { closest } from './suggest.js';

// RFC 9110 §9 and PATCH (RFC 5789): always registered, whatever `http.METHODS` says on this runtime.
const CORE_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT'];

/** Registered HTTP methods: RFC 9110's, and every one Node's HTTP parser accepts (`http.METHODS`: WebDAV, PURGE, QUERY, ...). */
export const HTTP_METHODS: ReadonlySet<string> = new Set([...CORE_METHODS, ...(Array.isArray(METHODS) ? METHODS : [])]);

/** RFC 9110 §5.6.2 token: what a method name may be made of. */
export const METHOD_TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Why a rule's method name is refused, or undefined when it is fine. Method names are case-sensitive
 * (RFC 9110 §9.1) and registered ones are upper-case; anything else must be declared in
 * `extensionMethods`, so a misspelling is refused instead of making its rule match nothing.
 */
export function checkMethod(method: string, extensions: ReadonlySet<string>): string | undefined {
  if (method === '*' || method.toUpperCase() === 'ALL') return `"${method}" is not a method: omit methods to cover every method`;
  if (!METHOD_TOKEN_RE.test(method)) return `expected an HTTP method name such as "GET" (got ${JSON.stringify(method)})`;
  if (HTTP_METHODS.has(method) || extensions.has(method)) return undefined;
  const upper = method.toUpperCase();
  if (HTTP_METHODS.has(upper) || extensions.has(upper)) return `write "${upper}": method names are upper-case`;
  const near = closest(method, [...HTTP_METHODS, ...extensions]);
  const hint = near ? ` (did you mean "${near}"?)` : '';
  return `"${method}" is not a registered HTTP method${hint}; to use an extension method on purpose, declare it in the policy: extensionMethods: ['${upper}']`;
}
