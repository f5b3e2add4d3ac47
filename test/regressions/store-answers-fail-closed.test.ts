// Regression (security review): the guard trusts what a custom store hands back. A promise that is not a native `Promise`
// (a thenable: Bluebird, a promise from another realm, a hand-written async wrapper) skips both the await
// and storeTimeout; a wrongly shaped answer reads as "not revoked" / "uses left".
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { createGuard, MemoryStore, type GuardRequest, type TokenStore } from '../../src/index.js';
import { basePolicy, signToken, storeApiKey, NOW } from '../helpers/tokens.js';

const req = (token: string): GuardRequest => ({
  method: 'GET',
  path: '/orders/1',
  headers: { authorization: `Bearer ${token}` },
  remoteAddress: '127.0.0.1',
  now: NOW,
});

/** A MemoryStore whose one method answers through a non-native thenable. */
function thenableStore(method: keyof TokenStore): MemoryStore {
  const store = new MemoryStore();
  const original = (store as unknown as Record<string, (...a: unknown[]) => unknown>)[method]!.bind(store);
  (store as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
    const value = original(...args);
    return { then: (ok: (v: unknown) => void) => setTimeout(() => ok(value), 1) };
  };
  return store;
}

describe('regression: store answers the guard does not normalise', () => {
  it('a revoked token is refused when getRevocation answers through a thenable', async () => {
    const store = thenableStore('getRevocation');
    const guard = createGuard(await basePolicy({ store }));
    await guard.revoke('tok-1', { now: NOW });
    const d = await guard.evaluate(req(await signToken({ scope: 'orders:read', jti: 'tok-1' })));
    expect(d.reason).toBe('token.revoked');
  });

  it('a revoked token is refused when getRevocation answers with a promise from another realm', async () => {
    const store = new MemoryStore();
    const foreignPromise = vm.runInNewContext('Promise') as PromiseConstructor;
    const original = store.getRevocation.bind(store);
    store.getRevocation = ((...a: Parameters<MemoryStore['getRevocation']>) => foreignPromise.resolve(original(...a))) as never;
    const guard = createGuard(await basePolicy({ store }));
    await guard.revoke('tok-1', { now: NOW });
    const d = await guard.evaluate(req(await signToken({ scope: 'orders:read', jti: 'tok-1' })));
    expect(d.reason).toBe('token.revoked');
  });

  it('a store call that never settles through a thenable is bounded by storeTimeout', async () => {
    const store = new MemoryStore();
    store.consume = (() => ({ then: () => undefined })) as never; // never settles
    const guard = createGuard(await basePolicy({ store, storeTimeout: '50ms', rateLimit: { limit: 10, window: '1m' } }));
    const token = await signToken({ scope: 'orders:read' });
    const outcome = await Promise.race([guard.evaluate(req(token)).then((d) => d.reason), new Promise((r) => setTimeout(() => r('hung'), 1000))]);
    expect(outcome).toBe('store.unavailable');
  });

  it('a getRevocation answer that is not a RevocationState fails closed instead of reading as "not revoked"', async () => {
    const store = new MemoryStore();
    store.getRevocation = (() => true) as never; // a naive JS store: "yes, revoked"
    const guard = createGuard(await basePolicy({ store }));
    const d = await guard.evaluate(req(await signToken({ scope: 'orders:read' })));
    expect(d.reason).not.toBe('ok');
  });

  it('a getRevocation answer that means "revoked" in a shape the guard does not know fails closed (503), in sync and async stores', async () => {
    const at = NOW.getTime() - 1000;
    const token = await signToken({ scope: 'orders:read' });
    const answers: unknown[] = [new Date(at), new Map([['revokedAt', at]]), { revoked: true }, { revokedAt: undefined, revoked_at: at }, { reason: 'compromised' }];
    for (const answer of answers) {
      for (const async of [false, true]) {
        const store = new MemoryStore();
        store.getRevocation = (() => (async ? Promise.resolve(answer) : answer)) as never;
        const guard = createGuard(await basePolicy({ store }));
        const d = await guard.evaluate(req(token));
        expect([d.status, d.reason], `${String(answer)} ${async ? 'async' : 'sync'}`).toEqual([503, 'store.unavailable']);
      }
    }
  });

  it('a getRevocation answer that says nothing reads as "not revoked", and known times beside other fields are read', async () => {
    const token = await signToken({ scope: 'orders:read' });
    const reasons: string[] = [];
    for (const answer of [{}, { revokedAt: undefined, subjectRevokedBefore: undefined }, { revokedAt: NOW.getTime() - 1000, tokenId: 'x' }]) {
      const store = new MemoryStore();
      store.getRevocation = (() => answer) as never;
      reasons.push((await createGuard(await basePolicy({ store })).evaluate(req(token))).reason);
    }
    expect(reasons).toEqual(['ok', 'ok', 'token.revoked']);
  });

  it('a consume answer whose counters are not counter states fails closed (503) instead of writing undefined or NaN headers', async () => {
    const token = await signToken({ scope: 'orders:read' });
    for (const limits of [[{}], [{ name: 'policy', limit: '10', remaining: 9, resetMs: 6000 }], [null], [{ name: 'policy', limit: 10, remaining: Number.NaN, resetMs: 0 }]]) {
      const store = new MemoryStore();
      store.consume = (() => ({ allowed: true, retryAfterMs: 0, limits })) as never;
      const guard = createGuard(await basePolicy({ store, rateLimit: { limit: 10, window: '1m' } }));
      const d = await guard.evaluate(req(token));
      expect([d.status, d.reason, d.headers['RateLimit-Limit']]).toEqual([503, 'store.unavailable', undefined]);
    }
    // The same store answering in shape lets the request through, with its headers.
    const guard = createGuard(await basePolicy({ store: new MemoryStore(), rateLimit: { limit: 10, window: '1m' } }));
    const d = await guard.evaluate(req(token));
    expect([d.status, d.headers['RateLimit-Limit'], d.headers['RateLimit-Remaining']]).toEqual([200, '10', '9']);
  });

  it('a useApiKey answer below -1 is not read as "uses left"', async () => {
    const store = new MemoryStore();
    const { key } = await storeApiKey(store, { uses: 1 });
    store.useApiKey = (() => -2) as never; // e.g. a non-atomic store that raced below zero
    const guard = createGuard(await basePolicy({ store }));
    const d = await guard.evaluate(req(key));
    expect(d.reason).toBe('token.expired');
  });
});
