// Type-level tests: what users see on req.auth, ctx.state.auth, request.auth and the fetch result.
import { describe, expectTypeOf, it } from 'vitest';
import express from 'express';
import Koa from 'koa';
import Router from '@koa/router';
import Fastify from 'fastify';
import * as ex from '../../src/adapters/express.js';
import * as koa from '../../src/adapters/koa.js';
import * as fy from '../../src/adapters/fastify.js';
import * as web from '../../src/adapters/fetch.js';
import type { AuthResult, Decision, Guard, TokenGuardPolicy, TokenInfo } from '../../src/index.js';

declare const policy: TokenGuardPolicy;
declare const guard: Guard;

describe('Express', () => {
  it('types req.auth on every handler, and .guard on the middleware', () => {
    const app = express();
    const mw = ex.tokenGuard({ ...policy, errors: 'throw' });
    expectTypeOf(mw.guard).toEqualTypeOf<Guard>();
    app.use(mw);
    app.get('/orders/:id', ex.requireScopes('orders:read'), (req, res) => {
      expectTypeOf(req.auth).toEqualTypeOf<AuthResult | undefined>();
      expectTypeOf(req.auth?.token).toEqualTypeOf<TokenInfo | undefined>();
      res.json({ id: req.params.id });
    });
  });
});

describe('Koa', () => {
  it('types ctx.state.auth in plain middleware and @koa/router routes', () => {
    const app = new Koa();
    const mw = koa.tokenGuard(guard, { errors: 'respond' });
    expectTypeOf(mw.guard).toEqualTypeOf<Guard>();
    app.use(mw);
    app.use((ctx) => {
      expectTypeOf(ctx.state.auth).toEqualTypeOf<AuthResult | undefined>();
    });
    const router = new Router();
    router.get('/orders/:id', koa.requireScopes({ any: ['orders:read', 'admin'] }), (ctx) => {
      expectTypeOf(ctx.state.auth?.decision).toEqualTypeOf<Decision | undefined>();
    });
    app.use(router.routes());
  });

  it('refuses an unknown errors option', () => {
    // @ts-expect-error errors is 'respond' | 'throw'
    koa.tokenGuard(policy, { errors: 'log' });
  });
});

describe('Fastify', () => {
  it('types request.auth (null before the guard runs) and the plugin options', async () => {
    const app = Fastify();
    await app.register(fy.tokenGuard, { ...policy, errors: 'throw' });
    await app.register(fy.tokenGuard, { guard, errors: 'respond' });
    app.get<{ Params: { id: string } }>('/orders/:id', { preHandler: fy.requireScopes('orders:read') }, async (req) => {
      expectTypeOf(req.auth).toEqualTypeOf<AuthResult | null>();
      expectTypeOf(req.params.id).toBeString();
      return { id: req.params.id };
    });
    app.addHook('onRequest', async (req) => {
      expectTypeOf(req.auth).toEqualTypeOf<AuthResult | null>();
    });
  });

  it('refuses options that are neither a policy nor { guard }', async () => {
    const app = Fastify();
    // @ts-expect-error not a policy: no token kind, unknown key
    await app.register(fy.tokenGuard, { nonsense: true });
  });
});

describe('fetch', () => {
  it('types the guard result as a Response or { auth, headers }', async () => {
    const check = web.guardFetch(policy);
    expectTypeOf(check.guard).toEqualTypeOf<Guard>();
    const result = await check(new Request('https://api.example.test/orders/1'), { remoteAddress: '203.0.113.9' });
    expectTypeOf(result).toEqualTypeOf<web.FetchGuardResult>();
    expectTypeOf<web.FetchGuardResult>().toEqualTypeOf<Response | { auth: AuthResult; headers: Record<string, string> }>();
    if (!(result instanceof Response)) expectTypeOf(result.auth).toEqualTypeOf<AuthResult>();
    expectTypeOf(web.requireScopes('orders:write')).toEqualTypeOf<(request: Request) => web.FetchGuardResult>();
  });
});
