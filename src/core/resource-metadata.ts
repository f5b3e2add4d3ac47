// OAuth 2.0 Protected Resource Metadata (RFC 9728): the document that tells clients which authorization
// servers issue tokens for this API and how to present them, derived from the policy, and a tiny handler.
import { UsageError } from '../leaf/errors.js';
import { toScopeRequirement } from '../checks/scopes.js';
import { validatePolicy } from './policy-schema.js';
import type { JwtPolicy, TokenGuardPolicy } from './policy-types.js';

/** The RFC 9728 §2 document, as far as token-guard fills it; `extra` members are added as given. */
export interface ProtectedResourceMetadata {
  resource: string;
  authorization_servers?: string[];
  scopes_supported?: string[];
  bearer_methods_supported: string[];
  resource_name?: string;
  resource_documentation?: string;
  dpop_signing_alg_values_supported?: string[];
  dpop_bound_access_tokens_required?: boolean;
  [member: string]: unknown;
}

/** Options of protectedResourceMetadata. */
export interface ProtectedResourceMetadataOptions {
  /** This API's resource identifier (RFC 9728 §1.2): an https URL without fragment, usually the tokens' `aud`. */
  resource: string;
  /** Issuers of tokens for this API. Default: every `jwt` issuer of the policy. */
  authorizationServers?: readonly string[];
  /** Scopes clients may ask for. Default: every scope the policy's rules name, sorted. */
  scopesSupported?: readonly string[];
  /** Human-readable name of the API. */
  resourceName?: string;
  /** URL of the API's documentation for developers. */
  resourceDocumentation?: string;
  /** Further members (e.g. `signed_metadata`, `jwks_uri`), added last. */
  extra?: Readonly<Record<string, unknown>>;
}

const isHttpsOrLoopback = (v: string): boolean => {
  try {
    const u = new URL(v);
    return u.hash === '' && (u.protocol === 'https:' || (u.protocol === 'http:' && /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])$/.test(u.hostname)));
  } catch {
    return false;
  }
};

/**
 * The protected resource metadata of an API guarded by `policy` (RFC 9728 §2). Throws UsageError for a
 * `resource` that is not an https URL (plain http only for loopback) and PolicyError for an invalid policy.
 *
 * Exported from `token-guard`.
 * @example
 * app.get('/.well-known/oauth-protected-resource', (_req, res) => res.json(protectedResourceMetadata(policy, { resource: 'https://api.example.com' })));
 */
export function protectedResourceMetadata(policy: TokenGuardPolicy, options: ProtectedResourceMetadataOptions): ProtectedResourceMetadata {
  const p = validatePolicy(policy);
  if (!options || typeof options.resource !== 'string' || !isHttpsOrLoopback(options.resource)) {
    throw new UsageError('protectedResourceMetadata: resource must be an https URL without fragment (plain http only for loopback)', {
      help: "pass this API's identifier, e.g. { resource: 'https://api.example.com' }",
    });
  }
  const jwts: readonly JwtPolicy[] = p.jwt === undefined ? [] : Array.isArray(p.jwt) ? (p.jwt as readonly JwtPolicy[]) : [p.jwt as JwtPolicy];
  const issuers = options.authorizationServers ?? [...new Set(jwts.flatMap((j) => (typeof j.issuer === 'string' ? [j.issuer] : [...j.issuer])))];
  const scopes = options.scopesSupported ?? [...new Set((p.rules ?? []).flatMap((r) => (r.scopes ? ((s) => [...s.all, ...s.any])(toScopeRequirement(r.scopes)) : [])))].sort();
  const doc: ProtectedResourceMetadata = { resource: options.resource, bearer_methods_supported: ['header'] };
  if (issuers.length) doc.authorization_servers = [...issuers];
  if (scopes.length) doc.scopes_supported = [...scopes];
  if (options.resourceName !== undefined) doc.resource_name = options.resourceName;
  if (options.resourceDocumentation !== undefined) doc.resource_documentation = options.resourceDocumentation;
  if (p.dpop) {
    doc.dpop_signing_alg_values_supported = [...(p.dpop.algorithms ?? ['ES256', 'RS256', 'PS256', 'EdDSA'])];
    if (p.dpop.required) doc.dpop_bound_access_tokens_required = true;
  }
  return Object.assign(doc, options.extra);
}

/**
 * Where the metadata of a resource is served (RFC 9728 §3.1): the well-known segment goes between the host
 * and the resource's path, so `https://api.example.com/orders` → `/.well-known/oauth-protected-resource/orders`.
 */
export function protectedResourceMetadataPath(resource: string): string {
  const path = new URL(resource).pathname.replace(/\/$/, '');
  return `/.well-known/oauth-protected-resource${path}`;
}

/** A framework-neutral answer: what to send. */
export interface MetadataResponse {
  status: 200 | 405;
  headers: Record<string, string>;
  body: string;
}

/** A ready handler for the metadata: its path, and the answer to a request there (undefined elsewhere). */
export interface ProtectedResourceMetadataHandler {
  /** The path to mount it on, from `resource` (RFC 9728 §3.1). */
  readonly path: string;
  /** The document, as built once. */
  readonly metadata: ProtectedResourceMetadata;
  /** The answer to `method path`, or undefined when the path is not the metadata's (pass the request on). */
  handle(request: { method: string; path: string }): MetadataResponse | undefined;
}

/**
 * The metadata document built once, with a handler any adapter can mount (mount it before the guard, or give
 * it a public rule: clients read it without a token).
 *
 * Exported from `token-guard`.
 * @example
 * const meta = protectedResourceMetadataHandler(policy, { resource: 'https://api.example.com' });
 * app.get(meta.path, (req, res) => { const r = meta.handle(req)!; res.status(r.status).set(r.headers).send(r.body); });
 */
export function protectedResourceMetadataHandler(policy: TokenGuardPolicy, options: ProtectedResourceMetadataOptions): ProtectedResourceMetadataHandler {
  const metadata = protectedResourceMetadata(policy, options);
  const path = protectedResourceMetadataPath(options.resource);
  const body = JSON.stringify(metadata);
  const ok: MetadataResponse = { status: 200, headers: { 'content-type': 'application/json', 'cache-control': 'public, max-age=3600' }, body };
  return {
    path,
    metadata,
    handle(request) {
      const target = typeof request.path === 'string' ? (request.path.split('?')[0] as string) : '';
      if (target !== path) return undefined;
      const method = typeof request.method === 'string' ? request.method.toUpperCase() : '';
      if (method !== 'GET' && method !== 'HEAD') return { status: 405, headers: { allow: 'GET, HEAD' }, body: '' };
      return { ...ok, headers: { ...ok.headers } };
    },
  };
}
