// Regression: one tokenGuard middleware mounted twice on a request's way (app.use and again router.use, a common
// layout) evaluated each request twice: a use-limited API key lost two uses a request, the rate limit counted two,
// and every DPoP request was refused, the second evaluation finding the request's own proof already claimed. The
// adapters now let a request through that the same guard already let through. Two guards still each decide.
import Router from '@koa/router';
import express from 'express';
import Koa from 'koa';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { tokenGuard as expressGuard } from '../../src/adapters/express.js';
import { tokenGuard as koaGuard } from '../../src/adapters/koa.js';
import { MemoryStore, type TokenGuardPolicy } from '../../src/index.js';
import { DPOP_ORIGIN, dpopClient } from '../helpers/dpop.js';
import { basePolicy, storeApiKey } from '../helpers/tokens.js';

type Mounted = (policy: TokenGuardPolicy, second?: TokenGuardPolicy) => Parameters<typeof request>[0];

const koa: Mounted = (policy, second) => {
  const mw = koaGuard(policy);
  const app = new Koa();
  app.silent = true;
  app.use(mw);
  const router = new Router();
  router.use(second ? koaGuard(second) : mw);
  router.get('/orders/1', (ctx) => {
    ctx.body = 'ok';
  });
  app.use(router.routes());
  return app.callback();
};

const expressApp: Mounted = (policy, second) => {
  const mw = expressGuard(policy);
  const app = express();
  app.use(mw);
  const router = express.Router();
  router.use(second ? expressGuard(second) : mw);
  router.get('/orders/1', (_req, res) => void res.send('ok'));
  app.use(router);
  return app;
};

describe.each([
  ['Koa', koa],
  ['Express', expressApp],
] as const)('regression: %s, one guard mounted twice', (_name, mount) => {
  it("spends a key's use, a rate-limit unit and a DPoP proof once per request", async () => {
    const store = new MemoryStore();
    const { key } = await storeApiKey(store, { uses: 3 });
    const app = mount(await basePolicy({ store, rateLimit: { limit: 4, window: '1h' }, dpop: { origins: [DPOP_ORIGIN] } }));
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await request(app).get('/orders/1').set('Authorization', `Bearer ${key}`)).status);
    expect(statuses).toEqual([200, 200, 200, 401]);
    const c = await dpopClient();
    const dpop = await request(app)
      .get('/orders/1')
      .set('Authorization', `DPoP ${c.token}`)
      .set('DPoP', await c.proof());
    expect([dpop.status, dpop.text]).toEqual([200, 'ok']);
    const r = await request(app)
      .get('/orders/1')
      .set('Authorization', `DPoP ${c.token}`)
      .set('DPoP', await c.proof());
    expect(r.headers['ratelimit']).toMatch(/r=2\b/);
  });

  it('two guards each decide: the second one’s stricter policy still refuses', async () => {
    const store = new MemoryStore();
    const { key } = await storeApiKey(store);
    const app = mount(await basePolicy({ store }), await basePolicy({ store, rules: [{ path: '/orders/**', scopes: ['orders:admin'] }] }));
    const r = await request(app).get('/orders/1').set('Authorization', `Bearer ${key}`);
    expect(r.status).toBe(403);
  });
});
