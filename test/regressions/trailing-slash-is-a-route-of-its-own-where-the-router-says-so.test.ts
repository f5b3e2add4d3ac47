// Regression (security review, adapters): the guard dropped a trailing slash whatever the router did. Fastify (by
// default), Express under `strict routing` and @koa/router with `strict: true` route `/files/` apart from `/files`
// (to a `/files/*` route, say), so `{ path: '/files', public: true }` let GET /files/ through with no token. Adapters
// now say whether their router ignores trailing slashes; where it may not, a path with one never matches a public rule
// written without one, and restricting rules still cover it.
import { describe, expect, it } from 'vitest';
import Fastify, { type FastifyServerOptions } from 'fastify';
import express from 'express';
import Koa from 'koa';
import Router from '@koa/router';
import request from 'supertest';
import * as fastifyAdapter from '../../src/adapters/fastify.js';
import * as expressAdapter from '../../src/adapters/express.js';
import * as koaAdapter from '../../src/adapters/koa.js';
import { createGuard, type GuardRequest, type RulePolicy } from '../../src/index.js';
import { basePolicy, signToken } from '../helpers/tokens.js';

/** `/files` is a public landing page; what is under it needs `files:read`. */
const FILES: RulePolicy[] = [
  { path: '/files', public: true },
  { path: '/files/**', scopes: ['files:read'] },
];

async function fastifyApp(options: FastifyServerOptions = {}, rules: RulePolicy[] = FILES) {
  const app = Fastify(options);
  await app.register(fastifyAdapter.tokenGuard, await basePolicy({ rules }));
  app.get('/files', async () => ({ about: 'public landing page' }));
  if (options.routerOptions?.ignoreTrailingSlash !== true) app.get('/files/*', async () => ({ secret: 'protected file handler' }));
  return app;
}

describe('regression: Fastify (routes /files/ apart from /files by default)', () => {
  it('refuses GET /files/ without a token: it is the /files/* route, not the public landing page', async () => {
    const app = await fastifyApp();
    const attack = await app.inject({ method: 'GET', url: '/files/' });
    expect([attack.statusCode, attack.json().reason]).toEqual([401, 'token.missing']);
    expect((await app.inject({ method: 'GET', url: '/files/?x=1' })).statusCode).toBe(401);
    const legit = await app.inject({ method: 'GET', url: '/files' });
    expect([legit.statusCode, legit.json()]).toEqual([200, { about: 'public landing page' }]);
    const token = await signToken({ scope: 'files:read' });
    expect((await app.inject({ method: 'GET', url: '/files/', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(200);
    await app.close();
  });

  it('keeps /files/ under a restricting /files/* rule, which the router hands it to', async () => {
    const app = await fastifyApp({}, [
      { path: '/files/*', scopes: ['files:read'] },
      { path: '/**', public: true },
    ]);
    expect((await app.inject({ method: 'GET', url: '/files/' })).statusCode).toBe(401);
    expect((await app.inject({ method: 'GET', url: '/files' })).statusCode).toBe(200);
    await app.close();
  });

  it('with ignoreTrailingSlash, /files/ is /files and public, as the router reads it', async () => {
    for (const options of [{ routerOptions: { ignoreTrailingSlash: true } }, { ignoreTrailingSlash: true }] as FastifyServerOptions[]) {
      const app = await fastifyApp(options);
      const res = await app.inject({ method: 'GET', url: '/files/' });
      expect([res.statusCode, res.json()]).toEqual([200, { about: 'public landing page' }]);
      await app.close();
    }
  });
});

describe('regression: Express', () => {
  const app = async (strict: boolean) => {
    const a = express();
    if (strict) a.set('strict routing', true);
    a.use(expressAdapter.tokenGuard(await basePolicy({ rules: FILES })));
    a.get('/files', (_req, res) => void res.json({ about: 'public landing page' }));
    a.get('/files/', (_req, res) => void res.json({ secret: 'protected file index' }));
    return a;
  };

  it('with strict routing, refuses GET /files/ without a token; /files stays public', async () => {
    const a = await app(true);
    const attack = await request(a).get('/files/');
    expect([attack.status, attack.body.reason]).toEqual([401, 'token.missing']);
    expect((await request(a).get('/files')).status).toBe(200);
  });

  it('without strict routing, /files/ is /files for the router and the guard', async () => {
    const res = await request(await app(false)).get('/files/');
    expect([res.status, res.body]).toEqual([200, { about: 'public landing page' }]);
  });
});

describe('regression: Koa, whose router options the guard cannot see', () => {
  it('@koa/router { strict: true }: refuses GET /files/ without a token; /files stays public', async () => {
    const app = new Koa();
    app.use(koaAdapter.tokenGuard(await basePolicy({ rules: FILES })));
    const router = new Router({ strict: true });
    router.get('/files', (ctx) => void (ctx.body = { about: 'public landing page' }));
    router.get('/files/', (ctx) => void (ctx.body = { secret: 'protected file index' }));
    app.use(router.routes());
    expect((await request(app.callback()).get('/files/')).status).toBe(401);
    expect((await request(app.callback()).get('/files')).status).toBe(200);
  });
});

describe('the core: GuardRequest.ignoreTrailingSlash', () => {
  const req = (path: string, ignoreTrailingSlash?: boolean): GuardRequest => ({ method: 'GET', path, headers: {}, remoteAddress: '203.0.113.9', ignoreTrailingSlash });

  it('reads a trailing slash as a route of its own unless the request says its router ignores it', async () => {
    const guard = createGuard(await basePolicy({ rules: [...FILES, { path: '/docs/**', public: true }, { path: '/index/', public: true }] }));
    expect((await guard.evaluate(req('/files/'))).reason).toBe('token.missing');
    expect((await guard.evaluate(req('/files//'))).reason).toBe('token.missing');
    expect((await guard.evaluate(req('/files/', true))).reason).toBe('ok');
    expect((await guard.evaluate(req('/files'))).reason).toBe('ok');
    // A public rule ending in /** covers the slash; one written with a slash covers only the slash.
    expect((await guard.evaluate(req('/docs/'))).reason).toBe('ok');
    expect((await guard.evaluate(req('/index/'))).reason).toBe('ok');
    expect((await guard.evaluate(req('/index'))).reason).toBe('token.missing');
    expect((await guard.evaluate(req('/index', true))).reason).toBe('ok');
  });

  it('explains the miss in guard.explain', async () => {
    const guard = createGuard(await basePolicy({ rules: FILES }));
    const { rules } = await guard.explain(req('/files/'));
    expect(rules[0]).toEqual({ name: '* /files', matched: false, why: 'path /files does not match /files (a trailing slash makes another route here)' });
    expect(rules[1]).toEqual({ name: '* /files/**', matched: true });
  });
});
