// Regression (security review, stores): with composeStores (PostgreSQL records, a RedisStore cache in front), a record
// change is written to PostgreSQL and then dropped from Redis. When that drop failed (a Redis timeout on the admin's
// side), the call rejected but nothing retried it: the record Redis kept was served for up to readThroughTtl (60 s),
// so a key rotated with grace 0 kept working on every instance, and retrying the rotation only said "already rotated".
// Failed drops now join the revocation fan-outs' retry queue (every second), and the call still rejects.
// On real PostgreSQL and Redis; the cache's drop fails once for the rotated key, as a timeout would.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type pg from 'pg';
import type { Redis } from 'ioredis';
import { composeStores, createGuard, issueApiKey, rotateApiKey, StoreError, type GuardRequest, type StoreCache, type TokenStore } from '../../src/index.js';
import { PostgresStore } from '../../src/stores/postgres.js';
import { RedisStore } from '../../src/stores/redis.js';
import { createTestDatabase, dropTestDatabase, pgPool, pgUp, tablePrefix } from '../helpers/postgres.js';
import { deletePrefix, randomPrefix, redisClient, redisUp } from '../helpers/redis.js';
import { basePolicy } from '../helpers/tokens.js';

describe.skipIf(!pgUp || !redisUp)('regression: a record change the cache failed to drop is dropped later', () => {
  let db: { name: string; url: string };
  let pool: pg.Pool;
  let client: Redis;
  const prefix = randomPrefix('record-drop-retry');
  const stores: TokenStore[] = [];

  beforeAll(async () => {
    db = await createTestDatabase('droprt');
    pool = pgPool(db.url);
    client = redisClient();
  });
  afterAll(async () => {
    for (const s of stores) await s.close?.();
    await deletePrefix(client, prefix);
    client.disconnect();
    await pool?.end();
    if (db) await dropTestDatabase(db.name);
  });

  /** A composed store; `failDrop` makes the cache's next drop of a hash in it fail once. */
  function composed(durable: PostgresStore, failDrop = new Set<string>()): TokenStore {
    const redis = new RedisStore({ client, prefix, durability: 'ignore' });
    const cache: StoreCache = {
      getApiKeyThrough: (hash, load) => redis.getApiKeyThrough(hash, load),
      getRevocationThrough: (tokenId, subject, now, load) => redis.getRevocationThrough(tokenId, subject, now, load),
      revoke: (tokenId, o) => redis.revoke(tokenId, o),
      revokeSubject: (subject, o) => redis.revokeSubject(subject, o),
      invalidateApiKey: (hash) => (failDrop.delete(hash) ? Promise.reject(new Error('Redis drop timed out after 250 ms (simulated)')) : redis.invalidateApiKey(hash)),
    };
    const store = composeStores({ keys: durable, revocations: durable, counters: redis, claims: redis, usage: redis, cache });
    stores.push(store);
    return store;
  }

  it('a key rotated with grace 0 stops working on every instance even though the first drop failed, and the call says so', async () => {
    const durable = new PostgresStore({ pool, tablePrefix: tablePrefix() });
    await durable.migrate();
    const failDrop = new Set<string>();
    const admin = composed(durable, failDrop);
    const app = composed(durable);
    const guard = createGuard(await basePolicy({ store: app, clock: () => new Date() }));
    const issued = issueApiKey({ prefix: 'tg_', subject: 'svc-billing', scopes: ['orders:read'], expiresIn: '30d' });
    await admin.putApiKey(issued.record);
    const req: GuardRequest = { method: 'GET', path: '/orders/1', headers: { authorization: `Bearer ${issued.key}` }, remoteAddress: '127.0.0.1' };
    expect((await guard.evaluate(req)).reason).toBe('ok');
    // The app's read kept the record in Redis.
    expect(await client.hexists(`${prefix}{k:${issued.record.hash}}`, 'rec')).toBe(1);

    failDrop.add(issued.record.hash);
    const outcome = await rotateApiKey(admin, issued.record.id, { grace: 0, reason: 'compromised' }).then(
      () => 'resolved',
      (e: unknown) => e,
    );

    // Retried in the background (every second): bounded wait, well inside readThroughTtl (60 s).
    await vi.waitFor(async () => expect((await app.getApiKey(issued.record.hash))?.rotatedTo).toBeDefined(), { timeout: 5000, interval: 50 });
    expect((await guard.evaluate(req)).reason).toBe('token.revoked');
    // The admin was told: the change landed, the cache has not taken it yet.
    expect(outcome).toBeInstanceOf(StoreError);
    expect((outcome as StoreError).message).toMatch(/did not drop its copy/);
  });
});
