// Regression (issue 7 item 9): anyone who can reach Redis can PUBLISH on RedisStore's invalidation channel. A single
// `PUBLISH <prefix>{c}:inv null` threw inside the subscriber's 'message' handler (`null.t`), an uncaught exception
// that ended every instance at once. Any message that is not of the store's own shape must instead drop the whole
// near-cache (something may have been revoked that it cannot name) and be counted.
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Redis } from 'ioredis';
import { RedisStore } from '../../src/stores/redis.js';
import { deletePrefix, randomPrefix, redisClient, redisUp } from '../helpers/redis.js';

const T0 = Date.UTC(2026, 10, 25, 10, 0, 0);
const RUN = randomPrefix('near-cache-foreign');

/** What arrives on the channel from someone else: every one of these is not a message RedisStore sends. */
const FOREIGN: [string, string | Buffer][] = [
  ['null', 'null'],
  ['a number', '42'],
  ['a JSON string', '"tok-1"'],
  ['true', 'true'],
  ['an empty array', '[]'],
  ['an array of ids', '["tok-1"]'],
  ['an empty object', '{}'],
  ['invalid JSON', '{"t":'],
  ['an empty message', ''],
  ['a huge payload (1 MB of text)', 'x'.repeat(1_000_000)],
  ['a huge JSON object of our shape', JSON.stringify({ o: '0123456789abcdef', n: 1, a: 0, t: 'y'.repeat(100_000) })],
  ['a token id that is a number', JSON.stringify({ o: '0123456789abcdef', n: 1, a: 0, t: 5 })],
  ['a subject that is an object', JSON.stringify({ o: '0123456789abcdef', n: 1, a: 0, s: { toString: 'x' } })],
  ['a sender id of the wrong type', JSON.stringify({ o: 7, n: 1, a: 1, t: 'tok-1' })],
  ['a sender id that is not an instance id (it would name an ack channel)', JSON.stringify({ o: 'x}:inv', n: 1, a: 1, t: 'tok-1' })],
  ['a sequence number that is a string', JSON.stringify({ o: '0123456789abcdef', n: '1', a: 1, t: 'tok-1' })],
  ['an ack flag of 2', JSON.stringify({ o: '0123456789abcdef', n: 1, a: 2, t: 'tok-1' })],
  ['both a token and a subject', JSON.stringify({ o: '0123456789abcdef', n: 1, a: 0, t: 'tok-1', s: 'alice' })],
  ['an extra field', JSON.stringify({ o: '0123456789abcdef', n: 1, a: 0, t: 'tok-9', x: 1 })],
  ['a __proto__ key', '{"__proto__":{"t":"tok-9"},"o":"0123456789abcdef","n":1,"a":0}'],
  ['a Buffer of invalid UTF-8', Buffer.from([0xff, 0xfe, 0x00, 0x7b, 0xc3, 0x28])],
];

let client: Redis;
let publisher: Redis;
const subscribers: Redis[] = [];
let n = 0;
const uncaught: unknown[] = [];
const onUncaught = (e: unknown) => uncaught.push(e);

/** A near-cached store on a fresh prefix, its subscription live. */
async function nearCachedStore(): Promise<{ store: RedisStore; prefix: string }> {
  const prefix = `${RUN}${n++}:`;
  const sub = client.duplicate();
  sub.on('error', () => undefined);
  subscribers.push(sub);
  const store = new RedisStore({ client, prefix, subscriber: sub, commandTimeout: 5000, confirmTimeout: 5000 });
  await vi.waitFor(() => expect(store.stats().nearCacheEnabled).toBe(true), { timeout: 5000, interval: 2 });
  return { store, prefix };
}

describe.skipIf(!redisUp)('regression: the near-cache survives any message on its channel', () => {
  beforeAll(() => {
    client = redisClient();
    publisher = redisClient();
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onUncaught);
  });
  afterEach(() => {
    expect(uncaught).toEqual([]);
  });
  afterAll(async () => {
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onUncaught);
    await deletePrefix(client, RUN);
    for (const s of subscribers) s.disconnect();
    publisher.disconnect();
    client.disconnect();
  });

  it.each(FOREIGN)('%s: the process survives, the near-cache is dropped and the message is counted', async (_what, payload) => {
    const { store, prefix } = await nearCachedStore();
    // Cache "not revoked" for tok-1 and alice.
    expect(await store.getRevocation('tok-1', 'alice', T0)).toBeUndefined();
    expect(store.getRevocation('tok-1', 'alice', T0)).toBeUndefined();
    // A revocation written behind the cache's back (as a lost invalidation would leave it): the cache cannot know.
    await client.set(`${prefix}{t:tok-1}:rev`, JSON.stringify({ at: T0, exp: null }));
    expect(store.getRevocation('tok-1', 'alice', T0)).toBeUndefined();
    const before = store.stats();

    await publisher.publish(`${prefix}{c}:inv`, payload);

    await vi.waitFor(() => expect(store.stats().foreignMessages).toBe(before.foreignMessages + 1), { timeout: 5000, interval: 2 });
    // Dropped as a whole: the next lookup goes to Redis and sees the revocation.
    const next = store.getRevocation('tok-1', 'alice', T0);
    expect(next).toBeInstanceOf(Promise);
    expect(await next).toEqual({ revokedAt: T0 });
    expect(store.stats()).toMatchObject({ nearCacheEnabled: true, invalidations: before.invalidations + 1, nearCacheMisses: before.nearCacheMisses + 1 });
    await store.close();
  });

  it('after a burst of foreign messages the store still caches, and still confirms and hears real revocations', async () => {
    const { store: a, prefix } = await nearCachedStore();
    const sub = client.duplicate();
    sub.on('error', () => undefined);
    subscribers.push(sub);
    const b = new RedisStore({ client, prefix, subscriber: sub, commandTimeout: 5000, confirmTimeout: 5000 });
    await vi.waitFor(() => expect(b.stats().nearCacheEnabled).toBe(true), { timeout: 5000, interval: 2 });
    await Promise.all(FOREIGN.map(([, payload]) => publisher.publish(`${prefix}{c}:inv`, payload)));
    await vi.waitFor(() => expect(a.stats().foreignMessages).toBe(FOREIGN.length), { timeout: 5000, interval: 2 });
    await vi.waitFor(() => expect(b.stats().foreignMessages).toBe(FOREIGN.length), { timeout: 5000, interval: 2 });

    expect(await b.getRevocation('tok-2', undefined, T0)).toBeUndefined();
    expect(b.getRevocation('tok-2', undefined, T0)).toBeUndefined(); // cached again
    // b must acknowledge for this to resolve: its handler is alive.
    await a.revoke('tok-2', { now: T0 });
    expect(await b.getRevocation('tok-2', undefined, T0)).toEqual({ revokedAt: T0 });
    await Promise.all([a.close(), b.close()]);
  });

  it('a revocation of an id too long for a message is sent as "drop everything", confirmed, and not counted as foreign', async () => {
    const { store: a, prefix } = await nearCachedStore();
    const sub = client.duplicate();
    sub.on('error', () => undefined);
    subscribers.push(sub);
    const b = new RedisStore({ client, prefix, subscriber: sub, commandTimeout: 5000, confirmTimeout: 5000 });
    await vi.waitFor(() => expect(b.stats().nearCacheEnabled).toBe(true), { timeout: 5000, interval: 2 });
    const longId = 'j'.repeat(70_000);
    expect(await b.getRevocation(longId, 'alice', T0)).toBeUndefined();
    expect(b.getRevocation(longId, 'alice', T0)).toBeUndefined(); // cached
    await a.revoke(longId, { now: T0 }); // resolves only once b has confirmed
    expect(await b.getRevocation(longId, 'alice', T0)).toEqual({ revokedAt: T0 });
    expect(b.stats().foreignMessages).toBe(0);
    await Promise.all([a.close(), b.close()]);
  });

  it('garbage on an instance’s acknowledgement channel is counted and changes nothing', async () => {
    const { store, prefix } = await nearCachedStore();
    const [ackChannel] = (await client.pubsub('CHANNELS', `${prefix}{c}:ack:*`)) as string[];
    expect(ackChannel).toBeDefined();
    for (const payload of ['null', '-1', '1e999', 'x'.repeat(100_000), Buffer.from([0xff])]) await publisher.publish(ackChannel as string, payload);
    await vi.waitFor(() => expect(store.stats().foreignMessages).toBe(5), { timeout: 5000, interval: 2 });
    await store.revoke('tok-3', { now: T0 });
    expect(await store.getRevocation('tok-3', undefined, T0)).toEqual({ revokedAt: T0 });
    await store.close();
  });
});
