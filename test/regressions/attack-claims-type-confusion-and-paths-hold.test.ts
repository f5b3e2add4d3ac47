// Attacks on the claims check that held (kept as negative tests): a token holder whose claims are shaped to confuse the
// matcher (a number for a string, an array for a value, a substring, another case or Unicode form, a path through an
// array or the prototype) and a predicate that tries to change what later checks see.
import { describe, expect, it } from 'vitest';
import express from 'express';
import request from 'supertest';
import { tokenGuard } from '../../src/adapters/express.js';
import { createGuard, MemoryStore, type ClaimsRule, type GuardRequest, type TokenGuardPolicy } from '../../src/index.js';
import { basePolicy, signToken, NOW } from '../helpers/tokens.js';

const get = (path: string, token: string): GuardRequest => ({ method: 'GET', path, headers: { authorization: `Bearer ${token}` }, remoteAddress: '203.0.113.9', now: NOW });

async function guardWith(overrides: Partial<TokenGuardPolicy>) {
  return createGuard(await basePolicy({ store: new MemoryStore(), unmatched: 'authenticate', ...overrides }));
}

async function reasonFor(claims: ClaimsRule, tokenClaims: Record<string, unknown>): Promise<string> {
  const guard = await guardWith({ claims });
  return (await guard.evaluate(get('/orders/1', await signToken({ scope: 'orders:read', ...tokenClaims })))).reason;
}

describe('attack: claims the matcher could be confused by', () => {
  it.each<[string, ClaimsRule, Record<string, unknown>]>([
    ['a string "1" for the number 1', { level: 1 }, { level: '1' }],
    ['the number 1 for the string "1"', { level: '1' }, { level: 1 }],
    ['an array holding the value for the value', { tenant: 'acme' }, { tenant: ['acme'] }],
    ['an object for the value', { tenant: 'acme' }, { tenant: { toString: 'acme' } }],
    ['true for "true"', { verified: 'true' }, { verified: true }],
    ['another letter case', { tenant: 'acme' }, { tenant: 'ACME' }],
    ['another Unicode normalisation form (NFD for NFC)', { tenant: 'caf\u00e9' }, { tenant: 'cafe\u0301' }],
    ['a string containing the value, for includes (no substring match)', { role: { includes: 'admin' } }, { role: 'superadmin' }],
    ['the value itself as a string, for includes (includes needs an array)', { role: { includes: 'admin' } }, { role: 'admin' }],
    ['an array nested in the array, for includes', { roles: { includes: 'admin' } }, { roles: [['admin']] }],
    ['an array-like object, for includes', { roles: { includes: 'admin' } }, { roles: { 0: 'admin', length: 1 } }],
    ['an array holding an allowed value, for oneOf', { tier: { oneOf: ['gold'] } }, { tier: ['gold'] }],
    ['null for a missing value', { tenant: 'acme' }, { tenant: null }],
  ])('refuses %s', async (_what, claims, tokenClaims) => {
    expect(await reasonFor(claims, tokenClaims)).toBe('claims.mismatch');
  });

  it('never walks a dotted path through an array of objects or into a prototype', async () => {
    expect(await reasonFor({ 'org.roles': { includes: 'admin' } }, { org: [{ roles: ['admin'] }] })).toBe('claims.mismatch');
    expect(await reasonFor({ 'org.roles.constructor.name': 'Array' }, { org: { roles: ['admin'] } })).toBe('claims.mismatch');
    expect(await reasonFor({ 'org.hasOwnProperty.name': 'hasOwnProperty' }, { org: {} })).toBe('claims.mismatch');
    expect(await reasonFor({ 'org.__proto__.constructor.name': 'Object' }, { org: {} })).toBe('claims.mismatch');
  });

  it('reads a claim by its own dotted name before the nested path, as documented (the issuer, not the holder, writes both)', async () => {
    const claims = { 'org.roles': { includes: 'admin' } } as const;
    expect(await reasonFor(claims, { 'org.roles': ['admin'], org: { roles: ['user'] } })).toBe('ok');
    expect(await reasonFor(claims, { 'org.roles': ['user'], org: { roles: ['admin'] } })).toBe('claims.mismatch');
    // A null under the dotted name is a value: the nested path is not consulted.
    expect(await reasonFor(claims, { 'org.roles': null, org: { roles: ['admin'] } })).toBe('claims.mismatch');
  });

  it('refuses a predicate that tries to rewrite the claims, and later checks and requests still see the signed ones', async () => {
    const policy = await basePolicy({
      store: new MemoryStore(),
      unmatched: 'authenticate',
      claims: (claims) => {
        (claims as Record<string, unknown>)['tenant'] = 'acme';
        return true;
      },
      rules: [{ path: '/acme/**', claims: { tenant: 'acme' } }],
    });
    const app = express();
    app.use(tokenGuard(policy));
    app.get('/acme/x', (_req, res) => {
      res.json({ ok: true });
    });
    const token = await signToken({ tenant: 'globex' });
    for (let i = 0; i < 2; i++) {
      const res = await request(app).get('/acme/x').set('authorization', `Bearer ${token}`);
      expect([res.status, res.body.reason]).toEqual([403, 'claims.mismatch']);
    }
    const guard = createGuard({ ...policy, claims: () => true });
    const d = await guard.evaluate(get('/acme/x', token));
    expect([d.reason, d.token?.claims?.['tenant']]).toEqual(['claims.mismatch', 'globex']);
  });
});
