// Regression (issue 8 item 8): rules read letter case as the app's router does. With a case-sensitive
// router, /HEALTH is its own route: reached through /health's public rule, a protected /HEALTH would be
// open to anyone. Each adapter takes the router's setting; the policy's caseSensitive overrides it.
import { describe, expect, it } from 'vitest';
import Fastify, { type FastifyServerOptions } from 'fastify';
import express from 'express';
import express4 from 'express4';
import Koa from 'koa';
import Router from '@koa/router';
import request from 'supertest';
import * as fastifyAdapter from '../../src/adapters/fastify.js';
import * as expressAdapter from '../../src/adapters/express.js';
import * as koaAdapter from '../../src/adapters/koa.js';
import { guardFetch } from '../../src/adapters/fetch.js';
import { createGuard, type TokenGuardPolicy } from '../../src/index.js';
import { basePolicy } from '../helpers/tokens.js';

/** `/health` is public; every other path needs `admin` (the /HEALTH route is an admin endpoint). */
const policy = (over: Partial<TokenGuardPolicy> = {}) =>
  basePolicy({
    rules: [
      { path: '/health', public: true },
      { path: '/**', scopes: ['admin'] },
    ],
    ...over,
  });

async function fastifyStatus(options: FastifyServerOptions, over: Partial<TokenGuardPolicy> = {}): Promise<number> {
  const app = Fastify(options);
  await app.register(fastifyAdapter.tokenGuard, await policy(over));
  app.get('/health', async () => ({ up: true }));
  // A case-insensitive router refuses a second route that differs only in case.
  if (options.routerOptions?.caseSensitive !== false) app.get('/HEALTH', async () => ({ secret: 'admin diagnostics' }));
  const res = await app.inject({ method: 'GET', url: '/HEALTH' });
  await app.close();
  return res.statusCode;
}

describe('regression: rules read letter case as the router does', () => {
  it("Fastify (case-sensitive by default): /HEALTH does not borrow /health's public rule", async () => {
    expect(await fastifyStatus({})).toBe(401);
    expect(await fastifyStatus({ routerOptions: { caseSensitive: true } })).toBe(401);
  });

  it('Fastify with a case-insensitive router: /HEALTH is /health, and public', async () => {
    expect(await fastifyStatus({ routerOptions: { caseSensitive: false } })).toBe(200);
  });

  it("Fastify: the policy's caseSensitive overrides the router", async () => {
    expect(await fastifyStatus({ routerOptions: { caseSensitive: false } }, { caseSensitive: true })).toBe(401);
  });

  it("Express with case sensitive routing: /HEALTH does not borrow /health's public rule", async () => {
    const app = express();
    app.set('case sensitive routing', true);
    app.use(expressAdapter.tokenGuard(await policy()));
    app.get('/health', (_req, res) => void res.json({ up: true }));
    app.get('/HEALTH', (_req, res) => void res.json({ secret: 'admin diagnostics' }));
    expect((await request(app).get('/HEALTH')).status).toBe(401);
    expect((await request(app).get('/health')).status).toBe(200);
  });

  it('Express 4 with case sensitive routing: the same', async () => {
    const app = express4();
    app.set('case sensitive routing', true);
    app.use(expressAdapter.tokenGuard(await policy()) as unknown as express4.RequestHandler);
    app.get('/HEALTH', (_req, res) => void res.json({ secret: 'admin diagnostics' }));
    expect((await request(app).get('/HEALTH')).status).toBe(401);
  });

  it('Express by default routes /HEALTH to /health, and the public rule follows it', async () => {
    const app = express();
    app.use(expressAdapter.tokenGuard(await policy()));
    app.get('/health', (_req, res) => void res.json({ up: true }));
    expect((await request(app).get('/HEALTH')).status).toBe(200);
  });

  it('Koa and @koa/router (case-insensitive by default): /ADMIN is guarded by the /admin rule', async () => {
    const app = new Koa();
    app.use(
      koaAdapter.tokenGuard(
        await basePolicy({
          rules: [
            { path: '/health', public: true },
            { path: '/admin/**', scopes: ['admin'] },
          ],
          unmatched: 'authenticate',
        }),
      ),
    );
    const router = new Router();
    router.get('/admin/users', (ctx) => void (ctx.body = { users: [] }));
    app.use(router.routes());
    expect((await request(app.callback()).get('/ADMIN/users')).status).toBe(401);
    // The guard cannot see @koa/router's `sensitive`: a public rule covers only its own case (mixed-case-routers-never-widen-a-rule).
    expect((await request(app.callback()).get('/HEALTH')).status).toBe(401);
  });

  it("fetch (Hono, Next.js and Bun route case-sensitively): /HEALTH does not borrow /health's public rule", async () => {
    const guard = guardFetch(await policy());
    const res = await guard(new Request('http://api.example.test/HEALTH'));
    expect(res instanceof Response ? res.status : 200).toBe(401);
    const health = await guard(new Request('http://api.example.test/health'));
    expect(health instanceof Response ? health.status : 200).toBe(200);
  });
});

describe('the core: GuardRequest.caseSensitive and the policy override', () => {
  const req = (caseSensitive: boolean | undefined) => ({ method: 'GET', path: '/HEALTH', headers: {}, remoteAddress: '203.0.113.9', caseSensitive });

  it('reads case as the request says its router does, insensitively when it does not say', async () => {
    const guard = createGuard(await policy());
    expect((await guard.evaluate(req(true))).reason).toBe('token.missing');
    expect((await guard.evaluate(req(false))).reason).toBe('ok');
    expect((await guard.evaluate(req(undefined))).reason).toBe('ok');
  });

  it('lets an explicit policy caseSensitive win over the request, both ways', async () => {
    expect((await createGuard(await policy({ caseSensitive: false })).evaluate(req(true))).reason).toBe('ok');
    expect((await createGuard(await policy({ caseSensitive: true })).evaluate(req(false))).reason).toBe('token.missing');
  });
});
