// Fastify plugin specifics the scenario table does not show: scope over the whole app, metadata,
// decoration, the { guard } option, preHandler placement and start-up errors.
import { afterEach, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import { tokenGuard, requireScopes } from '../../src/adapters/fastify.js';
import { MemoryStore, PolicyError, createGuard } from '../../src/index.js';
import { basePolicy, signToken } from '../helpers/tokens.js';

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const apps: FastifyInstance[] = [];

function app(): FastifyInstance {
  const a = Fastify();
  apps.push(a);
  return a;
}

afterEach(async () => {
  while (apps.length) await apps.pop()?.close();
});

describe('Fastify plugin', () => {
  it('carries the metadata fastify-plugin would set, without depending on it', () => {
    const meta = tokenGuard as unknown as Record<symbol, unknown>;
    expect(meta[Symbol.for('skip-override')]).toBe(true);
    expect(meta[Symbol.for('fastify.display-name')]).toBe('token-guard');
    expect(meta[Symbol.for('plugin-meta')]).toEqual({ name: 'token-guard', fastify: '5.x' });
  });

  it('guards routes in sibling plugins, routes declared before it, and paths no route serves', async () => {
    const a = app();
    a.get('/orders/early', async () => ({ early: true }));
    await a.register(tokenGuard, await basePolicy());
    await a.register(async (child) => {
      child.get('/orders/:id', async (req) => ({ reason: req.auth?.decision.reason }));
    });
    for (const url of ['/orders/early', '/orders/1', '/orders/none/such']) {
      const res = await a.inject({ url });
      expect([url, res.statusCode, res.json().reason]).toEqual([url, 401, 'token.missing']);
    }
    const ok = await a.inject({ url: '/orders/1', headers: bearer(await signToken({ scope: 'orders:read' })) });
    expect([ok.statusCode, ok.json()]).toEqual([200, { reason: 'ok' }]);
  });

  it('decorates request.auth with null until the guard has run', async () => {
    const a = app();
    let before: unknown = 'unset';
    a.addHook('onRequest', async (req) => {
      before = req.auth;
    });
    await a.register(tokenGuard, await basePolicy());
    a.get('/health', async (req) => ({ auth: req.auth?.decision.reason }));
    const res = await a.inject({ url: '/health' });
    expect(before).toBeNull();
    expect(res.json()).toEqual({ auth: 'ok' });
  });

  it('accepts { guard, errors } to share a guard made with createGuard', async () => {
    const store = new MemoryStore();
    const guard = createGuard(await basePolicy({ store }));
    const a = app();
    await a.register(tokenGuard, { guard, errors: 'throw' });
    a.get('/orders/:id', async () => ({ ok: true }));
    const token = await signToken({ scope: 'orders:read', jti: 'fastify-revoke' });
    expect((await a.inject({ url: '/orders/1', headers: bearer(token) })).statusCode).toBe(200);
    await guard.revoke('fastify-revoke');
    const res = await a.inject({ url: '/orders/1', headers: bearer(token) });
    // Fastify's default error handler: status and headers from the error.
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/error="invalid_token"/);
    expect(res.json()).toMatchObject({ code: 'token.revoked', message: 'Access token revoked' });
  });

  it('runs requireScopes as a preHandler on a route inside an encapsulated plugin', async () => {
    const a = app();
    await a.register(tokenGuard, await basePolicy({ rules: [{ path: '/v1/**' }] }));
    await a.register(
      async (child) => {
        child.get('/audit', { preHandler: requireScopes('admin', 'audit:read') }, async (req) => ({ reason: req.auth?.decision.reason }));
      },
      { prefix: '/v1' },
    );
    const ok = await a.inject({ url: '/v1/audit', headers: bearer(await signToken({ scope: 'admin audit:read' })) });
    expect([ok.statusCode, ok.json()]).toEqual([200, { reason: 'ok' }]);
    const refused = await a.inject({ url: '/v1/audit', headers: bearer(await signToken({ scope: 'admin' })) });
    expect([refused.statusCode, refused.headers['content-type'], refused.json().reason]).toEqual([403, 'application/problem+json', 'scope.insufficient']);
    expect(refused.headers['www-authenticate']).toContain('scope="admin audit:read"');
  });

  it('fails a requireScopes route loudly when the plugin is not registered', async () => {
    const a = app();
    a.get('/x', { preHandler: requireScopes('admin') }, async () => ({ ok: true }));
    const res = await a.inject({ url: '/x' });
    expect(res.statusCode).toBe(500);
    expect(res.json().message).toMatch(/tokenGuard plugin registered/);
  });

  it('fails app.ready() for an invalid policy or a guard mixed with a policy', async () => {
    const policy = await basePolicy();
    await expect(
      app()
        .register(tokenGuard, { ...policy, rules: [{ path: 'no-slash' }] })
        .ready(),
    ).rejects.toBeInstanceOf(PolicyError);
    await expect(
      app()
        .register(tokenGuard, { guard: createGuard(policy), rules: [] } as never)
        .ready(),
    ).rejects.toThrow(/only errors may be given/);
    await expect(
      app()
        .register(tokenGuard, { guard: {} } as never)
        .ready(),
    ).rejects.toThrow(TypeError);
  });

  it('answers with the exact problem+json content type (no charset appended)', async () => {
    const a = app();
    await a.register(tokenGuard, await basePolicy());
    const res = await a.inject({ url: '/orders/1' });
    expect(res.headers['content-type']).toBe('application/problem+json');
    expect(res.headers['content-length']).toBe(String(Buffer.byteLength(res.body)));
  });
});
