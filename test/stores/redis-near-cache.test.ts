// RedisStore's near-cache against fake ioredis clients, so that every interleaving of a read, SUBSCRIBE, a disconnect
// and a revocation is chosen by the test instead of by timing. No Redis needed.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { RedisStore } from '../../src/stores/redis.js';

const T0 = Date.UTC(2026, 10, 25, 10, 0, 0);

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Lets every settled promise's callbacks run. */
const settle = () => new Promise((r) => setTimeout(r, 0));

/**
 * A command client whose GETs wait until the test answers them (`answer`), with what `redis` holds at that moment
 * unless told otherwise, and a subscriber whose SUBSCRIBE calls wait until the test confirms them (`confirm`).
 */
function harness() {
  const redis = new Map<string, string>();
  const gets: { key: string; reply: Deferred<string | null> }[] = [];
  const client = {
    defineCommand(name: string) {
      // The revocation scripts: store the entry as the real script would, nobody else listening (NUMSUB 0).
      (this as Record<string, unknown>)[name] = (key: string, _now: number, at: number, exp: number | '', channel: string, message: string) => {
        redis.set(key, JSON.stringify({ at, exp: exp === '' ? null : exp }));
        // Published in the same script, heard by this store's own subscriber.
        void client.publish(channel, message);
        return Promise.resolve(1);
      };
    },
    get(key: string) {
      const reply = deferred<string | null>();
      gets.push({ key, reply });
      return reply.promise;
    },
    // Redis delivers what the client publishes to the subscriber (the store's probe must be heard to turn the cache on).
    publish: (channel: string, message: string) => {
      queueMicrotask(() => subscriber.emit('message', channel, message));
      return Promise.resolve(1);
    },
  };
  const subscribes: Deferred<void>[] = [];
  const subscriber = Object.assign(new EventEmitter(), {
    subscribe: () => {
      const d = deferred<void>();
      subscribes.push(d);
      return d.promise;
    },
    unsubscribe: async () => undefined,
  });
  const store = new RedisStore({ client: client as never, subscriber: subscriber as never });
  return {
    redis,
    store,
    subscriber,
    /** Answers the oldest pending GET, by default with what Redis holds now. */
    answer(value?: string | null) {
      const g = gets.shift();
      if (!g) throw new Error('no GET pending');
      g.reply.resolve(value === undefined ? (redis.get(g.key) ?? null) : value);
      return g.key;
    },
    /** The key of the oldest pending GET. */
    pendingKey: () => gets[0]?.key,
    /** Confirms the oldest pending SUBSCRIBE. */
    async confirm() {
      subscribes.shift()?.resolve();
      await settle();
    },
    /** A revocation lookup, its GET answered from Redis whenever it goes to Redis. */
    async lookup(tokenId: string, now: number) {
      const r = store.getRevocation(tokenId, undefined, now);
      if (r instanceof Promise) {
        this.answer();
        return { cached: false, state: await r };
      }
      return { cached: true, state: r };
    },
  };
}

describe('RedisStore near-cache: only reads that started on a live subscription are cached', () => {
  it('regression (M5): a lookup started before SUBSCRIBE was confirmed is not cached', async () => {
    const h = harness();
    // A request reads tok-1's revocation while SUBSCRIBE is in flight; Redis answers "none" (not delivered yet).
    const first = h.store.getRevocation('tok-1', undefined, T0) as Promise<unknown>;
    const key = h.pendingKey() as string;
    // Another instance revokes tok-1 and publishes: this instance is not subscribed yet and never hears it.
    h.redis.set(key, JSON.stringify({ at: T0, exp: null }));
    await h.confirm();
    expect(h.store.stats().nearCacheEnabled).toBe(true);
    // The old "none", read before the revocation, lands only now.
    h.answer(null);
    expect(await first).toBeUndefined();
    // The next request must go to Redis and see the revocation, not a cached "none" for nearCache.ttl.
    expect(await h.lookup('tok-1', T0 + 1)).toEqual({ cached: false, state: { revokedAt: T0 } });
    await h.store.close();
  });

  it('a lookup in flight across a disconnect and resubscription is not cached', async () => {
    const h = harness();
    await h.confirm();
    const first = h.store.getRevocation('tok-1', undefined, T0) as Promise<unknown>;
    const key = h.pendingKey() as string;
    // The subscriber drops (a revocation published now is lost to it), then reconnects and subscribes again.
    h.subscriber.emit('reconnecting');
    h.redis.set(key, JSON.stringify({ at: T0, exp: null }));
    h.subscriber.emit('ready');
    await h.confirm();
    expect(h.store.stats().nearCacheEnabled).toBe(true);
    h.answer(null);
    expect(await first).toBeUndefined();
    expect(await h.lookup('tok-1', T0 + 1)).toEqual({ cached: false, state: { revokedAt: T0 } });
    await h.store.close();
  });

  it('a lookup started once SUBSCRIBE is confirmed is cached and answered locally next time', async () => {
    const h = harness();
    await h.confirm();
    expect(await h.lookup('tok-1', T0)).toEqual({ cached: false, state: undefined });
    expect(await h.lookup('tok-1', T0 + 1)).toEqual({ cached: true, state: undefined });
    await h.store.close();
  });

  it('an invalidation during the read keeps its result out of the cache', async () => {
    const h = harness();
    await h.confirm();
    const first = h.store.getRevocation('tok-1', undefined, T0) as Promise<unknown>;
    const key = h.pendingKey() as string;
    h.redis.set(key, JSON.stringify({ at: T0, exp: null }));
    h.subscriber.emit('message', 'tg:{c}:inv', JSON.stringify({ o: 'other', n: 1, a: 0, t: 'tok-1' }));
    h.answer(null);
    expect(await first).toBeUndefined();
    expect(await h.lookup('tok-1', T0 + 1)).toEqual({ cached: false, state: { revokedAt: T0 } });
    await h.store.close();
  });

  it('regression: a revoke made while SUBSCRIBE is in flight no longer keeps the near-cache off until the next reconnect', async () => {
    const h = harness();
    await h.store.revoke('tok-9', { now: T0 });
    await h.confirm();
    expect(h.store.stats().nearCacheEnabled).toBe(true);
    await h.store.close();
  });
});
