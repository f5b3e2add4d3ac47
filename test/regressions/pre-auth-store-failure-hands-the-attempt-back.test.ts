// preAuthLimit with failedAuth holds each attempt until its token is verified (then hands it back) or fails. A request
// that ended in a store failure (503) settled nothing: its attempt stayed charged until the window passed, so a store
// outage of `limit` requests locked a client with a valid key out for the whole window (429 after the store was back).
// A store failure now hands the attempt back: it was neither a failed authentication nor a pass.
import { describe, expect, it } from 'vitest';
import { issueApiKey, MemoryStore } from '../../src/index.js';
import { preAuthGuard } from '../helpers/pre-auth.js';
import { wrapStore } from '../helpers/stores.js';
import { NOW } from '../helpers/tokens.js';
import { bearer } from '../tokens/fixtures.js';

/** A MemoryStore whose key lookups fail while `down` is set, answering asynchronously as a remote store does. */
function flakyStore() {
  const inner = new MemoryStore();
  const state = { down: false };
  const store = wrapStore(inner, (method, call) => {
    if (method === 'getApiKey' && state.down) return Promise.reject(new Error('connection reset'));
    return Promise.resolve(call());
  });
  return { store, inner, state };
}

const at = (seconds: number) => new Date(NOW.getTime() + seconds * 1000);
const req = (token: string, now = NOW) => bearer(token, { remoteAddress: '198.51.100.7', now });

describe('preAuthLimit failedAuth and a store failure', () => {
  it('hands the attempt of a request that ended in 503 back, so a valid key passes once the store is back', async () => {
    const { store, inner, state } = flakyStore();
    const issued = issueApiKey({ prefix: 'tg_', subject: 'alice', scopes: ['orders:read'], expiresIn: '1d', now: NOW });
    await inner.putApiKey(issued.record);
    const g = await preAuthGuard(store, { limit: 3, window: '1h', failedAuth: true });

    state.down = true;
    for (let i = 0; i < 5; i++) {
      const d = await g.evaluate(req(issued.key, at(i)));
      expect(d.reason).toBe('store.unavailable');
      expect(d.status).toBe(503);
    }
    state.down = false;
    const d = await g.evaluate(req(issued.key, at(10)));
    expect([d.effect, d.reason]).toEqual(['allow', 'ok']);
  });

  it('still keeps failed authentications: the fourth forged key is refused before the store', async () => {
    const { store } = flakyStore();
    const g = await preAuthGuard(store, { limit: 3, window: '1h', failedAuth: true });
    const forged = () => issueApiKey({ prefix: 'tg_', subject: 'nobody', scopes: [], expiresIn: '1d', now: NOW }).key;
    for (let i = 0; i < 3; i++) expect((await g.evaluate(req(forged(), at(i)))).reason).toBe('token.invalid');
    expect((await g.evaluate(req(forged(), at(5)))).reason).toBe('rate.limited');
  });
});
