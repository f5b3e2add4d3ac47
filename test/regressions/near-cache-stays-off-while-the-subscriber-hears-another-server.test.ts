// Regression (security review, stores): a RedisStore whose `subscriber` is connected to another Redis than its
// `client` (a second URL variable, a replica, a sidecar) turned its near-cache on as soon as SUBSCRIBE succeeded
// there, and never heard an invalidation. `revoke` waited only for the listeners PUBSUB NUMSUB counts on the command
// server (none), so it resolved at once, and every other instance kept answering "not revoked" from its near-cache
// for up to nearCache.ttl. Now the cache turns on only once the subscriber hears a probe published through the
// client, and `revoke` waits for its own subscriber's echo, so it rejects instead of resolving.
// On the shared Redis plus a second redis-server this test starts and kills.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Redis } from 'ioredis';
import { StoreError } from '../../src/index.js';
import { RedisStore } from '../../src/stores/redis.js';
import { deletePrefix, freePort, randomPrefix, redisBinaries, redisClient, redisUp, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { Redis as IORedis } from 'ioredis';

const T0 = Date.UTC(2026, 10, 25, 10, 0, 0);
const HOUR = 3_600_000;

describe.skipIf(!redisUp || !redisBinaries)('regression: a subscriber on another Redis never turns the near-cache on', () => {
  const prefix = randomPrefix('deaf-subscriber');
  const channel = `${prefix}{c}:inv`;
  let client: Redis;
  let other: RedisServer;
  const elsewhere: Redis[] = [];
  const stores: RedisStore[] = [];
  const warnings: string[] = [];
  const onWarning = (w: Error & { code?: string }) => warnings.push(w.code ?? '');

  /** A connection to the second server: the misconfigured subscriber. */
  const toOther = (): Redis => {
    const c = new IORedis(other.port, '127.0.0.1');
    c.on('error', () => undefined);
    elsewhere.push(c);
    return c;
  };

  beforeAll(async () => {
    process.on('warning', onWarning);
    client = redisClient();
    other = await startRedisServer(await freePort());
  });
  afterAll(async () => {
    process.off('warning', onWarning);
    for (const s of stores) await s.close();
    for (const c of elsewhere) c.disconnect();
    await other?.kill();
    await deletePrefix(client, prefix);
    client.disconnect();
  });

  it('serves no revoked token from the near-cache, and revoke rejects instead of resolving', async () => {
    const options = { client, prefix, durability: 'ignore' as const, confirmTimeout: 300, nearCache: { max: 100, ttl: 30_000 } };
    const a = new RedisStore({ ...options, subscriber: toOther() });
    const b = new RedisStore({ ...options, subscriber: toOther() });
    stores.push(a, b);
    // Both subscriptions are live, on the wrong server.
    const probe = elsewhere[0] as Redis;
    await vi.waitFor(async () => expect((await probe.pubsub('NUMSUB', channel))[1]).toBe(2), { timeout: 5000, interval: 5 });

    // B looks the token up twice: a near-cache that is on would answer the second time locally.
    expect(await b.getRevocation('tok-1', 'alice', T0)).toBeUndefined();
    expect(await b.getRevocation('tok-1', 'alice', T0)).toBeUndefined();

    const outcome = await a.revoke('tok-1', { now: T0, expiresAt: T0 + HOUR }).then(
      () => 'resolved',
      (e: unknown) => e,
    );
    expect(await b.getRevocation('tok-1', 'alice', T0)).toEqual({ revokedAt: T0 });
    expect(outcome).toBeInstanceOf(StoreError);
    expect((outcome as StoreError).message).toMatch(/own subscriber did not hear/);
    expect(b.stats().nearCacheEnabled).toBe(false);
    expect(a.stats().nearCacheEnabled).toBe(false);
    // The misconfiguration is visible.
    await vi.waitFor(() => expect(warnings).toContain('TOKEN_GUARD_REDIS_SUBSCRIBER'), { timeout: 5000, interval: 5 });
  });

  it('a subscriber on the same Redis as the client still turns the cache on, and revoke resolves once confirmed', async () => {
    const sub = client.duplicate();
    sub.on('error', () => undefined);
    elsewhere.push(sub);
    const c = new RedisStore({ client, prefix, durability: 'ignore', confirmTimeout: 5000, subscriber: sub });
    stores.push(c);
    await vi.waitFor(() => expect(c.stats().nearCacheEnabled).toBe(true), { timeout: 5000, interval: 2 });
    await c.revoke('tok-3', { now: T0, expiresAt: T0 + HOUR });
    expect(await c.getRevocation('tok-3', undefined, T0)).toEqual({ revokedAt: T0 });
  });
});
