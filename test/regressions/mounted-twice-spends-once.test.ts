// Regression: one guard mounted twice on a request's way (app.use and again router.use, a common layout) evaluated the
// request twice and spent twice: a use-limited API key lost two uses a request, a rate limit counted two, the
// in-process pre-auth limit counted two attempts, and every DPoP request was refused, the second evaluation finding the
// request's own proof already claimed. Both evaluations still run every check (mounted-twice-checks-everything); what
// the first one spent, the second now takes the first's answer for.
import Router from '@koa/router';
import express from 'express';
import Koa from 'koa';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { tokenGuard as expressGuard } from '../../src/adapters/express.js';
import { tokenGuard as koaGuard } from '../../src/adapters/koa.js';
import { guardFetch } from '../../src/adapters/fetch.js';
import { MemoryStore, type DecisionEvent, type TokenGuardPolicy } from '../../src/index.js';
import { DPOP_ORIGIN, dpopClient } from '../helpers/dpop.js';
import { guessedKey } from '../helpers/pre-auth.js';
import { asyncStore } from '../helpers/stores.js';
import { basePolicy, storeApiKey } from '../helpers/tokens.js';

type App = Parameters<typeof request>[0];
/** An app guarded by one middleware made from `policy`, mounted on the app and again on its router (or only once). */
type Mount = (policy: TokenGuardPolicy, times?: 1 | 2) => App;

const koaApp: Mount = (policy, times = 2) => {
  const guard = koaGuard(policy);
  const app = new Koa();
  app.silent = true;
  app.use(guard);
  const router = new Router();
  if (times === 2) router.use(guard);
  router.all('/:section/:id', (ctx) => {
    ctx.body = 'ok';
  });
  app.use(router.routes());
  return app.callback();
};

const expressApp: Mount = (policy, times = 2) => {
  const guard = expressGuard(policy);
  const app = express();
  app.use(guard);
  const router = express.Router();
  if (times === 2) router.use(guard);
  router.all('/:section/:id', (_req, res) => void res.send('ok'));
  app.use(router);
  return app;
};

/** Statuses and RateLimit headers of `n` requests, one after another. */
async function send(app: App, n: number, authorization: string) {
  const out: { status: number; rateLimit: string | undefined }[] = [];
  for (let i = 0; i < n; i++) {
    const r = await request(app).get('/orders/1').set('Authorization', authorization);
    out.push({ status: r.status, rateLimit: r.headers['ratelimit'] });
  }
  return out;
}

type KeyStore = Parameters<typeof storeApiKey>[0];

/** Four requests with one API key through the guard mounted twice, and through it mounted once (a store each). */
async function twiceAndOnce(mount: Mount, policy: (store: KeyStore) => Promise<TokenGuardPolicy>, makeStore: () => KeyStore) {
  const twice = makeStore();
  const once = makeStore();
  const { record, key } = await storeApiKey(twice);
  await once.putApiKey({ ...record });
  const doubled = await send(mount(await policy(twice)), 4, `Bearer ${key}`);
  const single = await send(mount(await policy(once), 1), 4, `Bearer ${key}`);
  return { doubled, single };
}

const FRAMEWORKS = [
  ['Express', expressApp],
  ['Koa', koaApp],
] as const;
// A store answering at once, and one answering every call with a promise (as Redis does).
const STORES = [
  ['MemoryStore', () => new MemoryStore()],
  ['an asynchronous store', () => asyncStore(new MemoryStore())],
] as const;

describe.each(FRAMEWORKS.flatMap(([f, mount]) => STORES.map(([s, makeStore]) => [f, s, mount, makeStore] as const)))(
  'regression: %s on %s, one guard mounted twice spends once a request',
  (_name, _store, mount, makeStore) => {
    it("spends one of a key's uses a request: of 2 uses, the second request passes and the third is refused", async () => {
      const store = makeStore();
      const { key } = await storeApiKey(store, { uses: 2 });
      const app = mount(await basePolicy({ store }));
      expect((await send(app, 3, `Bearer ${key}`)).map((r) => r.status)).toEqual([200, 200, 401]);
    });

    it('charges a rate limit once a request: 3 of 3/min pass, the 4th is 429, with the headers of a single mount', async () => {
      const { doubled, single } = await twiceAndOnce(mount, (store) => basePolicy({ store, rateLimit: { limit: 3, window: '1m' } }), makeStore);
      expect(doubled.map((r) => r.status)).toEqual([200, 200, 200, 429]);
      expect(doubled).toEqual(single);
      expect(doubled[0]?.rateLimit).toMatch(/"policy";r=2;/);
    });

    it('lets a DPoP request through with its fresh proof, and still refuses that proof replayed on another request', async () => {
      const app = mount(await basePolicy({ store: makeStore(), dpop: { origins: [DPOP_ORIGIN] } }));
      const client = await dpopClient();
      const proof = await client.proof();
      const first = await request(app).get('/orders/1').set('Authorization', `DPoP ${client.token}`).set('DPoP', proof);
      expect([first.status, first.text]).toEqual([200, 'ok']);
      const replayed = await request(app).get('/orders/1').set('Authorization', `DPoP ${client.token}`).set('DPoP', proof);
      expect([replayed.status, replayed.body.reason]).toEqual([401, 'pop.invalid']);
      const fresh = await request(app)
        .get('/orders/1')
        .set('Authorization', `DPoP ${client.token}`)
        .set('DPoP', await client.proof());
      expect(fresh.status).toBe(200);
    });
  },
);

describe.each(FRAMEWORKS)('regression: %s, one guard mounted twice counts one pre-auth attempt a request', (_name, mount) => {
  it('counts one pre-auth attempt a request: 3 of 3/h pass, the 4th is 429, with the headers of a single mount', async () => {
    const policy = (store: KeyStore) => basePolicy({ store, trackUsage: false, preAuthLimit: { limit: 3, window: '1h' } });
    const { doubled, single } = await twiceAndOnce(mount, policy, () => new MemoryStore());
    expect(doubled.map((r) => r.status)).toEqual([200, 200, 200, 429]);
    expect(doubled).toEqual(single);
  });

  it('counts one failed authentication a request under failedAuth (a report-only policy lets it reach the second mount)', async () => {
    const events: DecisionEvent[] = [];
    const app = mount(
      await basePolicy({ mode: 'report-only', trackUsage: false, preAuthLimit: { limit: 2, window: '1h', failedAuth: true }, onDecision: (e) => void events.push(e) }),
    );
    for (let i = 0; i < 3; i++) {
      const r = await request(app).get('/orders/1').set('Authorization', `Bearer ${guessedKey()}`);
      expect(r.status).toBe(200);
    }
    // Two events a request, one a mount: two failures allowed, the third request is the first over the limit.
    expect(events.map((e) => e.reasons)).toEqual([
      ['token.invalid'],
      ['token.invalid'],
      ['token.invalid'],
      ['token.invalid'],
      ['rate.limited', 'token.invalid'],
      ['rate.limited', 'token.invalid'],
    ]);
  });
});

describe('regression: guardFetch meeting one Request twice (two middlewares on its way) spends once', () => {
  const get = (headers: Record<string, string>) => new Request(`${DPOP_ORIGIN}/orders/1`, { headers });

  it('charges a rate-limit unit and a key use once a Request; another Request spends its own', async () => {
    const store = new MemoryStore();
    const { key, record } = await storeApiKey(store, { uses: 5 });
    const guard = guardFetch(await basePolicy({ store, rateLimit: { limit: 3, window: '1m' } }));
    const one = get({ authorization: `Bearer ${key}` });
    const results = [await guard(one), await guard(one), await guard(get({ authorization: `Bearer ${key}` }))];
    expect(results.map((r) => (r instanceof Response ? r.status : r.headers['RateLimit']?.match(/^"policy";r=\d+/)?.[0]))).toEqual([
      '"policy";r=2',
      '"policy";r=2',
      '"policy";r=1',
    ]);
    expect((await store.getApiKey(record.hash))?.remaining).toBe(3);
  });

  it('lets a DPoP request through both times with its fresh proof', async () => {
    const guard = guardFetch(await basePolicy({ dpop: { origins: [DPOP_ORIGIN] } }));
    const client = await dpopClient();
    const one = get({ authorization: `DPoP ${client.token}`, dpop: await client.proof() });
    const results = [await guard(one), await guard(one)];
    expect(results.map((r) => (r instanceof Response ? r.status : r.auth.decision.reason))).toEqual(['ok', 'ok']);
  });
});
