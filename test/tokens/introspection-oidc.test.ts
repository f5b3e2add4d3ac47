// Opaque access tokens from a real authorization server (oidc-provider on 127.0.0.1) checked through its
// introspection endpoint: by the Introspector, and through a guard mounted in Express. Real time throughout: the
// server stamps its tokens with its own clock.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import Provider from 'oidc-provider';
import { tokenGuard } from '../../src/adapters/express.js';
import { MemoryStore, type TokenGuardPolicy } from '../../src/index.js';
import { compileIntrospection, Introspector, type IntrospectionPolicy } from '../../src/tokens/introspection.js';

const RESOURCE = 'https://api.example.test';
const APP_SECRET = 'app-secret-0123456789012345678901234567';
const RS_SECRET = 'rs-secret-0123456789012345678901234567890';

interface OpaqueIdp {
  baseUrl: string;
  introspection: string;
  rsKey: JWK;
  asKeys: JWK[];
  token(scope?: string): Promise<string>;
  revoke(token: string): Promise<void>;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

/**
 * oidc-provider issuing opaque access tokens for RESOURCE (the harness in helpers/oidc.ts issues JWTs), with a
 * client `app` that gets them, and two resource-server clients that introspect: `rs` (client_secret_basic, signed
 * answers available) and `rs-pk` (private_key_jwt).
 */
async function startOpaqueIdp(): Promise<OpaqueIdp> {
  const as = await generateKeyPair('ES256', { extractable: true });
  const rs = await generateKeyPair('ES256', { extractable: true });
  const asPublic = { ...(await exportJWK(as.publicKey)), kid: 'as-1', alg: 'ES256', use: 'sig' };
  const server: Server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const baseUrl = `http://127.0.0.1:${port}`;
  const algs = { id_token_signed_response_alg: 'ES256', introspection_signed_response_alg: 'ES256' } as const;
  const provider = new Provider(baseUrl, {
    clients: [
      { client_id: 'app', client_secret: APP_SECRET, grant_types: ['client_credentials'], redirect_uris: [], response_types: [], ...algs },
      { client_id: 'rs', client_secret: RS_SECRET, grant_types: [], redirect_uris: [], response_types: [], ...algs },
      {
        client_id: 'rs-pk',
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: 'ES256',
        jwks: { keys: [{ ...(await exportJWK(rs.publicKey)), kid: 'rs-1' }] },
        grant_types: [],
        redirect_uris: [],
        response_types: [],
        ...algs,
      },
    ],
    jwks: { keys: [{ ...(await exportJWK(as.privateKey)), kid: 'as-1', alg: 'ES256', use: 'sig' }] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true, allowedPolicy: async () => true },
      jwtIntrospection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, audience) => ({ scope: 'orders:read orders:write', audience, accessTokenTTL: 3600, accessTokenFormat: 'opaque' }),
      },
    },
    ttl: { ClientCredentials: 3600 },
    scopes: ['orders:read', 'orders:write'],
  });
  provider.on('server_error', () => undefined);
  const callback = provider.callback();
  server.on('request', callback);
  const basic = `Basic ${Buffer.from(`app:${APP_SECRET}`).toString('base64')}`;
  const form = { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' };
  return {
    baseUrl,
    introspection: `${baseUrl}/token/introspection`,
    rsKey: { ...(await exportJWK(rs.privateKey)), kid: 'rs-1' },
    asKeys: [asPublic],
    async token(scope = 'orders:read') {
      const res = await fetch(`${baseUrl}/token`, {
        method: 'POST',
        headers: form,
        body: new URLSearchParams({ grant_type: 'client_credentials', scope, resource: RESOURCE }),
      });
      const json = (await res.json()) as { access_token?: string };
      if (typeof json.access_token !== 'string') throw new Error(`token request failed: ${JSON.stringify(json)}`);
      return json.access_token;
    },
    async revoke(token) {
      const res = await fetch(`${baseUrl}/token/revocation`, { method: 'POST', headers: form, body: new URLSearchParams({ token }) });
      if (res.status !== 200) throw new Error(`revocation failed: ${res.status}`);
    },
    async down() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
    async up() {
      await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    },
    async close() {
      server.closeAllConnections();
      if (server.listening) await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe('introspection against oidc-provider', () => {
  let idp: OpaqueIdp;
  beforeAll(async () => {
    idp = await startOpaqueIdp();
  });
  afterAll(() => idp?.close());

  const introspector = (extra: Partial<IntrospectionPolicy> = {}) =>
    new Introspector(compileIntrospection({ endpoint: idp.introspection, clientId: 'rs', clientSecret: RS_SECRET, ...extra } as IntrospectionPolicy, 5));

  it('reads an opaque token the server issued, authenticated by client secret', async () => {
    const token = await idp.token('orders:read');
    const a = await introspector({ audience: RESOURCE, issuer: idp.baseUrl }).introspect(token, Date.now());
    expect(a).toMatchObject({ info: { kind: 'opaque', scopes: ['orders:read'], claims: { client_id: 'app', aud: RESOURCE } } });
  });

  it('authenticates with private_key_jwt', async () => {
    const token = await idp.token('orders:read orders:write');
    const a = await introspector({ clientId: 'rs-pk', clientSecret: undefined, privateKeyJwt: { key: idp.rsKey, alg: 'ES256', audience: idp.baseUrl } }).introspect(
      token,
      Date.now(),
    );
    expect(a).toMatchObject({ info: { scopes: ['orders:read', 'orders:write'] } });
  });

  it('accepts the server’s signed answers (RFC 9701), verified with its key', async () => {
    const token = await idp.token();
    const a = await introspector({ jwtResponse: { issuer: idp.baseUrl, algorithms: ['ES256'], keys: idp.asKeys } }).introspect(token, Date.now());
    expect(a).toMatchObject({ info: { scopes: ['orders:read'] } });
  });

  it('fails closed on signed answers checked against a key the server does not use', async () => {
    const other = { ...(await exportJWK((await generateKeyPair('ES256')).publicKey)), kid: 'as-1' };
    const a = await introspector({ jwtResponse: { issuer: idp.baseUrl, algorithms: ['ES256'], keys: [other] } }).introspect(await idp.token(), Date.now());
    expect(a).toMatchObject({ reason: 'idp.unavailable' });
  });

  it('reads a token the server revoked as inactive, and a made-up one too', async () => {
    const token = await idp.token();
    await idp.revoke(token);
    expect(await introspector().introspect(token, Date.now())).toMatchObject({ reason: 'token.invalid', detail: 'token is not active' });
    expect(await introspector().introspect('made-up-token-0123456789abcdefghijklmnopq', Date.now())).toMatchObject({ reason: 'token.invalid' });
  });

  it('fails closed when the client credentials are wrong (the server answers 401)', async () => {
    expect(await introspector({ clientSecret: 'wrong-secret' }).introspect(await idp.token(), Date.now())).toMatchObject({ reason: 'idp.unavailable' });
  });

  describe('through a guard in Express', () => {
    const policy = (extra: Partial<IntrospectionPolicy> = {}): TokenGuardPolicy =>
      ({
        introspection: { endpoint: idp.introspection, clientId: 'rs', clientSecret: RS_SECRET, audience: RESOURCE, cacheMaxAge: 0, ...extra },
        store: new MemoryStore(),
        rules: [
          { methods: ['GET'], path: '/orders/**', scopes: ['orders:read'] },
          { methods: ['POST'], path: '/orders/**', scopes: ['orders:write'] },
        ],
      }) as TokenGuardPolicy;

    const app = (p: TokenGuardPolicy) => {
      const a = express();
      a.use(tokenGuard(p));
      a.all('/orders/:id', (req, res) => res.json({ kind: req.auth?.token?.kind, scopes: req.auth?.token?.scopes }));
      return a;
    };

    it('lets an opaque token through with its scopes, refuses a missing scope, a revoked token, and answers 503 while the server is down', async () => {
      const server = app(policy());
      const token = await idp.token('orders:read');
      const ok = await request(server).get('/orders/1').set('authorization', `Bearer ${token}`);
      expect(ok.status).toBe(200);
      expect(ok.body).toEqual({ kind: 'opaque', scopes: ['orders:read'] });
      const write = await request(server).post('/orders/1').set('authorization', `Bearer ${token}`);
      expect(write.status).toBe(403);
      expect(write.body.reason).toBe('scope.insufficient');

      await idp.down();
      try {
        const down = await request(server).get('/orders/1').set('authorization', `Bearer ${token}`);
        expect(down.status).toBe(503);
        expect(down.body.reason).toBe('idp.unavailable');
      } finally {
        await idp.up();
      }

      await idp.revoke(token);
      const revoked = await request(server).get('/orders/1').set('authorization', `Bearer ${token}`);
      expect(revoked.status).toBe(401);
      expect(revoked.headers['www-authenticate']).toContain('invalid_token');
      expect(JSON.stringify(revoked.body)).not.toContain(token);
    });

    it('keeps serving a cached answer until cacheMaxAge, then sees the revocation', async () => {
      const token = await idp.token('orders:read');
      const p = policy({ cacheMaxAge: '1h' });
      const server = app(p);
      await request(server).get('/orders/1').set('authorization', `Bearer ${token}`).expect(200);
      await idp.revoke(token);
      // Cached (what cacheMaxAge trades for fewer round trips)…
      await request(server).get('/orders/1').set('authorization', `Bearer ${token}`).expect(200);
      // …and refused once the cache is dropped.
      const { createGuard } = await import('../../src/index.js');
      const fresh = createGuard(p);
      const d = await fresh.evaluate({ method: 'GET', path: '/orders/1', headers: { authorization: `Bearer ${token}` }, remoteAddress: '127.0.0.1' });
      expect(d.reason).toBe('token.invalid');
    });
  });
});
