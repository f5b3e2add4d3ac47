// The `authShape` adapter option, through real HTTP: the token lands where express-oauth2-jwt-bearer
// (`req.auth.payload`), express-jwt (`req.auth` = claims), koa-jwt (`ctx.state.user`) and @fastify/jwt
// (`request.user`) put it, while requireScopes and refusals work as without it.
import { describe, expect, it } from 'vitest';
import express from 'express';
import Koa from 'koa';
import Router from '@koa/router';
import Fastify from 'fastify';
import request from 'supertest';
import { tokenGuard as expressGuard, requireScopes as expressScopes, type PayloadAuth } from '../../src/adapters/express.js';
import { tokenGuard as koaGuard } from '../../src/adapters/koa.js';
import { tokenGuard as fastifyGuard } from '../../src/adapters/fastify.js';
import { MemoryStore, createGuard } from '../../src/index.js';
import { basePolicy, signToken, storeApiKey } from '../helpers/tokens.js';

const bearer = (t: string) => ({ Authorization: `Bearer ${t}` });

async function expressApp(shape: 'payload' | 'claims' | 'native' | undefined, where: 'policy' | 'options' = 'options') {
  const store = new MemoryStore();
  const policy = await basePolicy({ store });
  const mw = where === 'policy' ? expressGuard({ ...policy, authShape: shape }) : expressGuard(policy, { authShape: shape });
  const app = express();
  app.use(mw);
  // The handlers read req.auth as the shape's library types it (the app would declare ExpressAuthShape).
  app.get('/health', (req, res) => {
    res.json({ auth: req.auth ?? null });
  });
  app.get('/orders/:id', (req, res) => {
    res.json({ auth: req.auth });
  });
  app.get('/reports/:id', expressScopes('reports:read'), (req, res) => {
    res.json({ sub: (req.auth as unknown as PayloadAuth).payload.sub });
  });
  return { app, store };
}

describe('authShape on Express', () => {
  it("'payload' gives req.auth = { payload, header, token } as express-oauth2-jwt-bearer does", async () => {
    const { app } = await expressApp('payload');
    const token = await signToken({ scope: 'orders:read', tenant: 'acme' });
    const res = await request(app).get('/orders/7').set(bearer(token));
    expect(res.status).toBe(200);
    const auth = res.body.auth as PayloadAuth;
    expect(auth.payload).toMatchObject({ sub: 'alice', scope: 'orders:read', tenant: 'acme', iss: 'https://id.example.test/' });
    expect(auth.header).toEqual({ alg: 'RS256', kid: 'rsa-1' });
    expect(auth.token).toBe(token);
  });

  it("'payload' is also read from the policy object, next to errors", async () => {
    const { app } = await expressApp('payload', 'policy');
    const res = await request(app)
      .get('/orders/7')
      .set(bearer(await signToken({ scope: 'orders:read' })));
    expect(res.body.auth.payload.sub).toBe('alice');
  });

  it("'claims' gives req.auth = the claims, as express-jwt does", async () => {
    const { app } = await expressApp('claims');
    const res = await request(app)
      .get('/orders/7')
      .set(bearer(await signToken({ scope: 'orders:read' })));
    expect(res.status).toBe(200);
    expect(res.body.auth).toMatchObject({ sub: 'alice', scope: 'orders:read', aud: 'api://orders' });
    expect(res.body.auth.decision).toBeUndefined();
  });

  it('gives an API key sub, scope and its metadata as claims, and an empty header', async () => {
    const { app, store } = await expressApp('payload');
    const { key } = await storeApiKey(store, { metadata: { tenant: 'acme' } });
    const res = await request(app).get('/orders/7').set(bearer(key));
    expect(res.status).toBe(200);
    expect(res.body.auth).toEqual({ payload: { tenant: 'acme', sub: 'svc-billing', scope: 'orders:read' }, header: {}, token: key });
  });

  it('leaves req.auth unset on a public route without a token (as the libraries do with credentials optional)', async () => {
    const { app } = await expressApp('payload');
    const res = await request(app).get('/health');
    expect(res.status).toBe(200);
    expect(res.body.auth).toBeNull();
  });

  it('keeps requireScopes working on the guard own result, not on the shaped req.auth', async () => {
    const { app } = await expressApp('payload');
    const ok = await request(app)
      .get('/reports/1')
      .set(bearer(await signToken({ scope: 'reports:read' })));
    expect([ok.status, ok.body]).toEqual([200, { sub: 'alice' }]);
    const refused = await request(app)
      .get('/reports/1')
      .set(bearer(await signToken({ scope: 'admin' })));
    expect(refused.status).toBe(403);
    expect(refused.headers['www-authenticate']).toContain('insufficient_scope');
  });

  it('refuses a forged token exactly as without a shape, and never shapes it', async () => {
    const { app } = await expressApp('payload');
    const forged = await signToken({ scope: 'orders:read' }, { alg: 'HS256', key: new TextEncoder().encode('x'.repeat(40)) });
    const res = await request(app).get('/orders/7').set(bearer(forged));
    expect(res.status).toBe(401);
    expect(res.text).not.toContain(forged);
  });

  it("'native' and no option keep { token, decision }", async () => {
    for (const shape of ['native', undefined] as const) {
      const { app } = await expressApp(shape);
      const res = await request(app)
        .get('/orders/7')
        .set(bearer(await signToken({ scope: 'orders:read' })));
      expect(res.body.auth.token.subject).toBe('alice');
      expect(res.body.auth.decision.reason).toBe('ok');
    }
  });

  it('refuses an unknown shape at start-up with a UsageError', async () => {
    const policy = await basePolicy();
    expect(() => expressGuard(policy, { authShape: 'user' as never })).toThrow(expect.objectContaining({ code: 'adapter.options_invalid' }));
    expect(() => expressGuard({ ...policy, authShape: 'Payload' as never })).toThrow(/authShape must be one of 'native', 'payload', 'claims'/);
  });

  it('takes the shape in options next to a guard from createGuard', async () => {
    const guard = createGuard(await basePolicy());
    const app = express();
    app.use(expressGuard(guard, { authShape: 'claims' }));
    app.get('/orders/:id', (req, res) => {
      res.json(req.auth);
    });
    const res = await request(app)
      .get('/orders/7')
      .set(bearer(await signToken({ scope: 'orders:read' })));
    expect(res.body.sub).toBe('alice');
  });
});

describe('authShape on Koa', () => {
  it("'user' puts the claims on ctx.state.user, as koa-jwt does, and keeps ctx.state.auth", async () => {
    const app = new Koa();
    app.use(koaGuard(await basePolicy(), { authShape: 'user' }));
    const router = new Router();
    router.get('/orders/:id', (ctx) => {
      ctx.body = { user: ctx.state.user, subject: ctx.state.auth?.token?.subject };
    });
    router.get('/health', (ctx) => {
      ctx.body = { user: ctx.state.user ?? null };
    });
    app.use(router.routes());
    const server = app.callback();
    const res = await request(server)
      .get('/orders/7')
      .set(bearer(await signToken({ scope: 'orders:read' })));
    expect(res.status).toBe(200);
    expect(res.body.user).toMatchObject({ sub: 'alice', scope: 'orders:read' });
    expect(res.body.subject).toBe('alice');
    expect((await request(server).get('/health')).body).toEqual({ user: null });
    expect((await request(server).get('/orders/7').set(bearer('nope'))).status).toBe(401);
  });

  it('refuses an unknown shape at start-up', async () => {
    const policy = await basePolicy();
    expect(() => koaGuard({ ...policy, authShape: 'payload' as never })).toThrow(expect.objectContaining({ code: 'adapter.options_invalid' }));
  });
});

describe('authShape on Fastify', () => {
  it("'user' puts the claims on request.user, as @fastify/jwt does", async () => {
    const app = Fastify();
    await app.register(fastifyGuard, { ...(await basePolicy()), authShape: 'user' });
    app.get('/orders/:id', async (req) => ({ user: (req as unknown as { user: unknown }).user, subject: req.auth?.token?.subject }));
    app.get('/health', async (req) => ({ user: (req as unknown as { user: unknown }).user }));
    const res = await app.inject({ url: '/orders/7', headers: bearer(await signToken({ scope: 'orders:read' })) });
    expect(res.statusCode).toBe(200);
    expect(res.json().user).toMatchObject({ sub: 'alice', scope: 'orders:read' });
    expect(res.json().subject).toBe('alice');
    expect((await app.inject({ url: '/health' })).json()).toEqual({ user: null });
    expect((await app.inject({ url: '/orders/7', headers: bearer('nope') })).statusCode).toBe(401);
    await app.close();
  });

  it('accepts the shape next to { guard }, and refuses an unknown one when the app starts', async () => {
    const app = Fastify();
    await app.register(fastifyGuard, { guard: createGuard(await basePolicy()), authShape: 'user' });
    app.get('/orders/:id', async (req) => ({ user: (req as unknown as { user: { sub: string } }).user.sub }));
    const res = await app.inject({ url: '/orders/7', headers: bearer(await signToken({ scope: 'orders:read' })) });
    expect(res.json()).toEqual({ user: 'alice' });
    await app.close();
    const bad = Fastify();
    await expect(bad.register(fastifyGuard, { ...(await basePolicy()), authShape: 'claims' as never }).ready()).rejects.toMatchObject({ code: 'adapter.options_invalid' });
  });
});
