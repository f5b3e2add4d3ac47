import { describe, expect, it } from 'vitest';
import { createGuard, MemoryStore, type Decision, type GuardRequest } from '../../src/index.js';
import { asyncStore } from '../helpers/stores.js';
import { basePolicy, signToken, storeApiKey, NOW } from '../helpers/tokens.js';

const isPromise = (v: unknown): v is Promise<unknown> => v instanceof Promise;
const get = (token: string): GuardRequest => ({ method: 'GET', path: '/orders/1', headers: { authorization: `Bearer ${token}` }, remoteAddress: '203.0.113.9', now: NOW });

describe('guard.decide', () => {
  it('returns a Decision at once for a cached JWT against a synchronous store, and a Promise the first time', async () => {
    const guard = createGuard(await basePolicy({ store: new MemoryStore() }));
    const token = await signToken({ scope: 'orders:read' });
    const first = guard.decide(get(token));
    expect(isPromise(first)).toBe(true);
    expect((await first).reason).toBe('ok');
    const again = guard.decide(get(token));
    expect(isPromise(again)).toBe(false);
    expect((again as Decision).reason).toBe('ok');
  });

  it('returns a Decision at once for a refusal that needs no store, and for an API key against MemoryStore', async () => {
    const store = new MemoryStore();
    const guard = createGuard(await basePolicy({ store }));
    const missing = guard.decide({ method: 'GET', path: '/orders/1', headers: {}, remoteAddress: '203.0.113.9', now: NOW });
    expect(isPromise(missing)).toBe(false);
    expect((missing as Decision).reason).toBe('token.missing');
    const { key } = await storeApiKey(store);
    const d = guard.decide(get(key));
    expect(isPromise(d)).toBe(false);
    expect((d as Decision).reason).toBe('ok');
  });

  it('returns a Promise when the store answers asynchronously, and evaluate always returns a Promise of the same decision', async () => {
    const guard = createGuard(await basePolicy({ store: asyncStore(new MemoryStore()) }));
    const token = await signToken({ scope: 'orders:read' });
    await guard.evaluate(get(token));
    const d = guard.decide(get(token));
    expect(isPromise(d)).toBe(true);
    expect((await d).reason).toBe('ok');
    const e = guard.evaluate(get(token));
    expect(isPromise(e)).toBe(true);
    expect((await e).reason).toBe('ok');
  });

  it('turns a store that throws synchronously into a 503, synchronously', async () => {
    const store = new MemoryStore();
    store.getRevocation = () => {
      throw new Error('down');
    };
    const guard = createGuard(await basePolicy({ store }));
    const token = await signToken({ scope: 'orders:read' });
    await guard.evaluate(get(token));
    const d = guard.decide(get(token));
    expect(isPromise(d)).toBe(false);
    expect([(d as Decision).status, (d as Decision).reason]).toEqual([503, 'store.unavailable']);
  });
});
