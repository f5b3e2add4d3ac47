// Regression (security review, stores): composeStores keeps the revocations its cache failed to take and retries them
// every second. They were keyed by id, so (a) a later revocation of the same subject whose fan-out landed deleted the
// earlier one still waiting, though the later one was weaker (an earlier `before`: an admin's explicit cut-off, SET
// events out of order), and (b) a retry that landed deleted the entry under its key even when a newer fan-out had
// failed meanwhile and replaced it. Either way Redis kept the weaker cut-off for good (a subject entry without expiry
// has no TTL): a token PostgreSQL says is revoked passed on every instance, and the admin had been told it would land.
// On real PostgreSQL and Redis for (a); (b) holds the cache's answer to interleave the two.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type pg from 'pg';
import type { Redis } from 'ioredis';
import { composeStores, StoreError, type RevokeSubjectOptions, type StoreCache, type TokenStore } from '../../src/index.js';
import { PostgresStore } from '../../src/stores/postgres.js';
import { RedisStore } from '../../src/stores/redis.js';
import { createTestDatabase, dropTestDatabase, pgPool, pgUp, tablePrefix } from '../helpers/postgres.js';
import { deletePrefix, randomPrefix, redisClient, redisUp } from '../helpers/redis.js';

const T0 = Date.UTC(2026, 10, 25, 10, 0, 0);
const MIN = 60_000;

describe.skipIf(!pgUp || !redisUp)('regression: a failed revocation fan-out survives later ones', () => {
  let db: { name: string; url: string };
  let pool: pg.Pool;
  let client: Redis;
  const prefix = randomPrefix('fanout-kept');
  const stores: TokenStore[] = [];
  const subscribers: Redis[] = [];

  beforeAll(async () => {
    db = await createTestDatabase('fanoutkept');
    pool = pgPool(db.url);
    client = redisClient();
  });
  afterAll(async () => {
    for (const s of stores) await s.close?.();
    for (const s of subscribers) s.disconnect();
    await deletePrefix(client, prefix);
    client.disconnect();
    await pool?.end();
    if (db) await dropTestDatabase(db.name);
  });

  async function durable(): Promise<PostgresStore> {
    const d = new PostgresStore({ pool, tablePrefix: tablePrefix() });
    await d.migrate();
    return d;
  }

  /** A RedisStore with its near-cache on, as each app instance has. */
  async function redisStore(): Promise<RedisStore> {
    const subscriber = client.duplicate();
    subscriber.on('error', () => undefined);
    subscribers.push(subscriber);
    const r = new RedisStore({ client, subscriber, prefix, durability: 'ignore' });
    await vi.waitFor(() => expect(r.stats().nearCacheEnabled).toBe(true), { timeout: 5000 });
    return r;
  }

  function compose(d: PostgresStore, cache: StoreCache, r: RedisStore): TokenStore {
    const s = composeStores({ keys: d, revocations: d, counters: r, claims: r, usage: r, cache });
    stores.push(s);
    return s;
  }

  it('(a) a weaker revocation that lands does not cancel the retry of a stronger one the cache missed', async () => {
    const d = await durable();
    const redis = await redisStore();
    let failOnce = true;
    const cache: StoreCache = {
      getApiKeyThrough: (hash, load) => redis.getApiKeyThrough(hash, load),
      getRevocationThrough: (tokenId, subject, now, load) => redis.getRevocationThrough(tokenId, subject, now, load),
      revoke: (tokenId, o) => redis.revoke(tokenId, o),
      revokeSubject: (subject, o) => {
        if (!failOnce) return redis.revokeSubject(subject, o);
        failOnce = false;
        return Promise.reject(new Error('Connection is closed. (simulated)'));
      },
      invalidateApiKey: (hash) => redis.invalidateApiKey(hash),
    };
    const admin = compose(d, cache, redis);
    await expect(admin.revokeSubject('bob', { now: T0 + 10 * MIN, before: T0 + 10 * MIN, reason: 'compromised' })).rejects.toBeInstanceOf(StoreError);
    await admin.revokeSubject('bob', { now: T0 + 10 * MIN, before: T0 });
    expect((await d.getRevocation('tok-x', 'bob', T0 + 11 * MIN))?.subjectRevokedBefore).toBe(T0 + 10 * MIN);
    // Another instance, reading through Redis: a token of bob's issued at T0+5min is revoked once the retry lands.
    const other = await redisStore();
    const app = compose(d, other, other);
    await vi.waitFor(async () => expect((await app.getRevocation('tok-y', 'bob', T0 + 11 * MIN))?.subjectRevokedBefore).toBe(T0 + 10 * MIN), {
      timeout: 5000,
      interval: 100,
    });
  });

  it('(b) a retry that lands does not take away a newer fan-out that failed while it was under way', async () => {
    const d = await durable();
    const taken: number[] = [];
    let mode: 'fail' | 'hold' | 'take' = 'fail';
    let release: (() => void) | undefined;
    const cache: StoreCache = {
      getApiKeyThrough: (hash, load) => load(hash),
      getRevocationThrough: (tokenId, subject, now, load) => load(tokenId, subject, now).then(() => undefined),
      revoke: async () => undefined,
      revokeSubject: (_subject: string, o: RevokeSubjectOptions) => {
        if (mode === 'fail') return Promise.reject(new Error('cache down (simulated)'));
        if (mode === 'hold') {
          mode = 'fail';
          return new Promise<void>((r) => (release = r));
        }
        taken.push(o.before as number);
        return Promise.resolve();
      },
      invalidateApiKey: async () => undefined,
    };
    const admin = compose(d, cache, await redisStore());
    await expect(admin.revokeSubject('carol', { now: T0, before: T0 })).rejects.toBeInstanceOf(StoreError);
    mode = 'hold';
    // The retry (every second) sends the first and waits for the cache's answer.
    await vi.waitFor(() => expect(release).toBeDefined(), { timeout: 5000, interval: 50 });
    await expect(admin.revokeSubject('carol', { now: T0 + 10 * MIN, before: T0 + 10 * MIN })).rejects.toBeInstanceOf(StoreError);
    mode = 'take';
    release?.();
    await vi.waitFor(() => expect(taken).toContain(T0 + 10 * MIN), { timeout: 5000, interval: 50 });
  });

  it('(c) re-revoking one subject while the cache is down queues one merged entry, so it cannot push another revocation out', async () => {
    const d = await durable();
    const sent: string[] = [];
    let down = true;
    const cache: StoreCache = {
      getApiKeyThrough: (hash, load) => load(hash),
      getRevocationThrough: (tokenId, subject, now, load) => load(tokenId, subject, now).then(() => undefined),
      revoke: async (tokenId) => {
        if (down) throw new Error('cache down (simulated)');
        sent.push(`t ${tokenId}`);
      },
      revokeSubject: async (subject, o) => {
        if (down) throw new Error('cache down (simulated)');
        sent.push(`s ${subject} before=T0+${((o.before as number) - T0) / MIN}min expiresAt=${o.expiresAt === undefined ? 'never' : 'set'}`);
      },
      invalidateApiKey: async () => undefined,
    };
    const admin = compose(d, cache, await redisStore());
    await expect(admin.revoke('victim-jti', { now: T0 })).rejects.toBeInstanceOf(StoreError);
    for (let i = 0; i < 30; i++) {
      const o: RevokeSubjectOptions = { now: T0 + i * MIN, before: T0 + ((i * 7) % 30) * MIN };
      if (i % 3 !== 0) o.expiresAt = T0 + 3_600_000;
      await expect(admin.revokeSubject('bob', o)).rejects.toBeInstanceOf(StoreError);
    }
    down = false;
    await vi.waitFor(() => expect(sent).toHaveLength(2), { timeout: 5000, interval: 50 });
    // The latest cut-off of the thirty, kept for good (some were), and the token revocation queued before them.
    expect(sent.sort()).toEqual(['s bob before=T0+29min expiresAt=never', 't victim-jti']);

    // A queued revocation that has expired by the next one's `now` is replaced, as the stores replace it, not merged:
    // merged, the cache would hold a later cut-off than PostgreSQL, for good.
    sent.length = 0;
    down = true;
    await expect(admin.revokeSubject('carol', { now: T0, before: T0, expiresAt: T0 + 60 * MIN })).rejects.toBeInstanceOf(StoreError);
    await expect(admin.revokeSubject('carol', { now: T0 + 120 * MIN, before: T0 - 60 * MIN })).rejects.toBeInstanceOf(StoreError);
    expect((await d.getRevocation('x', 'carol', T0 + 121 * MIN))?.subjectRevokedBefore).toBe(T0 - 60 * MIN);
    down = false;
    await vi.waitFor(() => expect(sent).toEqual(['s carol before=T0+-60min expiresAt=never']), { timeout: 5000, interval: 50 });
  });
});
