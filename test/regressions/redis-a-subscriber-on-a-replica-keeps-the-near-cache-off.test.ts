// Regression (review of the Redis near-cache): a RedisStore whose subscriber is connected to a replica of its client's
// Redis (or to the former primary after a failover: Sentinel kills only `TYPE normal` clients, and a pub/sub client
// survives REPLICAOF) hears what the client publishes, through replication. So it heard its probe and turned its
// near-cache on, but the primary's PUBSUB NUMSUB does not count it: a revoke on another instance resolved without
// waiting for it, and it answered "not revoked" from its cache until replication caught up (20 of 100 lookups right
// after revoke resolved; a 200 through Express). Now the cache turns on only once the client's server counts the
// subscriber. And a revoke made on such an instance no longer takes its own echo, heard through replication, for one
// of the listeners the primary counted, which let it resolve before a counted instance had answered.
// On two redis-server processes this test starts (a primary and its replica) and kills.
import { tmpdir } from 'node:os';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { Redis } from 'ioredis';
import { RedisStore } from '../../src/stores/redis.js';
import { freePort, redisBinaries, type RedisServer, startRedisServer } from '../helpers/redis.js';
import { type RedisProxy, redisProxy } from '../stores/redis-proxy.js';

const T0 = Date.UTC(2026, 10, 25, 10, 0, 0);
const HOUR = 3_600_000;
/**
 * What this test is not about is bounded generously: it runs beside the whole suite on two cores. With the default
 * commandTimeout (250 ms) a probe's PUBLISH or NUMSUB sent while a connection was still being set up timed out, and the
 * next proof came only 10 s later (past the waits below); with the default confirmTimeout (1 s) a late echo made an
 * instance warn "did not hear" first, under the one warning code, which hid the warning this test waits for. A heartbeat
 * beyond the test's length keeps a proven near-cache on without a renewal that load could fail (it would turn the cache
 * off between the two lookups that show it cached). Every wait below is for an event, these bounds only cap it.
 */
const GENEROUS = { commandTimeout: 10_000, confirmTimeout: 10_000 } as const;
const NEAR_CACHE = { max: 100, ttl: 60_000, heartbeat: 600_000 } as const;
const WAIT = { timeout: 30_000, interval: 5 } as const;

describe.skipIf(!redisBinaries)('regression: a subscriber on a replica never turns the near-cache on, nor confirms for others', () => {
  let primary: RedisServer;
  let replica: RedisServer;
  const connections: Redis[] = [];
  const stores: RedisStore[] = [];
  const proxies: RedisProxy[] = [];
  const warnings: string[] = [];
  const onWarning = (w: Error & { code?: string }) => warnings.push(`${w.code}: ${w.message}`);
  const to = (port: number): Redis => {
    const c = new Redis(port, '127.0.0.1');
    c.on('error', () => undefined);
    connections.push(c);
    return c;
  };
  /** Resumes a replica this test paused, if it did. */
  const resume = () => {
    if (replica?.process.pid !== undefined) process.kill(replica.process.pid, 'SIGCONT');
  };

  afterAll(async () => {
    process.off('warning', onWarning);
    resume();
    for (const s of stores) await s.close();
    for (const c of connections) c.disconnect();
    for (const p of proxies) await p.close();
    await replica?.kill();
    await primary?.kill();
  });

  it('keeps the near-cache off (and says why), so a revocation elsewhere is read from the primary at once', async () => {
    process.on('warning', onWarning);
    // No wait before the first full sync (Redis 7 waits 5 s for more replicas by default).
    primary = await startRedisServer(await freePort(), ['--repl-diskless-sync-delay', '0']);
    // A replica may write the primary's snapshot to its directory: not into the working tree.
    replica = await startRedisServer(await freePort(), ['--replicaof', '127.0.0.1', String(primary.port), '--dir', tmpdir()]);
    const admin = to(replica.port);
    await vi.waitFor(async () => expect(await admin.info('replication')).toMatch(/master_link_status:up/), { ...WAIT, interval: 50 });

    const options = { prefix: 'r1:', durability: 'ignore' as const, nearCache: NEAR_CACHE, ...GENEROUS };
    const a = new RedisStore({ ...options, client: to(primary.port), subscriber: to(primary.port) });
    const b = new RedisStore({ ...options, client: to(primary.port), subscriber: to(replica.port) });
    stores.push(a, b);
    await vi.waitFor(() => expect(a.stats().nearCacheEnabled).toBe(true), WAIT);
    // B's subscriber hears its probe (replicated) and is found uncounted: said once, the cache stays off.
    await vi.waitFor(() => expect(warnings.join('\n')).toMatch(/TOKEN_GUARD_REDIS_SUBSCRIBER: .*does not count it/), WAIT);
    expect(b.stats().nearCacheEnabled).toBe(false);

    expect(await b.getRevocation('tok-1', 'alice', T0)).toBeUndefined();
    expect(await b.getRevocation('tok-1', 'alice', T0)).toBeUndefined();
    // The replica lags (here: paused); its subscriber connection stays open.
    process.kill(replica.process.pid as number, 'SIGSTOP');
    try {
      await a.revoke('tok-1', { now: T0, expiresAt: T0 + HOUR, reason: 'stolen' });
      expect(await b.getRevocation('tok-1', 'alice', T0)).toEqual({ revokedAt: T0, reason: 'stolen' });
    } finally {
      resume();
    }
  }, 120_000);

  it('a revoke on the instance whose subscriber is on the replica still waits for every instance the primary counts', async () => {
    // A's subscriber hears the primary late (a slow link): its acknowledgement comes well after B's own echo.
    const slow = await redisProxy(`redis://127.0.0.1:${primary.port}`, { delayMs: 800 });
    proxies.push(slow);
    const options = { prefix: 'r2:', durability: 'ignore' as const, nearCache: NEAR_CACHE, ...GENEROUS };
    const a = new RedisStore({ ...options, client: to(primary.port), subscriber: to(slow.port) });
    const b = new RedisStore({ ...options, client: to(primary.port), subscriber: to(replica.port) });
    stores.push(a, b);
    await vi.waitFor(() => expect(a.stats().nearCacheEnabled).toBe(true), WAIT);
    expect(await a.getRevocation('tok-2', undefined, T0)).toBeUndefined();
    expect(a.getRevocation('tok-2', undefined, T0)).toBeUndefined(); // now cached

    await b.revoke('tok-2', { now: T0, expiresAt: T0 + HOUR });
    // Resolved only once A had dropped its cached lookup: A reads the revocation.
    const onA = a.getRevocation('tok-2', undefined, T0);
    expect(onA).toBeInstanceOf(Promise);
    expect(await onA).toEqual({ revokedAt: T0 });
  }, 120_000);
});
