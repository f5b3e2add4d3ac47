// A real OAuth 2.0 / OpenID Connect authorization server (oidc-provider) on 127.0.0.1, for tests that need an
// IdP: discovery, RFC 9068 JWT access tokens by client credentials with resource indicators, introspection,
// key rotation while running, and outages (stopped, answering 503, or hanging).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import Provider, { type Configuration } from 'oidc-provider';

/** How the server behaves: serving, answering 503 to everything, or accepting requests and never answering. */
export type OidcMode = 'up' | 'error' | 'hang';

/** Options of startOidcProvider. */
export interface OidcProviderOptions {
  /** The resource indicator (the tokens' `aud`). Default: `'https://api.example.test'`. */
  resource?: string;
  /** Scopes the resource server grants. Default: `['orders:read', 'orders:write']`. */
  scopes?: readonly string[];
  /** Signing algorithm of the access tokens and keys. Default: `'ES256'`. */
  alg?: 'ES256' | 'RS256' | 'EdDSA';
  /** The issuer advertised, from the server's base URL. Default: the base URL itself (a mismatch test changes it). */
  issuer?: (baseUrl: string) => string;
  /** Overrides the `jti` of every access token (to make two issuers' token ids collide). */
  jti?: () => string;
  /** The client id and secret the client-credentials client uses. Default: `'client'`, `'client-secret-…'`. */
  clientId?: string;
  clientSecret?: string;
  /** Access token lifetime in seconds. Default: 3600. */
  accessTokenTtl?: number;
  /**
   * DPoP (RFC 9449) server nonces at the token endpoint: with `nonceSecret` (32 bytes) the provider issues
   * `DPoP-Nonce`; with `requireNonce` it answers a proof without one `use_dpop_nonce`. Default: DPoP on, no nonces.
   */
  dpop?: { nonceSecret: Uint8Array; requireNonce?: boolean };
}

/** A running oidc-provider and the controls a test needs. */
export interface OidcServer {
  /** `http://127.0.0.1:<port>` */
  readonly baseUrl: string;
  /** The issuer it advertises and signs with. */
  readonly issuer: string;
  readonly resource: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** `<baseUrl>/jwks` */
  readonly jwksUri: string;
  /** The public keys it publishes now (newest first). */
  publicKeys(): JWK[];
  /** Requests received, by path (`/jwks`, `/.well-known/openid-configuration`, …), to assert refetch counts. */
  readonly hits: Map<string, number>;
  /** An RFC 9068 `at+jwt` access token from the client credentials grant. */
  accessToken(options?: { scope?: string; resource?: string }): Promise<string>;
  /**
   * Rotates the signing key as a deployment would: a new key signs from now on and is published first; the
   * old one stays published (`keepOld`, default true) so its tokens keep verifying.
   */
  rotateKeys(options?: { keepOld?: boolean }): Promise<void>;
  /** Switches between serving, answering 503 and hanging (an outage the socket still accepts). */
  setMode(mode: OidcMode): void;
  /** Closes the listening socket and every connection (connection refused from now on); `start` resumes on the same port. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops for good. */
  close(): Promise<void>;
}

interface SigningKey {
  privateJwk: JWK;
  publicJwk: JWK;
}

async function newKey(alg: 'ES256' | 'RS256' | 'EdDSA', n: number): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = `key-${n}-${Math.random().toString(36).slice(2, 8)}`;
  return {
    privateJwk: { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' },
    publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' },
  };
}

/**
 * Starts oidc-provider on 127.0.0.1 (a free port) with one confidential client allowed the client credentials
 * grant, resource indicators issuing JWT access tokens, and introspection on.
 * @example
 * const idp = await startOidcProvider();
 * const token = await idp.accessToken({ scope: 'orders:read' });
 * await idp.close();
 */
export async function startOidcProvider(options: OidcProviderOptions = {}): Promise<OidcServer> {
  const resource = options.resource ?? 'https://api.example.test';
  const scopes = options.scopes ?? ['orders:read', 'orders:write'];
  const alg = options.alg ?? 'ES256';
  const clientId = options.clientId ?? 'client';
  const clientSecret = options.clientSecret ?? 'client-secret-that-is-long-enough-0123456789';
  const ttl = options.accessTokenTtl ?? 3600;
  const hits = new Map<string, number>();
  const sockets = new Set<Socket>();
  let mode: OidcMode = 'up';
  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  let keys: SigningKey[] = [await newKey(alg, 1)];
  let keyCount = 1;

  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    if (mode === 'hang') return; // the request is left open; stop/close destroys it
    if (mode === 'error' || !handler) {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('unavailable');
      return;
    }
    handler(req, res);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const baseUrl = `http://127.0.0.1:${port}`;
  const issuer = options.issuer ? options.issuer(baseUrl) : baseUrl;

  const build = () => {
    const configuration: Configuration = {
      clients: [
        { client_id: clientId, client_secret: clientSecret, grant_types: ['client_credentials'], redirect_uris: [], response_types: [], id_token_signed_response_alg: alg },
      ],
      jwks: { keys: keys.map((k) => k.privateJwk) },
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        introspection: { enabled: true },
        revocation: { enabled: true },
        ...(options.dpop && {
          dPoP: { enabled: true, nonceSecret: Buffer.from(options.dpop.nonceSecret), requireNonce: () => options.dpop?.requireNonce === true },
        }),
        resourceIndicators: {
          enabled: true,
          defaultResource: () => resource,
          useGrantedResource: () => true,
          getResourceServerInfo: (_ctx, indicator) => ({
            scope: scopes.join(' '),
            audience: indicator,
            accessTokenTTL: ttl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg } },
          }),
        },
      },
      scopes: [...scopes],
      ...(options.jti && {
        formats: {
          customizers: {
            jwt: (_ctx, _token, jwt) => {
              jwt.payload['jti'] = (options.jti as () => string)();
            },
          },
        },
      }),
    };
    const provider = new Provider(issuer, configuration);
    // Its own errors are answered to the client; the test output need not repeat them.
    provider.on('server_error', () => undefined);
    handler = provider.callback();
  };
  build();

  async function accessToken(o: { scope?: string; resource?: string } = {}): Promise<string> {
    const body = new URLSearchParams({ grant_type: 'client_credentials', resource: o.resource ?? resource, scope: o.scope ?? scopes.join(' ') });
    const res = await fetch(`${baseUrl}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body,
    });
    const json = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
    if (!res.ok || typeof json.access_token !== 'string') throw new Error(`token request failed: ${res.status} ${json.error ?? ''} ${json.error_description ?? ''}`);
    return json.access_token;
  }

  const dropConnections = () => {
    for (const s of sockets) s.destroy();
    sockets.clear();
  };

  return {
    baseUrl,
    issuer,
    resource,
    clientId,
    clientSecret,
    jwksUri: `${baseUrl}/jwks`,
    hits,
    publicKeys: () => keys.map((k) => k.publicJwk),
    accessToken,
    async rotateKeys(o = {}) {
      keyCount += 1;
      const fresh = await newKey(alg, keyCount);
      keys = o.keepOld === false ? [fresh] : [fresh, ...keys];
      build();
    },
    setMode(m) {
      mode = m;
    },
    async stop() {
      dropConnections();
      if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    async start() {
      if (!server.listening) await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    },
    async close() {
      dropConnections();
      if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
