// RedisStore's near-cache against fake ioredis clients, so that every interleaving of a read, SUBSCRIBE, a disconnect
// and a revocation is chosen by the test instead of by timing, and the liveness heartbeat runs on fake timers. No
// Redis needed.
import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RedisStore, type RedisStoreOptions, StoreArgumentError } from '../../src/stores/redis.js';

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

/** Lets every settled promise's callbacks run (under fake timers too). */
const settle = () => (vi.isFakeTimers() ? vi.advanceTimersByTimeAsync(0) : new Promise((r) => setTimeout(r, 0)));

/**
 * A command client whose GETs wait until the test answers them (`answer`), with what `redis` holds at that moment
 * unless told otherwise, and a subscriber whose SUBSCRIBE calls wait until the test confirms them (`confirm`).
 * `link` is what the server does with the subscriber: `deaf` stops delivering to it (a connection that died silently),
 * `counted` is what PUBSUB NUMSUB answers for it (0: on a replica), `subscribedOnly` delivers only once SUBSCRIBE is done.
 */
function harness(options: Partial<RedisStoreOptions> = {}) {
  const redis = new Map<string, string>();
  const link = { deaf: false, counted: 1, subscribedOnly: false, subscribed: false };
  /** Everything published through the client, in order. */
  const published: { channel: string; message: string }[] = [];
  const gets: { key: string; reply: Deferred<string | null> }[] = [];
  const client = {
    defineCommand(name: string) {
      // The revocation scripts: store the entry as the real script would, only this store listening (NUMSUB 1, its own).
      (this as Record<string, unknown>)[name] = (key: string, _now: number, at: number, exp: number | '', channel: string, message: string) => {
        redis.set(key, JSON.stringify({ at, exp: exp === '' ? null : exp }));
        // Published in the same script, heard by this store's own subscriber.
        void client.publish(channel, message);
        return Promise.resolve([1, 1]);
      };
    },
    get(key: string) {
      const reply = deferred<string | null>();
      gets.push({ key, reply });
      return reply.promise;
    },
    // Redis delivers what the client publishes to the subscriber (the store's probe must be heard to turn the cache on).
    publish: (channel: string, message: string) => {
      published.push({ channel, message });
      if (!link.deaf && (link.subscribed || !link.subscribedOnly)) queueMicrotask(() => subscriber.emit('message', channel, message));
      return Promise.resolve(1);
    },
    // Whether the client's server counts the subscriber (a store turns its cache on only when it does).
    pubsub: (_sub: 'NUMSUB', ...channels: string[]) => Promise.resolve(channels.flatMap((c) => [c, link.counted])),
  };
  const subscribes: Deferred<void>[] = [];
  const subscriber = Object.assign(new EventEmitter(), {
    subscribe: () => {
      const d = deferred<void>();
      subscribes.push(d);
      return d.promise.then(() => {
        link.subscribed = true;
      });
    },
    unsubscribe: async () => undefined,
  });
  const store = new RedisStore({ ...options, client: client as never, subscriber: subscriber as never });
  return {
    redis,
    store,
    subscriber,
    link,
    published,
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

type Harness = ReturnType<typeof harness>;

/** Another instance revokes tok-1 at T0 (its Redis entry under `key`), publishing nothing this store hears. */
function revokeElsewhere(h: Harness, key: string): void {
  h.redis.set(key, JSON.stringify({ at: T0, exp: null }));
}

/**
 * Answers the lookup of tok-1 in flight with the "none" Redis gave before tok-1 was revoked: it resolves to none, and
 * is not cached: the next request goes to Redis and sees the revocation, not a cached "none" for nearCache.ttl.
 */
async function expectStaleNoneNotCached(h: Harness, inFlight: Promise<unknown>): Promise<void> {
  h.answer(null);
  expect(await inFlight).toBeUndefined();
  expect(await h.lookup('tok-1', T0 + 1)).toEqual({ cached: false, state: { revokedAt: T0 } });
}

describe('RedisStore near-cache: only reads that started on a live subscription are cached', () => {
  it('regression (M5): a lookup started before SUBSCRIBE was confirmed is not cached', async () => {
    const h = harness();
    // A request reads tok-1's revocation while SUBSCRIBE is in flight; Redis answers "none" (not delivered yet).
    const first = h.store.getRevocation('tok-1', undefined, T0) as Promise<unknown>;
    const key = h.pendingKey() as string;
    // Another instance revokes tok-1 and publishes: this instance is not subscribed yet and never hears it.
    revokeElsewhere(h, key);
    await h.confirm();
    expect(h.store.stats().nearCacheEnabled).toBe(true);
    // The old "none", read before the revocation, lands only now.
    await expectStaleNoneNotCached(h, first);
    await h.store.close();
  });

  it('a lookup in flight across a disconnect and resubscription is not cached', async () => {
    const h = harness();
    await h.confirm();
    const first = h.store.getRevocation('tok-1', undefined, T0) as Promise<unknown>;
    const key = h.pendingKey() as string;
    // The subscriber drops (a revocation published now is lost to it), then reconnects and subscribes again.
    h.subscriber.emit('reconnecting');
    revokeElsewhere(h, key);
    h.subscriber.emit('ready');
    await h.confirm();
    expect(h.store.stats().nearCacheEnabled).toBe(true);
    await expectStaleNoneNotCached(h, first);
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
    revokeElsewhere(h, key);
    h.subscriber.emit('message', 'tg:{c}:inv', JSON.stringify({ o: 'other', n: 1, a: 0, t: 'tok-1' }));
    await expectStaleNoneNotCached(h, first);
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

describe('RedisStore near-cache: trusted only while its subscriber is proven to hear the client and be counted', () => {
  // Fake timers (performance.now included): the heartbeat and its deadline run on the test's clock.
  afterEach(() => {
    vi.useRealTimers();
  });
  const HEARTBEAT = 1000;
  const CONFIRM = 400;
  const options = { nearCache: { heartbeat: HEARTBEAT }, confirmTimeout: CONFIRM };

  it('regression: a subscriber that hears the probe but is not counted by the server (a replica) keeps the cache off', async () => {
    vi.useFakeTimers();
    const h = harness(options);
    h.link.counted = 0;
    await h.confirm();
    expect(h.store.stats().nearCacheEnabled).toBe(false);
    expect(await h.lookup('tok-1', T0)).toEqual({ cached: false, state: undefined });
    expect(await h.lookup('tok-1', T0)).toEqual({ cached: false, state: undefined });
    // Tried again later, and on once the server counts it.
    h.link.counted = 1;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(h.store.stats().nearCacheEnabled).toBe(true);
    await h.store.close();
  });

  it('renews its proof with a probe on its own ack channel, so the cache stays on while it is heard and counted', async () => {
    vi.useFakeTimers();
    const h = harness(options);
    await h.confirm();
    expect(h.store.stats().nearCacheEnabled).toBe(true);
    const first = h.published.length;
    await vi.advanceTimersByTimeAsync(10 * HEARTBEAT);
    expect(h.store.stats().nearCacheEnabled).toBe(true);
    const beats = h.published.slice(first);
    expect(beats.length).toBeGreaterThanOrEqual(9);
    // One message per instance and heartbeat, heard by that instance alone: never on the shared invalidation channel.
    for (const b of beats) expect(b).toEqual({ channel: expect.stringMatching(/^tg:\{c\}:ack:[0-9a-f]{16}$/), message: expect.stringMatching(/^p:\d+$/) });
    // A heartbeat is not an acknowledgement, nor a foreign message.
    expect(h.store.stats()).toMatchObject({ foreignMessages: 0, invalidations: 0 });
    await h.store.close();
  });

  it('regression: a heartbeat not heard within confirmTimeout (a connection that died silently) turns the cache off and forgets it', async () => {
    vi.useFakeTimers();
    const h = harness(options);
    await h.confirm();
    expect(await h.lookup('tok-1', T0)).toEqual({ cached: false, state: undefined });
    expect(await h.lookup('tok-1', T0)).toEqual({ cached: true, state: undefined });
    // Revoked meanwhile by another instance, whose invalidation this subscriber never hears.
    h.link.deaf = true;
    revokeElsewhere(h, 'tg:{t:tok-1}:rev');
    await vi.advanceTimersByTimeAsync(HEARTBEAT + CONFIRM);
    expect(h.store.stats().nearCacheEnabled).toBe(false);
    expect(await h.lookup('tok-1', T0)).toEqual({ cached: false, state: { revokedAt: T0 } });
    expect(await h.lookup('tok-1', T0)).toEqual({ cached: false, state: { revokedAt: T0 } });
    await h.store.close();
  });

  it('regression: a heartbeat that finds the subscriber no longer counted turns the cache off', async () => {
    vi.useFakeTimers();
    const h = harness(options);
    await h.confirm();
    expect(await h.lookup('tok-1', T0)).toEqual({ cached: false, state: undefined });
    // Still hearing (through replication, say), but the server that revocations count on no longer counts it.
    h.link.counted = 0;
    await vi.advanceTimersByTimeAsync(HEARTBEAT + CONFIRM);
    expect(h.store.stats().nearCacheEnabled).toBe(false);
    expect(await h.lookup('tok-1', T0)).toEqual({ cached: false, state: undefined });
    await h.store.close();
  });

  it('regression: trust ends at the last proof + heartbeat + confirmTimeout even when no timer runs to end it', async () => {
    // Only the clock is fake: no timer fires, as in an event loop stalled past the heartbeat.
    vi.useFakeTimers({ toFake: ['performance', 'Date'] });
    const h = harness({ ...options, nearCache: { heartbeat: 600_000 } });
    await h.confirm();
    expect(await h.lookup('tok-1', T0)).toEqual({ cached: false, state: undefined });
    expect(await h.lookup('tok-1', T0)).toEqual({ cached: true, state: undefined });
    vi.advanceTimersByTime(600_000 + CONFIRM);
    expect(h.store.stats().nearCacheEnabled).toBe(false);
    expect(await h.lookup('tok-1', T0)).toEqual({ cached: false, state: undefined });
    // Nor is what such a read finds kept.
    expect(await h.lookup('tok-1', T0)).toEqual({ cached: false, state: undefined });
    await h.store.close();
  });

  it('close() leaves no heartbeat or probe timer behind', async () => {
    vi.useFakeTimers();
    const h = harness(options);
    await h.confirm();
    expect(h.store.stats().nearCacheEnabled).toBe(true);
    expect(vi.getTimerCount()).toBeGreaterThan(0);
    await h.store.close();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a revoke made while SUBSCRIBE is in flight waits for it, so its own subscriber hears the invalidation', async () => {
    const h = harness({ confirmTimeout: 200 });
    h.link.subscribedOnly = true;
    setTimeout(() => void h.confirm(), 20);
    await h.store.revoke('tok-1', { now: T0 });
    await h.store.close();
  });
});

describe('RedisStore nearCache.heartbeat', () => {
  const client = { defineCommand() {} } as unknown as RedisStoreOptions['client'];
  const subscriber = { subscribe: () => new Promise(() => {}), on() {}, off() {} } as unknown as RedisStoreOptions['subscriber'];

  it.each([[0], [-1], [Number.NaN], [Number.POSITIVE_INFINITY], [2 ** 31], ['1000']])('refuses heartbeat %o at construction, naming the option', (heartbeat) => {
    const make = () => new RedisStore({ client, subscriber, durability: 'ignore', nearCache: { heartbeat: heartbeat as number } });
    expect(make).toThrow(StoreArgumentError);
    expect(make).toThrow(/^RedisStore: nearCache\.heartbeat must be a number of milliseconds from 1 to 2147483647/);
  });

  it('accepts any delay setTimeout honours', () => {
    expect(() => new RedisStore({ client, subscriber, durability: 'ignore', nearCache: { heartbeat: 2 ** 31 - 1 } })).not.toThrow();
    expect(() => new RedisStore({ client, subscriber, durability: 'ignore', nearCache: { heartbeat: 1 } })).not.toThrow();
  });
});
