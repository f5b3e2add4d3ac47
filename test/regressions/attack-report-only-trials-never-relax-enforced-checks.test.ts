// Attacks on report-only and risk that held (kept as negative tests): a request routed to a trialled rule still meets
// the policy's claims and risk, a risk step-up there answers with the risk policy's challenge (not the trialled
// rule's, which the client could satisfy instead), and a token reported on a trialled rule is decided afresh on an
// enforced one.
import { describe, expect, it } from 'vitest';
import express from 'express';
import request from 'supertest';
import { tokenGuard } from '../../src/adapters/express.js';
import { MemoryStore, type TokenGuardPolicy } from '../../src/index.js';
import { basePolicy, signToken, NOW_S } from '../helpers/tokens.js';

async function server() {
  const policy: TokenGuardPolicy = await basePolicy({
    store: new MemoryStore(),
    claims: { tenant: 'acme' },
    risk: { custom: { flagged: (ctx) => Number(ctx.headers['x-test-risk'] ?? 0) }, stepUpAt: 40, denyAt: 90 },
    rules: [
      {
        path: '/trial/**',
        mode: 'report-only',
        claims: { plan: 'pro' },
        ip: { allow: ['10.0.0.0/8'] },
        hours: { timezone: 'UTC', windows: [{ from: '00:00', to: '00:01' }] },
        stepUp: { acr: ['urn:gold'] },
      },
      { path: '/enforced/**', claims: { plan: 'pro' } },
    ],
  });
  const app = express();
  app.use(tokenGuard(policy));
  app.get('/*splat', (req, res) => {
    res.json({ mode: req.auth?.decision.mode });
  });
  return app;
}

const get = (app: express.Express, path: string, token: string, risk = 0) => request(app).get(path).set('authorization', `Bearer ${token}`).set('x-test-risk', String(risk));

describe('attack: reaching enforced checks through a trialled rule', () => {
  it('lets a trialled refusal through, but never the policy’s claims or an enforced risk denial', async () => {
    const app = await server();
    const acme = await signToken({ tenant: 'acme', plan: 'free' });
    const trialled = await get(app, '/trial/x', acme);
    expect([trialled.status, trialled.body.mode]).toEqual([200, 'report-only']);
    const otherTenant = await get(app, '/trial/x', await signToken({ tenant: 'globex', plan: 'pro' }));
    expect([otherTenant.status, otherTenant.body.reason]).toEqual([403, 'claims.mismatch']);
    const denied = await get(app, '/trial/x', acme, 95);
    expect([denied.status, denied.body.reason]).toEqual([403, 'risk.denied']);
  });

  it('asks a risky request on a trialled rule for the risk policy’s step-up, not the trialled rule’s acr', async () => {
    const app = await server();
    const res = await get(app, '/trial/x', await signToken({ tenant: 'acme', plan: 'pro', acr: 'urn:gold' }), 50);
    expect([res.status, res.body.reason]).toEqual([401, 'step_up.required']);
    expect(res.headers['www-authenticate']).toMatch(/max_age="300"/);
    expect(res.headers['www-authenticate']).not.toMatch(/acr_values/);
    // The trialled acr does not satisfy it either: only a fresh login does.
    const fresh = await get(app, '/trial/x', await signToken({ tenant: 'acme', plan: 'pro', auth_time: NOW_S - 60 }), 50);
    expect([fresh.status, fresh.body.mode]).toEqual([200, 'report-only']);
  });

  it('decides a token afresh on an enforced rule after it was let through on a trialled one', async () => {
    const app = await server();
    const free = await signToken({ tenant: 'acme', plan: 'free' });
    for (let i = 0; i < 3; i++) expect((await get(app, '/trial/x', free)).status).toBe(200);
    const enforced = await get(app, '/enforced/x', free);
    expect([enforced.status, enforced.body.reason]).toEqual([403, 'claims.mismatch']);
  });
});
