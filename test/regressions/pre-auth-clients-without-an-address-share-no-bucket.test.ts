// preAuthLimit counted every client without a usable address under one key ('unknown'): with the fetch adapter given
// no connection info, or behind a trusted proxy that writes `ip:port` into X-Forwarded-For, five junk tokens from
// anyone made everyone else's valid key 429. Such a client is now not limited before authentication at all (the trace
// says so); limits after verification (rateLimit, by token or subject) still apply to it.
import { describe, expect, it } from 'vitest';
import { guardFetch } from '../../src/adapters/fetch.js';
import { createGuard, issueApiKey, MemoryStore, type TokenGuardPolicy } from '../../src/index.js';
import { NOW } from '../helpers/tokens.js';

async function setUp(overrides: Partial<TokenGuardPolicy> = {}) {
  const store = new MemoryStore();
  const alice = issueApiKey({ prefix: 'tg_', subject: 'alice', scopes: ['orders:read'], expiresIn: '1d', now: NOW });
  await store.putApiKey(alice.record);
  const policy: TokenGuardPolicy = {
    apiKeys: { prefix: 'tg_' },
    store,
    clock: () => NOW,
    rules: [{ path: '/orders/**', scopes: ['orders:read'] }],
    preAuthLimit: { limit: 5, window: '1m', failedAuth: true },
    ...overrides,
  };
  return { policy, alice: alice.key };
}

describe('preAuthLimit and clients without an address', () => {
  it("with guardFetch and no connection info, one client's junk tokens do not refuse another's valid key", async () => {
    const { policy, alice } = await setUp();
    const guard = guardFetch(policy);
    const call = (token: string) => guard(new Request('https://api.example/orders/1', { headers: { authorization: `Bearer ${token}` } }));
    for (let i = 0; i < 10; i++) expect(((await call('junk')) as Response).status).toBe(401);
    const r = await call(alice);
    expect(r instanceof Response ? r.status : 'passed').toBe('passed');
  });

  it('behind a trusted proxy writing ip:port, junk from one client does not refuse another client', async () => {
    const { policy, alice } = await setUp({ trustProxy: ['10.0.0.0/8'] });
    const guard = createGuard(policy);
    const via = (token: string, forwardedFor: string) =>
      guard.evaluate({ method: 'GET', path: '/orders/1', headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': forwardedFor }, remoteAddress: '10.0.0.1' });
    for (let i = 0; i < 10; i++) expect((await via('junk', `198.51.100.66:${40000 + i}`)).reason).toBe('token.invalid');
    expect((await via(alice, '203.0.113.5:50123')).reason).toBe('ok');
  });

  it('says in the trace why the limit did not apply, and still limits a client whose address is known', async () => {
    const { policy } = await setUp({ trustProxy: ['10.0.0.0/8'] });
    const guard = createGuard(policy);
    const at = (forwardedFor: string) => ({
      method: 'GET',
      path: '/orders/1',
      headers: { authorization: 'Bearer junk', 'x-forwarded-for': forwardedFor },
      remoteAddress: '10.0.0.1',
    });
    const x = await guard.explain(at('203.0.113.5:50123'));
    expect(x.steps.find((s) => s.step === 'preAuthLimit')).toMatchObject({ outcome: 'skipped', detail: expect.stringContaining('client address unknown') });
    const reasons: string[] = [];
    for (let i = 0; i < 6; i++) reasons.push((await guard.evaluate(at('203.0.113.5'))).reason);
    expect(reasons).toEqual([...Array<string>(5).fill('token.invalid'), 'rate.limited']);
  });
});
