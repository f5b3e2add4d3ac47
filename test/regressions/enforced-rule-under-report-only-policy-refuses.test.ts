// Regression (issue 7 item 6): a rule's `mode: 'enforce'` under a report-only policy was reported like every other
// rule, so "trial everything but keep /admin enforced" let anonymous, revoked and unscoped requests into /admin.
import { describe, expect, it } from 'vitest';
import express from 'express';
import request from 'supertest';
import { createGuard, MemoryStore, type GuardRequest, type TokenGuardPolicy, type TokenStore } from '../../src/index.js';
import { requireScopes, tokenGuard } from '../../src/adapters/express.js';
import { basePolicy, signToken, NOW } from '../helpers/tokens.js';

const OFFICE = '10.1.2.3';

async function policy(overrides: Partial<TokenGuardPolicy> = {}): Promise<TokenGuardPolicy> {
  return basePolicy({
    mode: 'report-only',
    rules: [
      { path: '/health', public: true },
      { methods: ['GET'], path: '/orders/**', scopes: ['orders:read'] },
      { path: '/admin/**', scopes: ['admin'], mode: 'enforce' },
      { path: '/beta/**', scopes: ['beta'], mode: 'report-only' },
    ],
    ...overrides,
  });
}

const ask = (path: string, token?: string, over: Partial<GuardRequest> = {}): GuardRequest => ({
  method: 'GET',
  path,
  headers: token ? { authorization: `Bearer ${token}` } : {},
  remoteAddress: OFFICE,
  now: NOW,
  ...over,
});

describe('regression: an enforcing rule under a report-only policy', () => {
  it('refuses an anonymous request on the enforced rule, and only reports it elsewhere', async () => {
    const guard = createGuard(await policy());
    const admin = await guard.evaluate(ask('/admin/users'));
    expect([admin.status, admin.reason, admin.mode, admin.rule]).toEqual([401, 'token.missing', 'enforce', '* /admin/**']);
    const orders = await guard.evaluate(ask('/orders/1'));
    expect([orders.status, orders.reason, orders.mode]).toEqual([401, 'token.missing', 'report-only']);
  });

  it("refuses a revoked token, a token without the rule's scope, an invalid token and a bad proof binding", async () => {
    const store = new MemoryStore();
    const guard = createGuard(await policy({ store }));
    const revoked = await signToken({ scope: 'admin', jti: 'revoked-1' });
    await guard.revoke('revoked-1', { now: NOW });
    const refusals = [
      await guard.evaluate(ask('/admin/users', revoked)),
      await guard.evaluate(ask('/admin/users', await signToken({ scope: 'orders:read' }))),
      await guard.evaluate(ask('/admin/users', 'not-a-jwt')),
      await guard.evaluate(ask('/admin/users', await signToken({ scope: 'admin', cnf: { 'x5t#S256': 'bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2' } }))),
    ];
    expect(refusals.map((d) => [d.status, d.reason, d.mode])).toEqual([
      [401, 'token.revoked', 'enforce'],
      [403, 'scope.insufficient', 'enforce'],
      [401, 'token.malformed', 'enforce'],
      [401, 'pop.invalid', 'enforce'],
    ]);
    // The same revoked token elsewhere under the policy is only reported.
    const elsewhere = await guard.evaluate(ask('/orders/1', revoked));
    expect([elsewhere.reason, elsewhere.mode]).toEqual(['token.revoked', 'report-only']);
  });

  it("enforces the policy's own IP allow-list and rate limit on the enforced rule", async () => {
    const guard = createGuard(await policy({ ip: { allow: ['10.0.0.0/8'] }, rateLimit: { limit: 1, window: '1h' } }));
    const token = await signToken({ scope: 'admin' });
    const outside = await guard.evaluate(ask('/admin/users', token, { remoteAddress: '203.0.113.9' }));
    expect([outside.status, outside.reason, outside.mode]).toEqual([403, 'ip.denied', 'enforce']);
    expect((await guard.evaluate(ask('/admin/users', token))).reason).toBe('ok');
    const again = await guard.evaluate(ask('/admin/users', token));
    expect([again.status, again.reason, again.mode]).toEqual([429, 'rate.limited', 'enforce']);
  });

  it('fails closed when the store is down on the enforced rule, and lets the rest through', async () => {
    const down = (): never => {
      throw new Error('connect ECONNREFUSED');
    };
    const store = Object.assign(new MemoryStore(), { getRevocation: down }) as TokenStore;
    const guard = createGuard(await policy({ store }));
    const token = await signToken({ scope: 'admin orders:read' });
    const admin = await guard.evaluate(ask('/admin/users', token));
    expect([admin.status, admin.reason, admin.mode]).toEqual([503, 'store.unavailable', 'enforce']);
    expect((await guard.evaluate(ask('/orders/1', token))).mode).toBe('report-only');
  });

  it("keeps requireScopes enforced on the enforced rule's routes, and reported on the others (Express)", async () => {
    const app = express();
    app.use(tokenGuard(await policy()));
    app.delete('/admin/users/:id', requireScopes('admin:delete'), (_req, res) => {
      res.json({ deleted: true });
    });
    app.get('/orders/:id', requireScopes('orders:export'), (req, res) => {
      res.json({ reason: req.auth?.decision.reason, mode: req.auth?.decision.mode });
    });
    const admin = await signToken({ scope: 'admin' });
    const denied = await request(app).delete('/admin/users/7').set('Authorization', `Bearer ${admin}`);
    expect([denied.status, denied.body.reason]).toEqual([403, 'scope.insufficient']);
    const allowed = await request(app)
      .delete('/admin/users/7')
      .set('Authorization', `Bearer ${await signToken({ scope: 'admin admin:delete' })}`);
    expect(allowed.status).toBe(200);
    const reported = await request(app)
      .get('/orders/1')
      .set('Authorization', `Bearer ${await signToken({ scope: 'orders:read' })}`);
    expect([reported.status, reported.body]).toEqual([200, { reason: 'scope.insufficient', mode: 'report-only' }]);
  });
});
