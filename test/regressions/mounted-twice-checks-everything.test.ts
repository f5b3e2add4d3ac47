// Attack: one guard mounted twice spends once a request (mounted-twice-spends-once), but each mount still evaluates
// the request in full. An earlier fix skipped the second mount for a request the guard had let through, and a
// method-override middleware between the mounts turned an allowed POST into a DELETE that no DELETE-only rule saw.
// The spend ledger is kept by the adapters per native request: requests an app builds for `guard.evaluate` share none,
// whatever they share.
import Router from '@koa/router';
import express from 'express';
import Koa from 'koa';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { tokenGuard as expressGuard } from '../../src/adapters/express.js';
import { tokenGuard as koaGuard } from '../../src/adapters/koa.js';
import { nodeGuardRequest } from '../../src/adapters/kit.js';
import { createGuard, MemoryStore, type GuardRequest, type TokenGuardPolicy } from '../../src/index.js';
import { DPOP_ORIGIN, dpopClient } from '../helpers/dpop.js';
import { basePolicy, NOW, storeApiKey } from '../helpers/tokens.js';

type App = Parameters<typeof request>[0];

/**
 * One guard made from `policy` on the app and again on its router (or, with `second`, another guard made from that on
 * the router). A middleware between the two changes the method (`X-HTTP-Method-Override`) or the path (`X-Rewrite-Path`).
 */
type Mount = (policy: TokenGuardPolicy, second?: TokenGuardPolicy) => App;

const koaApp: Mount = (policy, second) => {
  const guard = koaGuard(policy);
  const app = new Koa();
  app.silent = true;
  app.use(guard);
  app.use(async (ctx, next) => {
    const method = ctx.get('x-http-method-override');
    if (method) ctx.method = method;
    const path = ctx.get('x-rewrite-path');
    if (path) ctx.url = ctx.originalUrl = path;
    await next();
  });
  const router = new Router();
  router.use(second ? koaGuard(second) : guard);
  router.all('/:section/:id', (ctx) => {
    ctx.body = `${ctx.method} ${ctx.path}`;
  });
  app.use(router.routes());
  return app.callback();
};

const expressApp: Mount = (policy, second) => {
  const guard = expressGuard(policy);
  const app = express();
  app.use(guard);
  app.use((req, _res, next) => {
    const method = req.headers['x-http-method-override'];
    if (typeof method === 'string') req.method = method;
    const path = req.headers['x-rewrite-path'];
    // The guard reads originalUrl (rules match the URL as received), so a rewrite it is to see changes both.
    if (typeof path === 'string') req.url = req.originalUrl = path;
    next();
  });
  const router = express.Router();
  router.use(second ? expressGuard(second) : guard);
  router.all('/:section/:id', (req, res) => void res.send(`${req.method} ${req.path}`));
  app.use(router);
  return app;
};

describe.each([
  ['Express', expressApp],
  ['Koa', koaApp],
] as const)('attack: %s, one guard mounted twice still checks each mount in full', (_name, mount) => {
  it('refuses a POST turned into a DELETE between the mounts when only DELETE needs a scope the key lacks', async () => {
    const store = new MemoryStore();
    const { key } = await storeApiKey(store, { scopes: ['orders:write'] });
    const app = mount(
      await basePolicy({
        store,
        rules: [
          { methods: ['POST'], path: '/orders/**', scopes: ['orders:write'] },
          { methods: ['DELETE'], path: '/orders/**', scopes: ['orders:admin'] },
        ],
      }),
    );
    const post = await request(app).post('/orders/1').set('Authorization', `Bearer ${key}`);
    expect([post.status, post.text]).toEqual([200, 'POST /orders/1']);
    const overridden = await request(app).post('/orders/1').set('Authorization', `Bearer ${key}`).set('X-HTTP-Method-Override', 'DELETE');
    expect([overridden.status, overridden.body.reason]).toEqual([403, 'scope.insufficient']);
  });

  it('refuses a request rewritten between the mounts to a path under a stricter rule', async () => {
    const store = new MemoryStore();
    const { key } = await storeApiKey(store);
    const app = mount(
      await basePolicy({
        store,
        rules: [
          { path: '/orders/**', scopes: ['orders:read'] },
          { path: '/admin/**', scopes: ['admin'] },
        ],
      }),
    );
    const plain = await request(app).get('/orders/1').set('Authorization', `Bearer ${key}`);
    expect([plain.status, plain.text]).toEqual([200, 'GET /orders/1']);
    const rewritten = await request(app).get('/orders/1').set('Authorization', `Bearer ${key}`).set('X-Rewrite-Path', '/admin/1');
    expect([rewritten.status, rewritten.body.reason]).toEqual([403, 'scope.insufficient']);
  });

  it("charges the rate limit of the rule a rewrite leads to, once, and the policy's limit still once", async () => {
    const store = new MemoryStore();
    const { key } = await storeApiKey(store);
    const app = mount(
      await basePolicy({
        store,
        rateLimit: { limit: 10, window: '1m' },
        rules: [
          { name: 'orders', path: '/orders/**', scopes: ['orders:read'], rateLimit: { limit: 5, window: '1m' } },
          { name: 'reports', path: '/reports/**', scopes: ['orders:read'], rateLimit: { limit: 2, window: '1m' } },
        ],
      }),
    );
    const rewritten = async () => request(app).get('/orders/1').set('Authorization', `Bearer ${key}`).set('X-Rewrite-Path', '/reports/1');
    const first = await rewritten();
    // The second mount's headers: the policy's counter as the first mount charged it (once), the reports rule's own.
    expect(first.status).toBe(200);
    expect(first.headers['ratelimit']).toMatch(/^"policy";r=9;t=\d+, "rule:[\w-]+";r=1;t=\d+$/);
    const statuses = [first.status, (await rewritten()).status, (await rewritten()).status];
    expect(statuses).toEqual([200, 200, 429]);
  });

  it("lets a second, different guard on the way spend its own: the first one's spend of a key's last use leaves it none", async () => {
    const store = new MemoryStore();
    const { key } = await storeApiKey(store, { uses: 1 });
    const app = mount(await basePolicy({ store }), await basePolicy({ store }));
    const r = await request(app).get('/orders/1').set('Authorization', `Bearer ${key}`);
    expect([r.status, r.body.reason]).toEqual([401, 'token.expired']);
  });
});

describe('attack: requests an app builds for guard.evaluate share no spends, whatever they share', () => {
  const orders = (authorization: string, extra: Partial<GuardRequest> = {}): GuardRequest => ({
    method: 'GET',
    path: '/orders/1',
    headers: { authorization },
    remoteAddress: '203.0.113.9',
    now: NOW,
    ...extra,
  });

  it('spends a rate-limit unit and a key use for each request with one context object', async () => {
    const store = new MemoryStore();
    const { key, record } = await storeApiKey(store, { uses: 3 });
    const guard = createGuard(await basePolicy({ store, rateLimit: { limit: 2, window: '1m' } }));
    const context = { id: 'shared' };
    const reasons = [];
    for (let i = 0; i < 3; i++) reasons.push((await guard.evaluate(orders(`Bearer ${key}`, { context }))).reason);
    expect(reasons).toEqual(['ok', 'ok', 'rate.limited']);
    expect((await store.getApiKey(record.hash))?.remaining).toBe(1);
  });

  it('counts a pre-auth attempt for each request with one context object', async () => {
    const store = new MemoryStore();
    const { key } = await storeApiKey(store);
    const guard = createGuard(await basePolicy({ store, preAuthLimit: { limit: 1, window: '1h' } }));
    const context = { id: 'shared' };
    const reasons = [];
    for (let i = 0; i < 2; i++) reasons.push((await guard.evaluate(orders(`Bearer ${key}`, { context }))).reason);
    expect(reasons).toEqual(['ok', 'rate.limited']);
  });

  it('refuses a DPoP proof replayed on a second request with the same context object', async () => {
    const guard = createGuard(await basePolicy({ dpop: { origins: [DPOP_ORIGIN] } }));
    const client = await dpopClient();
    const proof = await client.proof();
    const context = { id: 'shared' };
    const first = await guard.evaluate({ ...client.req(proof), context });
    const replayed = await guard.evaluate({ ...client.req(proof), context });
    expect([first.reason, replayed.reason]).toEqual(['ok', 'pop.invalid']);
  });

  it("spends for each of two requests the adapter kit's nodeGuardRequest makes of one request object", async () => {
    const store = new MemoryStore();
    const { key } = await storeApiKey(store);
    const guard = createGuard(await basePolicy({ store, rateLimit: { limit: 1, window: '1m' } }));
    const native = { method: 'GET', url: '/orders/1', headers: { authorization: `Bearer ${key}` }, rawHeaders: ['Authorization', `Bearer ${key}`], socket: {} };
    const made = () => nodeGuardRequest(native as never, '/orders/1');
    expect([(await guard.evaluate(made())).reason, (await guard.evaluate(made())).reason]).toEqual(['ok', 'rate.limited']);
  });
});
