// A key whose last use a request spent reads as used up to that request's second evaluation (one guard mounted twice),
// which then goes on with the holder its first evaluation authenticated. The engine tells that refusal by its typed
// cause (EXHAUSTED, checks/expiry.ts), not by the detail text people read: these pin the cause, the unchanged text and
// reason codes, and that a key refused for any other cause is never waved through.
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { tokenGuard } from '../../src/adapters/express.js';
import { apiKeyExpiry, apiKeyExpiryCause, EXHAUSTED, EXPIRY_DETAIL } from '../../src/checks/expiry.js';
import { issueApiKey, MemoryStore, type DecisionEvent, type LifecycleEvent } from '../../src/index.js';
import { asyncStore, wrapStore } from '../helpers/stores.js';
import { expressMountedTwice } from '../helpers/mounted-twice.js';
import { basePolicy, NOW, storeApiKey } from '../helpers/tokens.js';

describe('the cause of an expired key record', () => {
  const { record } = issueApiKey({ prefix: 'tg_', subject: 's', scopes: [], expiresIn: 1000, now: NOW });

  it('is EXHAUSTED for no uses left and "expired" for a passed expiresAt (which wins), with the detail text unchanged', () => {
    expect(apiKeyExpiryCause({ ...record, remaining: 0 }, NOW.getTime())).toBe(EXHAUSTED);
    expect(apiKeyExpiryCause({ ...record, remaining: 0 }, NOW.getTime() + 1000)).toBe('expired');
    expect(apiKeyExpiryCause({ ...record, remaining: 1 }, NOW.getTime())).toBeUndefined();
    expect(apiKeyExpiry({ ...record, remaining: 0 }, NOW.getTime())).toBe('no uses left');
    expect(EXPIRY_DETAIL).toEqual({ expired: 'key record expired', no_uses_left: 'no uses left' });
  });
});

/** A MemoryStore that keeps no lifecycle events: without onLifecycle nobody listens, and an expired key is refused at once. */
const withoutEvents = (): MemoryStore =>
  wrapStore(new Proxy(new MemoryStore(), { get: (t, prop) => (prop === 'appendLifecycleEvent' ? undefined : Reflect.get(t, prop, t)) }), (_m, call) => call());

const STORES = [
  ['MemoryStore', () => new MemoryStore()],
  ['an asynchronous store', () => asyncStore(new MemoryStore())],
  ['a store without lifecycle events', withoutEvents],
] as const;

describe.each(STORES)('a key with one use, its guard mounted twice (%s)', (_name, makeStore) => {
  it.each([false, true])('passes once, then is refused token.expired "no uses left", reported once as no_uses_left (onLifecycle: %s)', async (listening) => {
    const store = makeStore();
    const { key, record } = await storeApiKey(store, { uses: 1 });
    const decisions: DecisionEvent[] = [];
    const lifecycle: LifecycleEvent[] = [];
    const app = expressMountedTwice(
      tokenGuard(await basePolicy({ store, onDecision: (e) => void decisions.push(e), ...(listening && { onLifecycle: (e: LifecycleEvent) => void lifecycle.push(e) }) })),
    );
    const first = await request(app).get('/orders/1').set('Authorization', `Bearer ${key}`);
    expect([first.status, first.text]).toEqual([200, 'ok']);
    const second = await request(app).get('/orders/1').set('Authorization', `Bearer ${key}`);
    expect([second.status, second.body.reason]).toEqual([401, 'token.expired']);
    expect(decisions.map((d) => [d.reason, d.detail])).toEqual([
      ['ok', undefined],
      ['ok', undefined],
      ['token.expired', 'no uses left'],
    ]);
    if (listening) expect(lifecycle.map((e) => [e.type, e.tokenId, e.reason])).toEqual([['key.expired', record.id, 'no_uses_left']]);
  });

  it('is refused at the second mount when its expiresAt passed between the mounts, though the first spent its last use', async () => {
    const store = makeStore();
    const expiresAt = NOW.getTime() + 60_000;
    const { key } = await storeApiKey(store, { uses: 1, expiresIn: '1m', now: NOW });
    let now = NOW;
    const app = expressMountedTwice(tokenGuard(await basePolicy({ store, clock: () => now })), (_req, _res, next) => {
      now = new Date(expiresAt);
      next();
    });
    const r = await request(app).get('/orders/1').set('Authorization', `Bearer ${key}`);
    expect([r.status, r.body.reason]).toEqual([401, 'token.expired']);
  });
});
