// Regression: one guard mounted twice on a request's way (app.use and router.use) decided the request twice and, with
// trackUsage on (the default), recorded two uses of its token for one request: usage counts, velocity baselines and
// idle timers read double. The request's spend ledger now carries the guard's mark, so its second decision records
// none; another guard on the way still records its own, and a request an app builds is recorded at every evaluation.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import Router from '@koa/router';
import express from 'express';
import Koa from 'koa';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { tokenGuard as expressGuard } from '../../src/adapters/express.js';
import { guardFetch } from '../../src/adapters/fetch.js';
import { tokenGuard as koaGuard } from '../../src/adapters/koa.js';
import { createGuard, MemoryStore, type TokenGuardPolicy } from '../../src/index.js';
import { closeJwksServers, startJwksServer } from '../helpers/jwks-server.js';
import { expressMountedTwice } from '../helpers/mounted-twice.js';
import { basePolicy, jwtPolicy, NOW, NOW_S, signToken, storeApiKey, testKeys } from '../helpers/tokens.js';

type App = Parameters<typeof request>[0];
/** An app with `guards` on its way: every one but the last on the app, the last on the router (one guard twice: a double mount). */
type Mount<G> = (guards: G[]) => App;

const expressApp: Mount<ReturnType<typeof expressGuard>> = (guards) => {
  const app = express();
  for (const g of guards.slice(0, -1)) app.use(g);
  const router = express.Router();
  router.use(guards.at(-1) as ReturnType<typeof expressGuard>);
  router.all('/:section/:id', (_req, res) => void res.send('ok'));
  app.use(router);
  return app;
};

const koaApp: Mount<ReturnType<typeof koaGuard>> = (guards) => {
  const app = new Koa();
  app.silent = true;
  for (const g of guards.slice(0, -1)) app.use(g);
  const router = new Router();
  router.use(guards.at(-1) as ReturnType<typeof koaGuard>);
  router.all('/:section/:id', (ctx) => {
    ctx.body = 'ok';
  });
  app.use(router.routes());
  return app.callback();
};

/** Sends `n` requests with `authorization`, each expected to pass. */
async function send(app: App, n: number, authorization: string): Promise<void> {
  for (let i = 0; i < n; i++) {
    const r = await request(app).get('/orders/1').set('Authorization', authorization);
    expect([r.status, r.text]).toEqual([200, 'ok']);
  }
}

/** The uses the store has recorded for a token. */
const usesOf = async (store: MemoryStore, tokenId: string): Promise<number> => (await store.getUsage(tokenId))?.count ?? 0;

/** A policy on `store`, with a rate limit or not (a request that spends has a ledger of records, one that does not a mark). */
const policyOn = (store: MemoryStore, limited: boolean): Promise<TokenGuardPolicy> => basePolicy({ store, ...(limited && { rateLimit: { limit: 100, window: '1m' } }) });

/** An API key (always decided by a full evaluation) and a JWT (whose later decisions take the memoised path). */
const TOKENS = [
  [
    'an API key',
    async (store: MemoryStore) => {
      const { key, record } = await storeApiKey(store);
      return { id: record.id, authorization: `Bearer ${key}` };
    },
  ],
  ['a JWT', async () => ({ id: 'jwt-usage', authorization: `Bearer ${await signToken({ scope: 'orders:read', jti: 'jwt-usage' })}` })],
] as const;

const FRAMEWORKS = [
  ['Express', (policy: TokenGuardPolicy) => expressGuard(policy), expressApp],
  ['Koa', (policy: TokenGuardPolicy) => koaGuard(policy), koaApp],
] as const;

describe.each(FRAMEWORKS)('regression: %s, a guard mounted twice records one use a request', (_name, makeGuard, mount) => {
  const cases = TOKENS.flatMap(([token, make]) => [false, true].map((limited) => [token, limited ? 'spending a rate limit' : 'spending nothing', make, limited] as const));

  it.each(cases)('%s, %s: one use a request, as under a single mount', async (_token, _spend, make, limited) => {
    const store = new MemoryStore();
    const { id, authorization } = await make(store);
    const guard = makeGuard(await policyOn(store, limited));
    await send(mount([guard, guard] as never[]), 3, authorization);
    expect(await usesOf(store, id)).toBe(3);
  });

  it('two different guards on the way each record their use: two a request', async () => {
    const store = new MemoryStore();
    const { key, record } = await storeApiKey(store);
    const policy = await basePolicy({ store });
    await send(mount([makeGuard(policy), makeGuard(policy)] as never[]), 2, `Bearer ${key}`);
    expect(await usesOf(store, record.id)).toBe(4);
  });

  it.each([false, true])('a guard met twice with another guard between (rate limit: %s): each guard records one use a request', async (limited) => {
    const store = new MemoryStore();
    const { key, record } = await storeApiKey(store);
    const policy = await policyOn(store, limited);
    const first = makeGuard(policy);
    await send(mount([first, makeGuard(policy), first] as never[]), 2, `Bearer ${key}`);
    expect(await usesOf(store, record.id)).toBe(4);
  });
});

/** One guard on the app and again on the router, with a middleware between that swaps the credential for `swapped`. */
const SWAPPING = [
  [
    'Express',
    (guard: ReturnType<typeof expressGuard>, swapped: string): App =>
      expressMountedTwice(guard, (req, _res, next) => {
        req.headers.authorization = swapped;
        next();
      }),
    expressGuard,
  ],
  [
    'Koa',
    (guard: ReturnType<typeof koaGuard>, swapped: string): App => {
      const app = new Koa();
      app.silent = true;
      app.use(guard);
      app.use((ctx, next) => {
        ctx.req.headers.authorization = swapped;
        return next();
      });
      const router = new Router();
      router.use(guard);
      router.all('/:section/:id', (ctx) => {
        ctx.body = 'ok';
      });
      app.use(router.routes());
      return app.callback();
    },
    koaGuard,
  ],
] as const;

describe.each(SWAPPING)('%s: a credential swapped between two mounts of one guard is a use of each token', (_name, mountSwapping, makeGuard) => {
  // The mark of the first mount's use names the token as well as the guard: the second token's use is its own, or an
  // idle timeout would retire a key in daily use (and its usage and risk baseline would read low).
  const pairs = [
    ['a JWT for another JWT', 'jwt'],
    ['an API key for another API key', 'key'],
    ['a JWT for an API key', 'mixed'],
  ] as const;
  it.each(pairs.flatMap(([what, kind]) => [false, true].map((limited) => [what, limited, kind] as const)))(
    '%s (rate limit: %s): one use of each a request',
    async (_what, limited, kind) => {
      const store = new MemoryStore();
      const jwt = async (jti: string) => ({ id: jti, authorization: `Bearer ${await signToken({ scope: 'orders:read', jti })}` });
      const key = async () => {
        const { key: k, record } = await storeApiKey(store);
        return { id: record.id, authorization: `Bearer ${k}` };
      };
      const first = kind === 'key' ? await key() : await jwt('swap-first');
      const second = kind === 'jwt' ? await jwt('swap-second') : await key();
      const app = mountSwapping(makeGuard(await policyOn(store, limited)) as never, second.authorization);
      await send(app, 3, first.authorization);
      expect([await usesOf(store, first.id), await usesOf(store, second.id)]).toEqual([3, 3]);
    },
  );
});

describe('a guard mounted twice whose caches verify the token anew at the second mount records one use a request', () => {
  // The first mount's mark is that evaluation's TokenInfo; a verification made again at the second mount is another
  // object for the same token, and must still read as the same use (of the same guard).
  afterEach(closeJwksServers);

  it('introspection with cacheMaxAge: 0 (asks at every evaluation)', async () => {
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ active: true, sub: 'alice', scope: 'orders:read', exp: NOW_S + 3600, jti: 'opaque-1' }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const store = new MemoryStore();
      const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/introspect`;
      const app = expressMountedTwice(expressGuard(await basePolicy({ store, introspection: { endpoint, clientId: 'rs', clientSecret: 'secret', cacheMaxAge: 0 } })));
      await send(app, 3, 'Bearer opaque-token-AAAAAAAAAAAAAAAAAAAAAAAA');
      expect(await usesOf(store, 'opaque-1')).toBe(3);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('a remote JWK Set with jwks.cacheMaxAge: 0 (no verification is cached)', async () => {
    const keys = await testKeys();
    const jwks = await startJwksServer([keys.rsaPublicJwk]);
    const store = new MemoryStore();
    const jwt = { ...(await jwtPolicy()), keys: undefined, algorithms: ['RS256' as const], jwksUri: jwks.url, jwks: { cacheMaxAge: 0 } };
    const app = expressMountedTwice(expressGuard(await basePolicy({ store, jwt })));
    await send(app, 3, `Bearer ${await signToken({ scope: 'orders:read', jti: 'jwks-0' })}`);
    expect(await usesOf(store, 'jwks-0')).toBe(3);
  });

  it('jwt.cacheSize: 1, two requests in flight between the mounts (each evicts the other)', async () => {
    const store = new MemoryStore();
    let arrived = 0;
    let open!: () => void;
    const bothThrough = new Promise<void>((resolve) => (open = resolve));
    // Both requests pass the first mount before either reaches the second.
    const app = expressMountedTwice(expressGuard(await basePolicy({ store, jwt: await jwtPolicy({ cacheSize: 1 }) })), (_req, _res, next) => {
      if (++arrived === 2) open();
      void bothThrough.then(() => next());
    });
    const [one, two] = [`Bearer ${await signToken({ scope: 'orders:read', jti: 'c-1' })}`, `Bearer ${await signToken({ scope: 'orders:read', jti: 'c-2' })}`];
    const server = app.listen(0);
    try {
      const answers = await Promise.all([request(server).get('/orders/1').set('Authorization', one), request(server).get('/orders/1').set('Authorization', two)]);
      expect(answers.map((r) => r.status)).toEqual([200, 200]);
    } finally {
      server.close();
    }
    expect([await usesOf(store, 'c-1'), await usesOf(store, 'c-2')]).toEqual([1, 1]);
  });
});

describe('regression: guardFetch meeting one Request twice records one use', () => {
  const get = (authorization: string) => new Request('https://api.example.test/orders/1', { headers: { authorization } });

  it('records one use for a Request met twice by one guard, one more for a second guard, and one for another Request', async () => {
    const store = new MemoryStore();
    const { key, record } = await storeApiKey(store);
    const policy = await basePolicy({ store });
    const guard = guardFetch(policy);
    const one = get(`Bearer ${key}`);
    for (const result of [await guard(one), await guard(one)]) expect(result).not.toBeInstanceOf(Response);
    expect(await usesOf(store, record.id)).toBe(1);
    expect(await guardFetch(policy)(one)).not.toBeInstanceOf(Response);
    expect(await usesOf(store, record.id)).toBe(2);
    expect(await guard(get(`Bearer ${key}`))).not.toBeInstanceOf(Response);
    expect(await usesOf(store, record.id)).toBe(3);
  });
});

describe('a request an app builds for guard.evaluate', () => {
  it('is recorded at every evaluation: nothing it carries ties two evaluations to one request', async () => {
    const store = new MemoryStore();
    const { key, record } = await storeApiKey(store);
    const guard = createGuard(await basePolicy({ store }));
    const req = { method: 'GET', path: '/orders/1', headers: { authorization: `Bearer ${key}` }, remoteAddress: '203.0.113.9', now: NOW };
    expect((await guard.evaluate(req)).effect).toBe('allow');
    expect((await guard.evaluate(req)).effect).toBe('allow');
    expect(await usesOf(store, record.id)).toBe(2);
  });
});
