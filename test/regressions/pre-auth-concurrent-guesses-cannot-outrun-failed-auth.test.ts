// preAuthLimit with failedAuth only looked at the budget before authentication and charged a failure once the lookup
// had failed: against a store that answers asynchronously, 200 concurrent key guesses from one IP all passed the look
// before the first failed, and all 200 reached the store (limit 3; one after another, only 3 did). An attempt now
// counts from the moment it passes the limit, and is handed back once its token is verified.
import { describe, expect, it } from 'vitest';
import { createGuard, issueApiKey, MemoryStore, type GuardRequest } from '../../src/index.js';
import { basePolicy, NOW } from '../helpers/tokens.js';

/** A MemoryStore answering on a later turn of the event loop, as a remote store does; counts key lookups. */
function remoteStore() {
  const inner = new MemoryStore();
  let lookups = 0;
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        if (prop === 'getApiKey') lookups++;
        const out = (v as (...a: unknown[]) => unknown).apply(target, args);
        return new Promise((resolve) => setImmediate(() => resolve(out)));
      };
    },
  });
  return { store, lookups: () => lookups };
}

const guess = () => issueApiKey({ prefix: 'tg_', subject: 'nobody', scopes: ['orders:read'], expiresIn: '1d', now: NOW }).key;
const req = (token: string): GuardRequest => ({ method: 'GET', path: '/orders/1', headers: { authorization: `Bearer ${token}` }, remoteAddress: '198.51.100.7', now: NOW });

async function guard() {
  const remote = remoteStore();
  const g = createGuard(await basePolicy({ store: remote.store as MemoryStore, trackUsage: false, preAuthLimit: { limit: 3, window: '1h', failedAuth: true } }));
  return { g, lookups: remote.lookups };
}

describe('preAuthLimit failedAuth under concurrency', () => {
  it('lets no more than limit of 200 concurrent guesses from one IP reach an asynchronous store', async () => {
    const { g, lookups } = await guard();
    const ds = await Promise.all(Array.from({ length: 200 }, () => g.evaluate(req(guess()))));
    expect(ds.filter((d) => d.reason === 'token.invalid')).toHaveLength(3);
    expect(ds.filter((d) => d.reason === 'rate.limited')).toHaveLength(197);
    expect(lookups()).toBe(3);
  });

  it('lets exactly as many reach the store as guesses one after another do', async () => {
    const { g, lookups } = await guard();
    for (let i = 0; i < 200; i++) await g.evaluate(req(guess()));
    expect(lookups()).toBe(3);
  });
});
