// Regression: RedisStore.close() during a revoke. A revoke waiting for the other instances' confirmations kept waiting
// after close() had resolved, until confirmTimeout, with its timer keeping the process alive; and a revoke made after
// close() was stored and published unconfirmed and resolved as if confirmed. Now close() ends every such wait at once
// with a StoreError that says the revocation is stored, and a revoke on a closed store rejects at once, storing
// nothing. Real Redis; the wait is held open by a connection subscribed to the invalidation channel that never answers
// (as docs/redis.md warns, it is counted and waited for). Timers are fake from the revoke on: what settles, settles
// without any timer firing, and what is left is counted.
// Also: a revoke still waiting for its own SUBSCRIBE, and a liveness renewal waiting for Redis, each kept its
// commandTimeout timer running after close() had resolved (raced outside the bounded call, only their wait ended):
// a process that closes its store on shutdown was held open until it fired. Now that timer ends with close() too.
import { once } from 'node:events';
import type { Redis, RedisOptions } from 'ioredis';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { StoreError } from '../../src/leaf/errors.js';
import { RedisStore } from '../../src/stores/redis.js';
import { redisClient, redisUp, useSharedRedis } from '../helpers/redis.js';
import { afterRejectionsAreReported, collectUnhandledRejections } from '../helpers/unhandled.js';

const T0 = Date.UTC(2026, 10, 25, 10, 0, 0);
/** Far longer than any test: a wait that only this timeout could end never ends here. */
const CONFIRM_TIMEOUT = 600_000;
/** A commandTimeout far longer than any timer ioredis sets itself (its reconnect and disconnect timers). */
const LONG_COMMAND_TIMEOUT = 60_000;
/** The near-cache's liveness heartbeat in the test that catches one in flight. */
const HEARTBEAT = 1000;

type Revoke = (store: RedisStore, id: string) => Promise<void>;
const METHODS: [string, Revoke, (prefix: string, id: string) => string][] = [
  ['revoke', (store, id) => store.revoke(id, { now: T0 }), (prefix, id) => `${prefix}{t:${id}}:rev`],
  ['revokeSubject', (store, id) => store.revokeSubject(id, { now: T0, before: T0 }), (prefix, id) => `${prefix}{s:${id}}:rev`],
];

/** Where a promise stands, read without waiting for it. */
function track(promise: Promise<void>): { settled: () => boolean; outcome: Promise<unknown> } {
  let settled = false;
  const outcome = promise.then(
    () => {
      settled = true;
      return 'resolved';
    },
    (err: unknown) => {
      settled = true;
      return err;
    },
  );
  return { settled: () => settled, outcome };
}

describe.skipIf(!redisUp)('RedisStore.close() during a revoke', () => {
  const redis = useSharedRedis('redis-close-pending');
  const unhandled = collectUnhandledRejections();
  let tests = 0;
  /** Each test its own channel (under the suite's prefix, so its keys are deleted with the suite's): no listener of one is counted in another. */
  const nextPrefix = (): string => `${redis.prefix}${++tests}:`;
  const connections: Redis[] = [];
  const connection = (options?: RedisOptions): Redis => {
    const c = redisClient(options);
    connections.push(c);
    return c;
  };

  afterEach(() => {
    vi.useRealTimers();
  });
  afterAll(() => {
    for (const c of connections) c.disconnect();
  });

  /** A store subscribed and proven live, its scripts loaded, and another connection counted on its channel that never confirms. */
  async function setUp(): Promise<{ store: RedisStore; client: Redis; silent: Redis; prefix: string }> {
    const prefix = nextPrefix();
    const client = connection();
    const store = new RedisStore({ client, subscriber: connection(), prefix, durability: 'ignore', confirmTimeout: CONFIRM_TIMEOUT });
    await vi.waitFor(() => expect(store.stats().nearCacheEnabled).toBe(true), { timeout: 5000, interval: 5 });
    // Confirmed by the store's own subscriber alone; loads both scripts, so each revoke below is one command.
    await store.revoke('warm-up', { now: T0 });
    await store.revokeSubject('warm-up', { now: T0, before: T0 });
    const silent = connection();
    await silent.subscribe(`${prefix}{c}:inv`);
    expect((await redis.client.pubsub('NUMSUB', `${prefix}{c}:inv`))[1]).toBe(2);
    // Native timers made before this are cleared by the fake clearTimeout too (the store's heartbeat, on close).
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'], shouldClearNativeTimers: true });
    return { store, client, silent, prefix };
  }

  it.each(METHODS)('%s waiting for confirmations rejects with StoreError as soon as close() is called, stored, and leaves no timer', async (_, revoke, key) => {
    const { store, client, silent, prefix } = await setUp();
    const heard = once(silent, 'message');
    const pending = track(revoke(store, 'tok-1'));
    await heard;
    // Replies on one connection come in order: once this one is in, the write's reply was handled and the revoke waits.
    await client.ping();
    await afterRejectionsAreReported();
    expect(pending.settled()).toBe(false);
    await store.close();
    expect(pending.settled()).toBe(true);
    const err = await pending.outcome;
    expect(err).toBeInstanceOf(StoreError);
    expect(err).toMatchObject({
      code: 'store.unavailable',
      status: 503,
      message: expect.stringMatching(/^revocation stored, but the RedisStore was closed before 1 of 2 instance\(s\) confirmed it/),
    });
    expect(await redis.client.get(key(prefix, 'tok-1'))).not.toBeNull();
    expect(vi.getTimerCount()).toBe(0);
    await afterRejectionsAreReported();
    expect(unhandled).toEqual([]);
  });

  it.each(METHODS)('%s whose write is in flight when close() is called rejects as soon as the write answers, stored, and leaves no timer', async (_, revoke, key) => {
    const { store, client, silent, prefix } = await setUp();
    const heard = once(silent, 'message');
    // The write reaches Redis; its reply waits in the socket until the test reads it.
    client.stream.pause();
    const pending = track(revoke(store, 'tok-2'));
    await heard;
    await store.close();
    expect(pending.settled()).toBe(false);
    client.stream.resume();
    await client.ping();
    await afterRejectionsAreReported();
    expect(pending.settled()).toBe(true);
    expect(await pending.outcome).toMatchObject({
      name: 'StoreError',
      code: 'store.unavailable',
      message: expect.stringMatching(/^revocation stored, but the RedisStore was closed/),
    });
    expect(await redis.client.get(key(prefix, 'tok-2'))).not.toBeNull();
    expect(vi.getTimerCount()).toBe(0);
    await afterRejectionsAreReported();
    expect(unhandled).toEqual([]);
  });

  it.each(METHODS)('%s after close() rejects at once with StoreError and stores nothing', async (_, revoke, key) => {
    const { store, prefix } = await setUp();
    await store.close();
    const after = track(revoke(store, 'tok-3'));
    await afterRejectionsAreReported();
    expect(after.settled()).toBe(true);
    const err = await after.outcome;
    expect(err).toBeInstanceOf(StoreError);
    expect(err).toMatchObject({ code: 'store.unavailable', message: 'RedisStore is closed: the revocation was not stored' });
    // A revocation that would store nothing (its expiry long past) is refused the same way.
    await expect(store.revoke('tok-3', { now: T0, expiresAt: T0 - 86_400_000 })).rejects.toThrow('RedisStore is closed');
    expect(await redis.client.get(key(prefix, 'tok-3'))).toBeNull();
    expect(vi.getTimerCount()).toBe(0);
    expect(unhandled).toEqual([]);
  });

  it('without a subscriber too, a revoke after close() rejects at once and stores nothing', async () => {
    const prefix = nextPrefix();
    const store = new RedisStore({ client: connection(), prefix, durability: 'ignore' });
    await store.close();
    const after = track(store.revoke('tok-5', { now: T0 }));
    await afterRejectionsAreReported();
    expect(after.settled()).toBe(true);
    expect(await after.outcome).toMatchObject({ name: 'StoreError', code: 'store.unavailable', message: 'RedisStore is closed: the revocation was not stored' });
    expect(await redis.client.get(`${prefix}{t:tok-5}:rev`)).toBeNull();
  });

  it('a revoke still waiting for its subscription when close() is called rejects at once and stores nothing', async () => {
    const prefix = nextPrefix();
    const client = connection();
    const subscriber = connection();
    // Held before the store subscribes: its SUBSCRIBE goes out, its reply waits in the socket.
    await subscriber.ping();
    subscriber.stream.pause();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const store = new RedisStore({ client, subscriber, prefix, durability: 'ignore', confirmTimeout: CONFIRM_TIMEOUT });
    const pending = track(store.revoke('tok-4', { now: T0 }));
    await afterRejectionsAreReported();
    expect(pending.settled()).toBe(false);
    const closing = store.close();
    await afterRejectionsAreReported();
    expect(pending.settled()).toBe(true);
    expect(await pending.outcome).toMatchObject({ name: 'StoreError', message: 'RedisStore is closed: the revocation was not stored' });
    subscriber.stream.resume();
    await closing;
    expect(await client.get(`${prefix}{t:tok-4}:rev`)).toBeNull();
    expect(vi.getTimerCount()).toBe(0);
    expect(unhandled).toEqual([]);
  });

  it('regression: a revoke still waiting for its own SUBSCRIBE leaves no timer once close() has resolved', async () => {
    const prefix = nextPrefix();
    const client = connection();
    // `enableOfflineQueue: false`, as docs/redis.md suggests for long outages: while the connection is down a command
    // fails at once instead of waiting, so close()'s UNSUBSCRIBE does not wait behind the SUBSCRIBE.
    const subscriber = connection({ enableOfflineQueue: false });
    await once(subscriber, 'ready');
    // The SUBSCRIBE goes out, its reply waits in the socket.
    subscriber.stream.pause();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    // A long commandTimeout, as an app may choose: the timer left behind held the process that long.
    const store = new RedisStore({ client, subscriber, prefix, durability: 'ignore', commandTimeout: LONG_COMMAND_TIMEOUT, confirmTimeout: CONFIRM_TIMEOUT });
    const pending = track(store.revoke('tok-6', { now: T0 }));
    await afterRejectionsAreReported();
    expect(pending.settled()).toBe(false);
    // The connection drops with the SUBSCRIBE unanswered: ioredis keeps it to send again once reconnected (its
    // reconnect timer is fake: never), so the revoke goes on waiting for it.
    const reconnecting = once(subscriber, 'reconnecting');
    subscriber.stream.destroy();
    await reconnecting;
    await afterRejectionsAreReported();
    expect(pending.settled()).toBe(false);
    await store.close();
    expect(pending.settled()).toBe(true);
    expect(await pending.outcome).toMatchObject({ name: 'StoreError', code: 'store.unavailable', message: 'RedisStore is closed: the revocation was not stored' });
    // The app lets go of its connection on shutdown, and ioredis's own timers run out (all far shorter than
    // commandTimeout): nothing of the store's may be left to keep the process alive.
    subscriber.disconnect();
    vi.advanceTimersByTime(LONG_COMMAND_TIMEOUT - 1);
    expect(vi.getTimerCount()).toBe(0);
    expect(await client.get(`${prefix}{t:tok-6}:rev`)).toBeNull();
    await afterRejectionsAreReported();
    expect(unhandled).toEqual([]);
  });

  it('regression: close() during a liveness renewal whose PUBLISH Redis has not answered leaves no timer', async () => {
    const prefix = nextPrefix();
    const client = connection();
    const subscriber = connection();
    await Promise.all([client.ping(), subscriber.ping()]);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const store = new RedisStore({ client, subscriber, prefix, durability: 'ignore', nearCache: { heartbeat: HEARTBEAT }, confirmTimeout: CONFIRM_TIMEOUT });
    // Proven without any timer firing (Redis answers; setImmediate and the wall clock are real).
    const deadline = Date.now() + 20_000;
    while (!store.stats().nearCacheEnabled && Date.now() < deadline) await afterRejectionsAreReported();
    expect(store.stats().nearCacheEnabled).toBe(true);
    // The next renewal's PUBLISH goes out through the client; its reply waits in the socket.
    client.stream.pause();
    vi.advanceTimersByTime(HEARTBEAT);
    await afterRejectionsAreReported();
    // The renewal's PUBLISH bound (commandTimeout) and its own deadline (confirmTimeout).
    expect(vi.getTimerCount()).toBe(2);
    // Resolves at once: the subscriber answers its UNSUBSCRIBE.
    await store.close();
    expect(vi.getTimerCount()).toBe(0);
    client.stream.resume();
    await client.ping();
    expect(store.stats().nearCacheEnabled).toBe(false);
    await afterRejectionsAreReported();
    expect(unhandled).toEqual([]);
  });
});
