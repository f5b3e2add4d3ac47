// preAuthLimit with failedAuth only looked at the budget before authentication and charged a failure once the lookup
// had failed: against a store that answers asynchronously, 200 concurrent key guesses from one IP all passed the look
// before the first failed, and all 200 reached the store (limit 3; one after another, only 3 did). An attempt now
// counts from the moment it passes the limit, and is handed back once its token is verified.
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../src/index.js';
import { guessedKey, preAuthGuard } from '../helpers/pre-auth.js';
import { wrapStore } from '../helpers/stores.js';
import { bearer } from '../tokens/fixtures.js';

/** A MemoryStore answering on a later turn of the event loop, as a remote store does; counts key lookups. */
function remoteStore() {
  let lookups = 0;
  const store = wrapStore(new MemoryStore(), (method, call) => {
    if (method === 'getApiKey') lookups++;
    const out = call();
    return new Promise((resolve) => setImmediate(() => resolve(out)));
  });
  return { store, lookups: () => lookups };
}

const req = (token: string) => bearer(token, { remoteAddress: '198.51.100.7' });

async function guard() {
  const remote = remoteStore();
  const g = await preAuthGuard(remote.store, { limit: 3, window: '1h', failedAuth: true });
  return { g, lookups: remote.lookups };
}

describe('preAuthLimit failedAuth under concurrency', () => {
  it('lets no more than limit of 200 concurrent guesses from one IP reach an asynchronous store', async () => {
    const { g, lookups } = await guard();
    const ds = await Promise.all(Array.from({ length: 200 }, () => g.evaluate(req(guessedKey()))));
    expect(ds.filter((d) => d.reason === 'token.invalid')).toHaveLength(3);
    expect(ds.filter((d) => d.reason === 'rate.limited')).toHaveLength(197);
    expect(lookups()).toBe(3);
  });

  it('lets exactly as many reach the store as guesses one after another do', async () => {
    const { g, lookups } = await guard();
    for (let i = 0; i < 200; i++) await g.evaluate(req(guessedKey()));
    expect(lookups()).toBe(3);
  });
});
