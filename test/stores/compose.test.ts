// composeStores: a store per concern, and RedisStore as a read-through cache in front of PostgresStore. The whole
// conformance suite on the composed store (PostgreSQL + the shared Redis), the cache's behaviour (what is kept, what
// is invalidated, synchronous near-cached answers, fallback when Redis fails), and the checks at construction.
import { afterAll, beforeAll, describe, expect, expectTypeOf, it, vi } from 'vitest';
import type pg from 'pg';
import { Redis } from 'ioredis';
import { composeStores, MemoryStore, StoreArgumentError, type ApiKeyRecord, type TokenStore } from '../../src/index.js';
import { PostgresStore } from '../../src/stores/postgres.js';
import { RedisStore } from '../../src/stores/redis.js';
import { storeConformance } from '../../src/testing/conformance.js';
import { createTestDatabase, dropTestDatabase, pgPool, pgUp, tablePrefix } from '../helpers/postgres.js';
import { deletePrefix, freePort, randomPrefix, redisClient, redisUp } from '../helpers/redis.js';

const T0 = Date.UTC(2026, 10, 25, 10, 0, 0);
const MINUTE = 60_000;
const rec = (overrides: Partial<ApiKeyRecord> = {}): ApiKeyRecord => ({
  id: 'key_c1',
  hash: 'c'.repeat(64),
  prefix: 'tg_',
  subject: 'svc',
  scopes: ['orders:read'],
  createdAt: T0,
  expiresAt: null,
  ...overrides,
});

describe('composeStores checks its parts', () => {
  const m = new MemoryStore();
  const parts = { keys: m, revocations: m, counters: m, claims: m, usage: m };

  it('refuses a part that lacks a method of its concern, naming the part', () => {
    expect(() => composeStores({ ...parts, counters: {} as never })).toThrow(/counters must be a store with consume/);
    expect(() => composeStores({ ...parts, keys: { getApiKey: () => undefined } as never })).toThrow(StoreArgumentError);
    expect(() => composeStores(null as never)).toThrow(StoreArgumentError);
  });

  it('refuses a cache in front of revocations that cannot give their expiries', () => {
    const redisLike = { getApiKeyThrough: vi.fn(), invalidateApiKey: vi.fn(), getRevocationThrough: vi.fn(), revoke: vi.fn(), revokeSubject: vi.fn() };
    expect(() => composeStores({ ...parts, cache: redisLike })).toThrow(/getRevocationEntries/);
    expect(() => composeStores({ ...parts, cache: {} as never })).toThrow(/StoreCache/);
  });

  it('routes each concern to its part (MemoryStore everywhere: a plain TokenStore)', async () => {
    const counters = new MemoryStore();
    const store = composeStores({ ...parts, counters });
    await store.consume('t', [{ name: 'p', limit: 1, windowMs: MINUTE }], T0);
    expect((await counters.consume('t', [{ name: 'p', limit: 1, windowMs: MINUTE }], T0)).allowed).toBe(false);
    expect((await m.consume('t', [{ name: 'p', limit: 1, windowMs: MINUTE }], T0)).allowed).toBe(true);
  });

  it('types PostgresStore as keys and revocations only: it cannot stand in for counters, claims or usage', () => {
    expectTypeOf<PostgresStore>().toMatchTypeOf<Pick<TokenStore, 'getApiKey' | 'revoke' | 'getRevocation'>>();
    expectTypeOf<PostgresStore>().not.toMatchTypeOf<Pick<TokenStore, 'consume'>>();
    expectTypeOf<PostgresStore>().not.toMatchTypeOf<Pick<TokenStore, 'claimOnce'>>();
    expectTypeOf<PostgresStore>().not.toMatchTypeOf<Pick<TokenStore, 'recordUsage'>>();
  });
});

describe.skipIf(!pgUp || !redisUp)('composeStores: PostgreSQL durable, Redis for the rest and in front', () => {
  const RUN = randomPrefix('compose');
  let db: { name: string; url: string };
  let pool: pg.Pool;
  let client: Redis;
  const subscribers: Redis[] = [];
  let n = 0;

  beforeAll(async () => {
    db = await createTestDatabase('compose');
    pool = pgPool(db.url);
    client = redisClient();
  });
  afterAll(async () => {
    await deletePrefix(client, RUN);
    for (const s of subscribers) s.disconnect();
    client.disconnect();
    await pool?.end();
    if (db) await dropTestDatabase(db.name);
  });

  interface Parts {
    store: TokenStore;
    durable: PostgresStore;
    redis: RedisStore;
    prefix: string;
  }

  async function parts(options: { nearCache?: boolean; redisClient?: Redis } = {}): Promise<Parts> {
    const durable = new PostgresStore({ pool, tablePrefix: tablePrefix() });
    await durable.migrate();
    const prefix = `${RUN}${n++}:`;
    let subscriber: Redis | undefined;
    if (options.nearCache !== false) {
      subscriber = client.duplicate();
      subscriber.on('error', () => undefined);
      subscribers.push(subscriber);
    }
    const redis = new RedisStore({ client: options.redisClient ?? client, prefix, ...(subscriber && { subscriber }) });
    if (subscriber) await vi.waitFor(() => expect(redis.stats().nearCacheEnabled).toBe(true), { timeout: 5000, interval: 2 });
    const store = composeStores({ keys: durable, revocations: durable, counters: redis, claims: redis, usage: redis, cache: redis });
    return { store, durable, redis, prefix };
  }

  storeConformance(
    'composed PostgresStore + RedisStore (cache in front)',
    async () => (await parts()).store,
    { describe, it, expect },
    { timeout: 30_000, concurrency: 50, lifecycle: true },
  );

  it('keeps a record read from PostgreSQL in Redis, and drops it when it changes through the composed store', async () => {
    const { store, prefix } = await parts();
    await store.putApiKey(rec());
    expect(await client.hget(`${prefix}{k:${'c'.repeat(64)}}`, 'rec')).toBeNull();
    expect(await store.getApiKey(rec().hash)).toEqual(rec());
    expect(JSON.parse((await client.hget(`${prefix}{k:${'c'.repeat(64)}}`, 'rec')) as string)).toEqual(rec());
    expect(await client.pttl(`${prefix}{k:${'c'.repeat(64)}}`)).toBeGreaterThan(50_000);
    await store.updateApiKey(rec().hash, { scopes: [] });
    expect(await client.exists(`${prefix}{k:${'c'.repeat(64)}}`)).toBe(0);
    expect((await store.getApiKey(rec().hash))?.scopes).toEqual([]);
  });

  it('never keeps a record with uses left: every use shows on the next read', async () => {
    const { store, prefix } = await parts();
    await store.putApiKey(rec({ remaining: 2 }));
    expect((await store.getApiKey(rec().hash))?.remaining).toBe(2);
    expect(await store.useApiKey(rec().hash)).toBe(1);
    expect((await store.getApiKey(rec().hash))?.remaining).toBe(1);
    expect(await client.exists(`${prefix}{k:${'c'.repeat(64)}}`)).toBe(0);
  });

  it('does not keep a record read before a change that landed while it was being read (the generation moved)', async () => {
    const { durable, redis, prefix } = await parts();
    await durable.putApiKey(rec());
    const stale = rec();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let started!: () => void;
    const loading = new Promise<void>((r) => (started = r));
    const reading = redis.getApiKeyThrough(rec().hash, async () => {
      started();
      await gate;
      return stale;
    });
    // The change lands (durable store, then invalidation) while the read above is reading the durable store and
    // still holds the old record (a read of the durable store only starts once the generation has been read).
    await loading;
    await durable.updateApiKey(rec().hash, { scopes: [] });
    await redis.invalidateApiKey(rec().hash);
    release();
    expect(await reading).toEqual(stale);
    expect(await client.exists(`${prefix}{k:${'c'.repeat(64)}}`)).toBe(0);
    expect((await redis.getApiKeyThrough(rec().hash, (h) => durable.getApiKey(h).then((r) => r)))?.scopes).toEqual([]);
  });

  it('answers a repeated revocation lookup synchronously from the near-cache, and a revocation reaches it at once', async () => {
    const { store, redis } = await parts();
    const first = store.getRevocation('tok-1', 'alice', T0);
    expect(first).toBeInstanceOf(Promise);
    expect(await first).toBeUndefined();
    const second = store.getRevocation('tok-1', 'alice', T0);
    expect(second).toBeUndefined();
    expect(redis.stats().nearCacheHits).toBe(1);
    await store.revoke('tok-1', { now: T0 });
    expect(await store.getRevocation('tok-1', 'alice', T0)).toEqual({ revokedAt: T0 });
    expect(store.getRevocation('tok-1', 'alice', T0)).toEqual({ revokedAt: T0 });
  });

  it('a "no revocation" marker never hides a revocation written after it', async () => {
    const { store, durable, prefix } = await parts({ nearCache: false });
    expect(await store.getRevocation('tok-2', 'bob', T0)).toBeUndefined();
    expect(await client.get(`${prefix}{t:tok-2}:chk`)).toBe('1');
    await store.revokeSubject('bob', { now: T0, before: T0 + 1, expiresAt: T0 + MINUTE });
    expect(await store.getRevocation('tok-2', 'bob', T0)).toEqual({ subjectRevokedBefore: T0 + 1 });
    // Redis loses the revocation entry but not the markers (an eviction): the durable store is asked again.
    await client.del(`${prefix}{s:bob}:rev`, `${prefix}{s:bob}:chk`);
    expect(await store.getRevocation('tok-2', 'bob', T0)).toEqual({ subjectRevokedBefore: T0 + 1 });
    expect(JSON.parse((await client.get(`${prefix}{s:bob}:rev`)) as string)).toEqual({ before: T0 + 1, exp: T0 + MINUTE });
    expect(await durable.getRevocation('tok-2', 'bob', T0)).toEqual({ subjectRevokedBefore: T0 + 1 });
  });

  it('with Redis unreachable, PostgreSQL answers alone; a revocation is stored durably and the call rejects (the fan-out failed)', async () => {
    const port = await freePort();
    const deadClient = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0, enableOfflineQueue: false });
    deadClient.on('error', () => undefined);
    const durable = new PostgresStore({ pool, tablePrefix: tablePrefix() });
    await durable.migrate();
    const redis = new RedisStore({ client: deadClient, prefix: `${RUN}${n++}:`, commandTimeout: 100 });
    const store = composeStores({ keys: durable, revocations: durable, counters: redis, claims: redis, usage: redis, cache: redis });
    await durable.putApiKey(rec());
    expect(await store.getApiKey(rec().hash)).toEqual(rec());
    await expect(store.revoke('tok-3', { now: T0 })).rejects.toMatchObject({ name: 'StoreError', message: expect.stringContaining('stored durably') });
    expect(await store.getRevocation('tok-3', undefined, T0)).toEqual({ revokedAt: T0 });
    expect(await store.getRevocation('tok-4', 'alice', T0)).toBeUndefined();
    await store.close?.();
    deadClient.disconnect();
  });
});
