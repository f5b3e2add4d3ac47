// Regression (security review, adapters): the Express adapter read letter case from the app's own router only. A
// Router or sub-app made with defaults routes case-insensitively inside a case-sensitive app, so /api/ADMIN/users
// reached the admin route past the `/api/admin/**` rule; and the reverse, a Router({ caseSensitive: true }) inside a
// case-insensitive app (or @koa/router `sensitive: true`, which Koa's guard cannot see), let `/health`'s public rule
// cover /HEALTH, another route. Where routers disagree (or cannot all be seen) rules now take the strict reading per
// kind: restricting rules match any case, public rules only their own.
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest';
import express from 'express';
import express4 from 'express4';
import Koa from 'koa';
import Router from '@koa/router';
import request from 'supertest';
import * as koaAdapter from '../../src/adapters/koa.js';
import { createGuard, type TokenGuardPolicy } from '../../src/index.js';
import { basePolicy, signToken } from '../helpers/tokens.js';

type ExpressAdapter = typeof import('../../src/adapters/express.js');
let emitWarning: MockInstance<typeof process.emitWarning>;
/** A fresh adapter: its once-per-process warning state starts empty, as in a new process. */
async function freshAdapter(): Promise<ExpressAdapter> {
  vi.resetModules();
  return import('../../src/adapters/express.js');
}
const mixedWarnings = () => emitWarning.mock.calls.filter((c) => (c[1] as { code?: string } | undefined)?.code === 'TOKEN_GUARD_MIXED_CASE_ROUTING');

beforeEach(() => {
  emitWarning = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
});
afterEach(() => emitWarning.mockRestore());

/** `/api/admin/**` needs `admin`; any other path any valid token. */
const adminPolicy = () => basePolicy({ rules: [{ path: '/api/admin/**', scopes: ['admin'] }], unmatched: 'authenticate' });
/** `/health` is public; every other path needs `admin` (the /HEALTH route is an admin endpoint). */
const healthPolicy = (over: Partial<TokenGuardPolicy> = {}) =>
  basePolicy({
    rules: [
      { path: '/health', public: true },
      { path: '/**', scopes: ['admin'] },
    ],
    ...over,
  });

describe('regression: a case-sensitive Express app with a default (case-insensitive) Router or sub-app', () => {
  it('keeps /api/ADMIN/users under the /api/admin/** rule (Express 5, Router())', async () => {
    const { tokenGuard } = await freshAdapter();
    const app = express();
    app.set('case sensitive routing', true);
    app.use(tokenGuard(await adminPolicy()));
    const r = express.Router();
    r.get('/admin/users', (_req, res) => void res.json({ admin: 'users list' }));
    app.use('/api', r);
    const reader = await signToken({ scope: 'orders:read' });
    const attack = await request(app).get('/api/ADMIN/users').set('Authorization', `Bearer ${reader}`);
    expect([attack.status, attack.body.reason]).toEqual([403, 'scope.insufficient']);
    const admin = await signToken({ scope: 'admin' });
    const legit = await request(app).get('/api/admin/users').set('Authorization', `Bearer ${admin}`);
    expect([legit.status, legit.body]).toEqual([200, { admin: 'users list' }]);
    expect((await request(app).get('/api/ADMIN/users').set('Authorization', `Bearer ${admin}`)).status).toBe(200);
  });

  it('keeps /api/ADMIN/users under the /api/admin/** rule (Express 5, a sub-app made with defaults)', async () => {
    const { tokenGuard } = await freshAdapter();
    const app = express();
    app.set('case sensitive routing', true);
    app.use(tokenGuard(await adminPolicy()));
    const sub = express();
    sub.get('/admin/users', (_req, res) => void res.json({ admin: 'users list' }));
    app.use('/api', sub);
    const reader = await signToken({ scope: 'orders:read' });
    expect((await request(app).get('/api/ADMIN/users').set('Authorization', `Bearer ${reader}`)).status).toBe(403);
    const admin = await signToken({ scope: 'admin' });
    expect((await request(app).get('/api/admin/users').set('Authorization', `Bearer ${admin}`)).status).toBe(200);
  });

  it('keeps /api/ADMIN/users under the /api/admin/** rule (Express 4, nested Routers)', async () => {
    const { tokenGuard } = await freshAdapter();
    const app = express4();
    app.set('case sensitive routing', true);
    app.use(tokenGuard(await adminPolicy()) as unknown as express4.RequestHandler);
    const outer = express4.Router({ caseSensitive: true });
    const inner = express4.Router();
    inner.get('/users', (_req, res) => void res.json({ admin: 'users list' }));
    outer.use('/admin', inner);
    app.use('/api', outer);
    const reader = await signToken({ scope: 'orders:read' });
    expect((await request(app).get('/api/ADMIN/users').set('Authorization', `Bearer ${reader}`)).status).toBe(403);
    const admin = await signToken({ scope: 'admin' });
    expect((await request(app).get('/api/admin/users').set('Authorization', `Bearer ${admin}`)).status).toBe(200);
  });
});

describe('regression: a case-insensitive app with a Router({ caseSensitive: true }) inside', () => {
  for (const [name, make] of [
    ['Express 5', () => ({ app: express(), router: express.Router({ caseSensitive: true }) })],
    ['Express 4', () => ({ app: express4(), router: express4.Router({ caseSensitive: true }) })],
  ] as const) {
    it(`${name}: /HEALTH, another route, does not borrow /health's public rule; /health stays public`, async () => {
      const { tokenGuard } = await freshAdapter();
      const { app, router } = make();
      (app as express.Express).use(tokenGuard(await healthPolicy()));
      (router as express.Router).get('/health', (_req, res) => void res.json({ up: true }));
      (router as express.Router).get('/HEALTH', (_req, res) => void res.json({ secret: 'admin diagnostics' }));
      (app as express.Express).use(router as express.Router);
      const attack = await request(app).get('/HEALTH');
      expect([attack.status, attack.body.reason]).toEqual([401, 'token.missing']);
      const legit = await request(app).get('/health');
      expect([legit.status, legit.body]).toEqual([200, { up: true }]);
      const admin = await signToken({ scope: 'admin' });
      expect((await request(app).get('/HEALTH').set('Authorization', `Bearer ${admin}`)).status).toBe(200);
    });
  }

  it('warns once that the app routes case more than one way, saying what the guard does', async () => {
    const { tokenGuard } = await freshAdapter();
    const app = express();
    app.use(tokenGuard(await healthPolicy()));
    app.use(express.Router({ caseSensitive: true }));
    await request(app).get('/health');
    await request(app).get('/HEALTH');
    expect(mixedWarnings()).toHaveLength(1);
    const [message, options] = mixedWarnings()[0] as [string, { type: string; code: string }];
    expect(options).toEqual({ type: 'TokenGuardWarning', code: 'TOKEN_GUARD_MIXED_CASE_ROUTING' });
    expect(message).toMatch(/restrict access match paths case-insensitively and public rules only in their own case/);
  });

  it('reads an app whose routers agree as before, without a warning: /HEALTH is /health by default', async () => {
    const { tokenGuard } = await freshAdapter();
    const app = express();
    app.use(tokenGuard(await healthPolicy()));
    const r = express.Router();
    r.get('/health', (_req, res) => void res.json({ up: true }));
    app.use(r);
    expect((await request(app).get('/HEALTH')).status).toBe(200);
    expect(mixedWarnings()).toHaveLength(0);
  });

  it("lets the policy's caseSensitive read case one way everywhere", async () => {
    const { tokenGuard } = await freshAdapter();
    const app = express();
    app.use(tokenGuard(await healthPolicy({ caseSensitive: false })));
    const r = express.Router({ caseSensitive: true });
    r.get('/health', (_req, res) => void res.json({ up: true }));
    app.use(r);
    expect((await request(app).get('/HEALTH')).status).toBe(404); // public by the policy's choice; no such route
  });
});

describe('regression: Koa, whose router options the guard cannot see', () => {
  it("@koa/router { sensitive: true }: /HEALTH does not borrow /health's public rule; /health stays public", async () => {
    const app = new Koa();
    app.use(koaAdapter.tokenGuard(await healthPolicy()));
    const router = new Router({ sensitive: true });
    router.get('/health', (ctx) => void (ctx.body = { up: true }));
    router.get('/HEALTH', (ctx) => void (ctx.body = { secret: 'admin diagnostics' }));
    app.use(router.routes());
    expect((await request(app.callback()).get('/HEALTH')).status).toBe(401);
    const legit = await request(app.callback()).get('/health');
    expect([legit.status, legit.body]).toEqual([200, { up: true }]);
  });
});

describe("the core: GuardRequest.caseSensitive 'mixed'", () => {
  const req = (path: string, authorization?: string) => ({
    method: 'GET',
    path,
    headers: authorization ? { authorization } : {},
    remoteAddress: '203.0.113.9',
    caseSensitive: 'mixed' as const,
  });

  it('reads public rules in their own case and restricting rules in any case', async () => {
    const guard = createGuard(
      await basePolicy({
        rules: [
          { path: '/health', public: true },
          { path: '/admin/**', scopes: ['admin'] },
        ],
        unmatched: 'authenticate',
      }),
    );
    expect((await guard.evaluate(req('/health'))).reason).toBe('ok');
    expect((await guard.evaluate(req('/HEALTH'))).reason).toBe('token.missing');
    const reader = `Bearer ${await signToken({ scope: 'orders:read' })}`;
    const d = await guard.evaluate(req('/ADMIN/users', reader));
    expect([d.reason, d.rule]).toEqual(['scope.insufficient', '* /admin/**']);
  });
});
