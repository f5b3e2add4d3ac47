// Koa adapter specifics the scenario table does not show: ctx.state, next, originalUrl, @koa/router, options.
import { describe, expect, it } from 'vitest';
import Koa from 'koa';
import Router from '@koa/router';
import request from 'supertest';
import { tokenGuard, requireScopes } from '../../src/adapters/koa.js';
import { MemoryStore, PolicyError, createGuard, type AuthResult } from '../../src/index.js';
import { basePolicy, signToken } from '../helpers/tokens.js';

const bearer = (t: string) => ({ Authorization: `Bearer ${t}` });

function quiet(app: Koa): Koa {
  app.silent = true;
  return app;
}

describe('Koa adapter', () => {
  it('puts { token, decision } on ctx.state.auth for the middleware after it', async () => {
    const app = quiet(new Koa());
    app.use(tokenGuard(await basePolicy()));
    let seen: AuthResult | undefined;
    app.use((ctx) => {
      seen = ctx.state.auth;
      ctx.body = 'ok';
    });
    const res = await request(app.callback())
      .get('/orders/1')
      .set(bearer(await signToken({ scope: 'orders:read' })));
    expect(res.status).toBe(200);
    expect(seen?.token).toMatchObject({ kind: 'jwt', subject: 'alice', scopes: ['orders:read'] });
    expect(seen?.decision).toMatchObject({ effect: 'allow', reason: 'ok', rule: 'GET,HEAD /orders/**' });
  });

  it('does not call next on a refusal, and still records the decision', async () => {
    const app = quiet(new Koa());
    let state: Koa.DefaultState | undefined;
    app.use(async (ctx, next) => {
      await next();
      state = ctx.state;
    });
    app.use(tokenGuard(await basePolicy()));
    let reached = false;
    app.use(() => {
      reached = true;
    });
    const res = await request(app.callback()).get('/orders/1');
    expect(res.status).toBe(401);
    expect(reached).toBe(false);
    expect(state?.auth?.decision.reason).toBe('token.missing');
  });

  it('judges ctx.originalUrl, not a ctx.url that a mount rewrote', async () => {
    const app = quiet(new Koa());
    // What koa-mount does: strip the prefix before the inner app sees the URL.
    app.use(async (ctx, next) => {
      if (ctx.path.startsWith('/api/')) ctx.url = ctx.url.slice(4);
      await next();
    });
    app.use(
      tokenGuard(
        await basePolicy({
          rules: [
            { path: '/api/admin/**', scopes: ['admin'] },
            { path: '/**', scopes: ['orders:read'] },
          ],
        }),
      ),
    );
    app.use((ctx) => {
      ctx.body = { url: ctx.url };
    });
    const res = await request(app.callback())
      .get('/api/admin/users')
      .set(bearer(await signToken({ scope: 'orders:read' })));
    expect([res.status, res.body.reason]).toEqual([403, 'scope.insufficient']);
  });

  it('runs requireScopes per route on a prefixed @koa/router router', async () => {
    const app = quiet(new Koa());
    app.use(tokenGuard(await basePolicy({ rules: [{ path: '/v1/**' }] })));
    const router = new Router({ prefix: '/v1' });
    router.get('/reports/:id', requireScopes({ any: ['reports:read', 'admin'] }), (ctx) => {
      ctx.body = { id: ctx.params['id'], reason: ctx.state.auth?.decision.reason };
    });
    router.get('/open', (ctx) => {
      ctx.body = { open: true };
    });
    app.use(router.routes());
    const server = app.callback();
    const ok = await request(server)
      .get('/v1/reports/7')
      .set(bearer(await signToken({ scope: 'admin' })));
    expect([ok.status, ok.body]).toEqual([200, { id: '7', reason: 'ok' }]);
    const refused = await request(server)
      .get('/v1/reports/7')
      .set(bearer(await signToken({ scope: 'orders:read' })));
    expect(refused.status).toBe(403);
    expect(refused.headers['www-authenticate']).toContain('scope="reports:read admin"');
    const open = await request(server)
      .get('/v1/open')
      .set(bearer(await signToken({ scope: 'orders:read' })));
    expect(open.status).toBe(200);
  });

  it('fails a requireScopes route loudly when tokenGuard is not mounted', async () => {
    const app = quiet(new Koa());
    const errors: unknown[] = [];
    app.on('error', (e: unknown) => errors.push(e));
    app.use(requireScopes('orders:read'));
    const res = await request(app.callback()).get('/orders/1');
    expect(res.status).toBe(500);
    expect(String(errors[0])).toMatch(/tokenGuard\(\) mounted before it/);
  });

  it('exposes the guard it runs, so the app can revoke through it', async () => {
    const store = new MemoryStore();
    const mw = tokenGuard(await basePolicy({ store }));
    expect(mw.guard.store).toBe(store);
    const app = quiet(new Koa());
    app.use(mw);
    app.use((ctx) => {
      ctx.body = 'ok';
    });
    const token = await signToken({ scope: 'orders:read', jti: 'koa-revoke' });
    expect((await request(app.callback()).get('/orders/1').set(bearer(token))).status).toBe(200);
    await mw.guard.revoke('koa-revoke');
    const res = await request(app.callback()).get('/orders/1').set(bearer(token));
    expect([res.status, res.body.reason]).toEqual([401, 'token.revoked']);
  });

  it('accepts a guard from createGuard, with errors given as an option', async () => {
    const guard = createGuard(await basePolicy());
    const mw = tokenGuard(guard, { errors: 'throw' });
    expect(mw.guard).toBe(guard);
    const app = quiet(new Koa());
    app.use(mw);
    const res = await request(app.callback()).get('/orders/1');
    // Koa's default error handler: status and headers from the error, its message as text.
    expect([res.status, res.headers['www-authenticate'], res.text]).toEqual([401, 'Bearer', 'Authentication required']);
  });

  it('refuses bad configuration at start-up', async () => {
    const policy = await basePolicy();
    expect(() => tokenGuard({ ...policy, rules: [{ path: 'orders' }] })).toThrow(PolicyError);
    expect(() => tokenGuard(policy, { errors: 'log' as never })).toThrow(TypeError);
    expect(() => requireScopes()).toThrow(TypeError);
    expect(() => requireScopes('has space')).toThrow(TypeError);
  });
});
