// Attacks on step-up (RFC 9470) that held (kept as negative tests): a token whose acr, amr or auth_time has another
// shape than the check expects, a maxAge of 0, and an API key (which has no authentication facts) on a step-up rule.
import { describe, expect, it } from 'vitest';
import express from 'express';
import request from 'supertest';
import { tokenGuard } from '../../src/adapters/express.js';
import { createGuard, MemoryStore, type GuardRequest, type StepUpPolicy, type TokenGuardPolicy } from '../../src/index.js';
import { basePolicy, signToken, storeApiKey, NOW, NOW_S } from '../helpers/tokens.js';

const get = (token: string): GuardRequest => ({ method: 'GET', path: '/x', headers: { authorization: `Bearer ${token}` }, remoteAddress: '203.0.113.9', now: NOW });

async function guardFor(stepUp: StepUpPolicy, overrides: Partial<TokenGuardPolicy> = {}) {
  return createGuard(await basePolicy({ store: new MemoryStore(), rules: [{ path: '/x', stepUp }], ...overrides }));
}

describe('attack: step-up claims of another shape', () => {
  it.each<[string, StepUpPolicy, Record<string, unknown>]>([
    ['an acr given as an array holding the level', { acr: ['urn:gold'] }, { acr: ['urn:gold'] }],
    ['an acr given as a number', { acr: ['1'] }, { acr: 1 }],
    ['an acr in another letter case', { acr: ['urn:gold'] }, { acr: 'URN:GOLD' }],
    ['an amr given as a string', { amr: ['mfa'] }, { amr: 'mfa' }],
    ['an amr array with a non-string member', { amr: ['mfa'] }, { amr: ['mfa', 1] }],
    ['an amr value that only contains the method', { amr: ['mfa'] }, { amr: ['mfa2', 'xmfa'] }],
    ['an auth_time in the future beyond the clock tolerance', { maxAge: '10m' }, { auth_time: NOW_S + 60 }],
    ['no auth_time at all (iat is not auth_time)', { maxAge: '10m' }, {}],
    ['an auth_time older than maxAge plus the tolerance', { maxAge: '10m' }, { auth_time: NOW_S - 606 }],
    ['an auth_time far in the past', { maxAge: '10m' }, { auth_time: -1e12 }],
    ['with maxAge 0, an auth_time just past the clock tolerance', { maxAge: 0 }, { auth_time: NOW_S - 6 }],
  ])('asks for step-up for %s', async (_what, stepUp, claims) => {
    const guard = await guardFor(stepUp);
    const d = await guard.evaluate(get(await signToken(claims)));
    expect([d.status, d.effect, d.reason]).toEqual([401, 'step_up', 'step_up.required']);
    expect(d.headers['WWW-Authenticate']).toMatch(/^Bearer error="insufficient_user_authentication"/);
  });

  it('lets a fresh login through within maxAge 0 plus the clock tolerance, and no further', async () => {
    const guard = await guardFor({ maxAge: 0 });
    expect((await guard.evaluate(get(await signToken({ auth_time: NOW_S - 5 })))).reason).toBe('ok');
    expect((await guard.evaluate(get(await signToken({ auth_time: NOW_S - 6 })))).reason).toBe('step_up.required');
  });

  it('never lets an API key (no auth_time, amr or acr) through a step-up rule, over HTTP', async () => {
    const store = new MemoryStore();
    const app = express();
    app.use(tokenGuard(await basePolicy({ store, rules: [{ path: '/x', stepUp: { maxAge: '1h', acr: ['urn:gold'] } }] })));
    app.get('/x', (_req, res) => {
      res.json({ ok: true });
    });
    const { key } = await storeApiKey(store, { metadata: { auth_time: NOW_S, acr: 'urn:gold' } });
    const res = await request(app).get('/x').set('authorization', `Bearer ${key}`);
    expect([res.status, res.body.reason]).toEqual([401, 'step_up.required']);
    expect(res.headers['www-authenticate']).toBe(
      'Bearer error="insufficient_user_authentication", error_description="Stronger or more recent authentication required", max_age="3600", acr_values="urn:gold"',
    );
  });
});
