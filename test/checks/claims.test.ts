import { describe, expect, it } from 'vitest';
import express from 'express';
import request from 'supertest';
import { tokenGuard } from '../../src/adapters/express.js';
import { createGuard, MemoryStore, PolicyError, REASONS, type GuardRequest, type TokenGuardPolicy } from '../../src/index.js';
import { basePolicy, signToken, storeApiKey, NOW } from '../helpers/tokens.js';

const get = (path: string, token: string): GuardRequest => ({ method: 'GET', path, headers: { authorization: `Bearer ${token}` }, remoteAddress: '203.0.113.9', now: NOW });

async function guardWith(overrides: Partial<TokenGuardPolicy>) {
  return createGuard(await basePolicy({ store: new MemoryStore(), unmatched: 'authenticate', ...overrides }));
}

describe('claims checks through the guard', () => {
  it('allows a token whose claims match by value and by includes on a dotted path, and refuses one that does not with 403 claims.mismatch', async () => {
    const guard = await guardWith({ claims: { tenant: 'acme', 'org.roles': { includes: 'admin' } } });
    const good = await signToken({ scope: 'orders:read', tenant: 'acme', org: { roles: ['user', 'admin'] } });
    expect((await guard.evaluate(get('/orders/1', good))).reason).toBe('ok');
    for (const claims of [
      { tenant: 'evil', org: { roles: ['admin'] } },
      { tenant: 'acme', org: { roles: ['user'] } },
      { tenant: 'acme' },
      { tenant: 'acme', org: { roles: 'admin' } },
    ]) {
      const d = await guard.evaluate(get('/orders/1', await signToken({ scope: 'orders:read', ...claims })));
      expect([d.status, d.reason, d.effect, d.headers['WWW-Authenticate']]).toEqual([403, 'claims.mismatch', 'deny', undefined]);
    }
  });

  it('reads a claim whose own name has dots by that name', async () => {
    const guard = await guardWith({ claims: { 'https://example.com/tier': { oneOf: ['gold', 'silver'] } } });
    expect((await guard.evaluate(get('/orders/1', await signToken({ scope: 'orders:read', 'https://example.com/tier': 'gold' })))).reason).toBe('ok');
    expect((await guard.evaluate(get('/orders/1', await signToken({ scope: 'orders:read', 'https://example.com/tier': 'bronze' })))).reason).toBe('claims.mismatch');
  });

  it('never reads a claim path from the prototype', async () => {
    const guard = await guardWith({ claims: { 'constructor.name': 'Object' } });
    expect((await guard.evaluate(get('/orders/1', await signToken({ scope: 'orders:read' })))).reason).toBe('claims.mismatch');
  });

  it('applies a rule-level claims check only on its rule, on top of the policy', async () => {
    const guard = await guardWith({ rules: [{ path: '/acme/**', claims: { tenant: 'acme' } }, { path: '/open/**' }] });
    const other = await signToken({ tenant: 'globex' });
    expect((await guard.evaluate(get('/acme/x', other))).reason).toBe('claims.mismatch');
    expect((await guard.evaluate(get('/open/x', other))).reason).toBe('ok');
  });

  it('trials a report-only rule’s claims: reported, the request goes through', async () => {
    const guard = await guardWith({ rules: [{ path: '/acme/**', claims: { tenant: 'acme' }, mode: 'report-only' }] });
    const d = await guard.evaluate(get('/acme/x', await signToken({ tenant: 'globex' })));
    expect([d.effect, d.reason, d.mode]).toEqual(['deny', 'claims.mismatch', 'report-only']);
  });

  it('runs a custom predicate with the claims and the request, and refuses when it returns false, a non-boolean or throws', async () => {
    const seen: unknown[] = [];
    const guard = await guardWith({
      claims: (claims, req) => {
        seen.push([claims['tenant'], req.method, req.path, req.ip]);
        if (claims['tenant'] === 'boom') throw new Error('predicate bug');
        if (claims['tenant'] === 'truthy') return 1 as unknown as boolean;
        return claims['tenant'] === 'acme';
      },
    });
    expect((await guard.evaluate(get('/orders/1?x=1', await signToken({ scope: 'orders:read', tenant: 'acme' })))).reason).toBe('ok');
    expect(seen[0]).toEqual(['acme', 'GET', '/orders/1', '203.0.113.9']);
    for (const tenant of ['globex', 'boom', 'truthy']) {
      const d = await guard.evaluate(get('/orders/1', await signToken({ scope: 'orders:read', tenant })));
      expect([d.status, d.reason]).toEqual([403, 'claims.mismatch']);
    }
  });

  it("reads an API key's record metadata as its claims", async () => {
    const store = new MemoryStore();
    const guard = createGuard(await basePolicy({ store, unmatched: 'authenticate', claims: { tenant: 'acme' } }));
    const { key: acme } = await storeApiKey(store, { metadata: { tenant: 'acme' } });
    const { key: bare } = await storeApiKey(store);
    expect((await guard.evaluate(get('/orders/1', acme))).reason).toBe('ok');
    expect((await guard.evaluate(get('/orders/1', bare))).reason).toBe('claims.mismatch');
  });

  it('refuses an invalid claims policy at start-up', async () => {
    for (const claims of [{}, { tenant: { equals: 'x' } }, { 'a..b': 'x' }, { tenant: { oneOf: [] } }, 'acme']) {
      await expect(async () => createGuard(await basePolicy({ claims: claims as never }))).rejects.toThrow(PolicyError);
    }
    await expect(async () => createGuard(await basePolicy({ rules: [{ path: '/x', public: true, claims: { a: 'b' } }] }))).rejects.toThrow(/public rule/);
  });

  it('names the claim a bad claims map gets wrong, in the policy and in a rule (a claim set to undefined included)', async () => {
    const issuesOf = async (overrides: Partial<TokenGuardPolicy>) => {
      try {
        createGuard(await basePolicy(overrides));
      } catch (err) {
        expect(err).toBeInstanceOf(PolicyError);
        return (err as PolicyError).issues;
      }
      return [];
    };
    const unset = { path: 'claims.tenant', message: expect.stringMatching(/^undefined is no claim value: .*or remove the claim$/) };
    expect(await issuesOf({ claims: { tenant: undefined } as never })).toEqual([unset]);
    expect(await issuesOf({ rules: [{ path: '/x/**', claims: { ok: 'yes', tenant: undefined } as never }] })).toEqual([{ ...unset, path: 'rules[0].claims.tenant' }]);
    expect(await issuesOf({ claims: { 'a..b': 'x', tier: { oneOf: [] }, role: { equals: 'x' }, level: null } as never })).toEqual([
      { path: 'claims.a..b', message: 'expected a claim name or dotted path without empty segments' },
      { path: 'claims.tier.oneOf', message: 'expected at least one value' },
      { path: 'claims.role', message: 'expected a value, { includes: value } or { oneOf: [values] }' },
      { path: 'claims.level', message: 'expected a value, { includes: value } or { oneOf: [values] }' },
    ]);
    expect(await issuesOf({ claims: 'acme' as never })).toEqual([{ path: 'claims', message: 'expected { claim: matcher, … } or a function (claims, request) => boolean' }]);
    expect(await issuesOf({ claims: {} })).toEqual([{ path: 'claims', message: 'an empty claims map checks nothing: list claims, or remove claims' }]);
  });

  it('answers claims.mismatch with a 403 problem body over Express', async () => {
    expect(REASONS['claims.mismatch'].status).toBe(403);
    const app = express();
    app.use(tokenGuard(await basePolicy({ store: new MemoryStore(), unmatched: 'authenticate', claims: { tenant: 'acme' } })));
    app.get('/orders/:id', (_req, res) => res.json({ ok: true }));
    const refused = await request(app)
      .get('/orders/1')
      .set('authorization', `Bearer ${await signToken({ scope: 'orders:read', tenant: 'globex' })}`);
    expect([refused.status, refused.body.reason, refused.headers['content-type']]).toEqual([403, 'claims.mismatch', 'application/problem+json']);
    const ok = await request(app)
      .get('/orders/1')
      .set('authorization', `Bearer ${await signToken({ scope: 'orders:read', tenant: 'acme' })}`);
    expect(ok.status).toBe(200);
  });
});
