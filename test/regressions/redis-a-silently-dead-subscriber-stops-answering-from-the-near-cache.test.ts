// Regression (review of the Redis near-cache): a subscriber whose connection died silently (half-open TCP: Redis
// dropped it, a NAT or load balancer forgot it, and no FIN ever reached the app) kept its near-cache on. Redis no
// longer counted it in PUBSUB NUMSUB, so revocations elsewhere resolved without waiting for it, and it answered "not
// revoked" from its cache, re-caching every lookup, until TCP keepalive noticed minutes later. Now an instance
// re-proves its subscriber every `nearCache.heartbeat` ms (a probe it must hear, and NUMSUB must count it), and trusts
// its cache only until the last proof + heartbeat + confirmTimeout: past that it reads Redis.
// On the shared Redis, with the subscriber of one instance behind a TCP proxy that cuts it silently.
import { afterAll, describe, expect, it, vi } from 'vitest';
import { Redis } from 'ioredis';
import { RedisStore } from '../../src/stores/redis.js';
import { deletePrefix, randomPrefix, REDIS_URL, redisClient, redisUp } from '../helpers/redis.js';
import { type RedisProxy, redisProxy } from '../stores/redis-proxy.js';

const T0 = Date.UTC(2026, 10, 25, 10, 0, 0);
const HOUR = 3_600_000;

describe.skipIf(!redisUp)('regression: a subscriber that died silently stops its near-cache within heartbeat + confirmTimeout', () => {
  const prefix = randomPrefix('half-open');
  const channel = `${prefix}{c}:inv`;
  const admin = redisClient();
  const connections: Redis[] = [admin];
  const stores: RedisStore[] = [];
  const warnings: string[] = [];
  const onWarning = (w: Error & { code?: string }) => warnings.push(w.code ?? '');
  let proxy: RedisProxy | undefined;
  const connection = (): Redis => {
    const c = redisClient();
    connections.push(c);
    return c;
  };

  afterAll(async () => {
    process.off('warning', onWarning);
    for (const s of stores) await s.close();
    await deletePrefix(admin, prefix);
    for (const c of connections) c.disconnect();
    await proxy?.close();
  });

  it('serves no revoked token from the near-cache once its subscriber is gone, and keeps reading Redis', async () => {
    process.on('warning', onWarning);
    proxy = await redisProxy(REDIS_URL);
    const behindProxy = new Redis(proxy.port, '127.0.0.1');
    behindProxy.on('error', () => undefined);
    connections.push(behindProxy);
    // A long ttl: only the heartbeat can end B's trust in what it cached.
    const nearCache = { max: 100, ttl: 60_000, heartbeat: 100 };
    const a = new RedisStore({ client: connection(), subscriber: connection(), prefix, durability: 'ignore', nearCache, confirmTimeout: 300 });
    const b = new RedisStore({ client: connection(), subscriber: behindProxy, prefix, durability: 'ignore', nearCache, confirmTimeout: 300 });
    stores.push(a, b);
    await vi.waitFor(() => expect(a.stats().nearCacheEnabled && b.stats().nearCacheEnabled).toBe(true), { timeout: 5000, interval: 5 });
    // B caches "not revoked" for the token and its subject.
    expect(await b.getRevocation('tok-1', 'alice', T0)).toBeUndefined();
    expect(b.getRevocation('tok-1', 'alice', T0)).toBeUndefined();

    // B's subscriber connection dies on Redis's side; B's socket hears nothing of it.
    proxy.cutSilently();
    await vi.waitFor(async () => expect((await admin.pubsub('NUMSUB', channel))[1]).toBe(1), { timeout: 5000, interval: 5 });
    // Redis counts A alone, so the revocation resolves without B.
    await a.revoke('tok-1', { now: T0, expiresAt: T0 + HOUR });

    // B stops answering from its cache (within heartbeat + confirmTimeout) and reads the revocation from Redis.
    await vi.waitFor(async () => expect(await b.getRevocation('tok-1', 'alice', T0)).toEqual({ revokedAt: T0 }), { timeout: 5000, interval: 10 });
    expect(b.stats().nearCacheEnabled).toBe(false);
    expect(warnings).toContain('TOKEN_GUARD_REDIS_SUBSCRIBER');

    // And caches nothing meanwhile: a token looked up now and revoked later is read from Redis, not from a cached "none".
    expect(await b.getRevocation('tok-2', undefined, T0)).toBeUndefined();
    await a.revoke('tok-2', { now: T0, expiresAt: T0 + HOUR });
    const next = b.getRevocation('tok-2', undefined, T0);
    expect(next).toBeInstanceOf(Promise);
    expect(await next).toEqual({ revokedAt: T0 });
  });
});
