// Regression (review of the Cluster subscriber fix): an ioredis Cluster forwards the messages of its old and its new
// subscriber connection while it moves between nodes, so one invalidation can reach a near-cache twice. It answered
// each copy, and the revoking instance, which waits for as many answers as Redis counted listeners, could take the
// second answer for another instance's and resolve `revoke` before that instance had dropped its cached lookup.
// Now each invalidation is acknowledged once (and the revoker's own echo counted once), however often it arrives.
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { Redis } from 'ioredis';
import { RedisStore } from '../../src/stores/redis.js';
import { deletePrefix, randomPrefix, redisClient, redisUp } from '../helpers/redis.js';

const T0 = Date.UTC(2026, 10, 25, 10, 0, 0);
/** The instance id of a revoker that this test plays by hand (16 hex digits, as a store's). */
const REVOKER = '0123456789abcdef';

describe.skipIf(!redisUp)('regression: a near-cache acknowledges one invalidation once', () => {
  const prefix = randomPrefix('ack-once');
  const connections: Redis[] = [];
  const connection = (): Redis => {
    const c = redisClient();
    connections.push(c);
    return c;
  };
  afterAll(async () => {
    await deletePrefix(connections[0] as Redis, prefix);
    for (const c of connections) c.disconnect();
  });

  it('answers an invalidation delivered twice with one acknowledgement', async () => {
    const client = connection();
    const store = new RedisStore({ client, prefix, durability: 'ignore', subscriber: connection() });
    await vi.waitFor(() => expect(store.stats().nearCacheEnabled).toBe(true), { timeout: 5000, interval: 2 });
    expect(await store.getRevocation('tok-1', undefined, T0)).toBeUndefined();
    const acks: string[] = [];
    const listener = connection();
    listener.on('message', (_channel: string, message: string) => acks.push(message));
    await listener.subscribe(`${prefix}{c}:ack:${REVOKER}`);
    const invalidation = (n: number, t: string) => JSON.stringify({ o: REVOKER, n, a: 1, t });
    // Twice, as two subscriber connections of one Cluster would hand it over; then another, to know all have arrived.
    await client.publish(`${prefix}{c}:inv`, invalidation(7, 'tok-1'));
    await client.publish(`${prefix}{c}:inv`, invalidation(7, 'tok-1'));
    await client.publish(`${prefix}{c}:inv`, invalidation(8, 'tok-2'));
    await vi.waitFor(() => expect(acks).toContain('8'), { timeout: 5000, interval: 2 });
    expect(acks).toEqual(['7', '8']);
    // The copy still invalidates: what tok-1 was cached as is read again.
    expect(store.getRevocation('tok-1', undefined, T0)).toBeInstanceOf(Promise);
    await store.close();
  });
});
