// RFC 9728 protected resource metadata: the document from the policy, its handler through Express, and the
// resource_metadata parameter of WWW-Authenticate challenges.
import { describe, expect, it } from 'vitest';
import express from 'express';
import request from 'supertest';
import { tokenGuard, requireScopes } from '../../src/adapters/express.js';
import {
  createGuard,
  PolicyError,
  protectedResourceMetadata,
  protectedResourceMetadataHandler,
  protectedResourceMetadataPath,
  UsageError,
  type TokenGuardPolicy,
} from '../../src/index.js';
import { basePolicy, jwtPolicy, signToken } from '../helpers/tokens.js';
import { bearer } from '../tokens/fixtures.js';

const META_URL = 'https://api.example.test/.well-known/oauth-protected-resource';

describe('protectedResourceMetadata', () => {
  it('names the issuers, the scopes the rules need, header bearer tokens and the DPoP algorithms', async () => {
    const policy: TokenGuardPolicy = {
      jwt: [await jwtPolicy(), await jwtPolicy({ issuer: ['https://b.example.test/', 'https://c.example.test/'] })],
      rules: [
        { path: '/orders/**', scopes: ['orders:read'] },
        { path: '/reports/**', scopes: { any: ['reports:read', 'admin'] } },
        { path: '/health', public: true },
      ],
      dpop: { origins: ['https://api.example.test'], algorithms: ['ES256'], required: true },
    };
    expect(protectedResourceMetadata(policy, { resource: 'https://api.example.test', resourceName: 'Orders API' })).toEqual({
      resource: 'https://api.example.test',
      authorization_servers: ['https://id.example.test/', 'https://b.example.test/', 'https://c.example.test/'],
      scopes_supported: ['admin', 'orders:read', 'reports:read'],
      bearer_methods_supported: ['header'],
      resource_name: 'Orders API',
      dpop_signing_alg_values_supported: ['ES256'],
      dpop_bound_access_tokens_required: true,
    });
  });

  it('takes explicit servers, scopes and extra members over what the policy says', async () => {
    const doc = protectedResourceMetadata(await basePolicy(), {
      resource: 'https://api.example.test/orders',
      authorizationServers: ['https://as.example.test'],
      scopesSupported: ['x'],
      extra: { resource_policy_uri: 'https://api.example.test/policy' },
    });
    expect(doc).toMatchObject({ authorization_servers: ['https://as.example.test'], scopes_supported: ['x'], resource_policy_uri: 'https://api.example.test/policy' });
  });

  it('refuses a resource that is not an https URL, and an invalid policy', async () => {
    for (const resource of ['http://api.example.test', 'api.example.test', 'https://api.example.test/#frag']) {
      expect(() => protectedResourceMetadata({ jwt: { issuer: 'i', audience: 'a', algorithms: ['HS256'], secret: 'x'.repeat(32) } }, { resource })).toThrow(UsageError);
    }
    expect(() => protectedResourceMetadata({} as TokenGuardPolicy, { resource: 'https://api.example.test' })).toThrow(PolicyError);
  });

  it('is served at the RFC 9728 §3.1 path, the well-known segment before the resource path', () => {
    expect(protectedResourceMetadataPath('https://api.example.test')).toBe('/.well-known/oauth-protected-resource');
    expect(protectedResourceMetadataPath('https://api.example.test/tenant/orders/')).toBe('/.well-known/oauth-protected-resource/tenant/orders');
  });
});

describe('serving it and pointing challenges at it', () => {
  it('answers GET on its path with the JSON through Express, ahead of the guard, and 405 to other methods', async () => {
    const policy = await basePolicy({ resourceMetadata: META_URL });
    const meta = protectedResourceMetadataHandler(policy, { resource: 'https://api.example.test' });
    const app = express();
    app.use((req, res, next) => {
      const r = meta.handle({ method: req.method, path: req.originalUrl });
      if (!r) return next();
      res.status(r.status).set(r.headers).send(r.body);
    });
    app.use(tokenGuard(policy));
    app.get('/orders/:id', (_req, res) => {
      res.json({ ok: true });
    });
    const res = await request(app).get('/.well-known/oauth-protected-resource');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body).toEqual(meta.metadata);
    expect((await request(app).post('/.well-known/oauth-protected-resource')).status).toBe(405);
    expect(meta.handle({ method: 'GET', path: '/elsewhere' })).toBeUndefined();

    // RFC 9728 §5.1: a client without a token learns where the metadata is.
    const anonymous = await request(app).get('/orders/1');
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers['www-authenticate']).toBe(`Bearer resource_metadata="${META_URL}"`);
  });

  it('adds resource_metadata to every challenge: invalid token, route scopes and rule scopes', async () => {
    const guard = createGuard(await basePolicy({ resourceMetadata: META_URL, realm: 'api' }));
    const bad = await guard.evaluate(bearer('eyJ.bad.token'));
    expect(bad.headers['WWW-Authenticate']).toBe(`Bearer realm="api", error="invalid_token", error_description="Malformed access token", resource_metadata="${META_URL}"`);
    const app = express();
    app.use(tokenGuard(await basePolicy({ resourceMetadata: META_URL })));
    app.get('/orders/:id', requireScopes('orders:admin'), (_req, res) => {
      res.json({ ok: true });
    });
    const res = await request(app)
      .get('/orders/1')
      .set('authorization', `Bearer ${await signToken({ scope: 'orders:read' })}`);
    expect(res.status).toBe(403);
    expect(res.headers['www-authenticate']).toContain(`resource_metadata="${META_URL}"`);
    expect(res.headers['www-authenticate']).toContain('error="insufficient_scope"');
  });

  it('sends no resource_metadata unless the policy names one', async () => {
    const guard = createGuard(await basePolicy());
    expect((await guard.evaluate({ method: 'GET', path: '/orders/1', headers: {}, remoteAddress: '127.0.0.1' })).headers['WWW-Authenticate']).toBe('Bearer');
  });
});
