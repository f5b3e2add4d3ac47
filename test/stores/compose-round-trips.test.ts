// What the composed store (PostgreSQL durable, RedisStore in front) sends per request, counted: a cold record costs one
// PostgreSQL query, and a cached request costs exactly what it costs on RedisStore alone (one HMGET for an API key
// record, nothing for a near-cached revocation lookup). Counts, not times: they are deterministic (speed is in
// bench/durable.bench.ts).
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type pg from 'pg';
import type { Redis } from 'ioredis';
import { SignJWT } from 'jose';
import { composeStores, createGuard, issueApiKey, type Guard, type GuardRequest, type TokenStore } from '../../src/index.js';
import { PostgresStore } from '../../src/stores/postgres.js';
import { RedisStore } from '../../src/stores/redis.js';
import { createTestDatabase, dropTestDatabase, pgPool, pgUp, tablePrefix } from '../helpers/postgres.js';
import { deletePrefix, randomPrefix, redisClient, redisUp } from '../helpers/redis.js';

const NOW = new Date('2026-11-25T10:00:00Z');
const iat = Math.floor(NOW.getTime() / 1000);
const SECRET = new TextEncoder().encode('round-trips-secret-round-trips-secret!!');

/** Every command a client sends, by name (scripts as evalsha or eval). */
function countCommands(client: Redis): string[] {
  const sent: string[] = [];
  const send = client.sendCommand.bind(client);
  client.sendCommand = ((...args: Parameters<Redis['sendCommand']>) => {
    sent.push(args[0].name);
    return send(...args);
  }) as Redis['sendCommand'];
  return sent;
}

/** Every query a pool's connections run: records (by hash), revocation lookups, anything else. */
function countQueries(pool: pg.Pool): { records: number; revocations: number; other: number } {
  const counts = { records: 0, revocations: 0, other: 0 };
  const counted = new WeakSet<pg.PoolClient>();
  // Each connection as it is checked out (the store runs each statement on one), wrapped once.
  pool.on('acquire', (client) => {
    if (counted.has(client)) return;
    counted.add(client);
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const sql = typeof args[0] === 'string' ? args[0] : String((args[0] as { text?: unknown }).text);
      if (/FROM \S*api_keys\S* WHERE hash/.test(sql)) counts.records++;
      else if (/FROM \S*revocations/.test(sql)) counts.revocations++;
      else counts.other++;
      return query(...args);
    };
  });
  return counts;
}

describe.skipIf(!pgUp || !redisUp)('composeStores round trips, counted', () => {
  const RUN = randomPrefix('compose-rt');
  let db: { name: string; url: string };
  let pool: pg.Pool;
  let queries: ReturnType<typeof countQueries>;
  const clients: Redis[] = [];
  const stores: TokenStore[] = [];
  let n = 0;

  beforeAll(async () => {
    db = await createTestDatabase('compose_rt');
    pool = pgPool(db.url);
    queries = countQueries(pool);
  });
  afterAll(async () => {
    for (const s of stores) await Promise.resolve(s.close?.()).catch(() => undefined);
    if (clients[0]) await deletePrefix(clients[0], RUN);
    for (const c of clients) c.disconnect();
    await pool?.end();
    if (db) await dropTestDatabase(db.name);
  });

  const pgTotal = () => queries.records + queries.revocations + queries.other;
  const connect = (): Redis => {
    const c = redisClient();
    c.on('error', () => undefined);
    clients.push(c);
    return c;
  };

  /** A RedisStore with a subscriber (near-cache on), its client's commands counted. */
  async function redisStore(): Promise<{ redis: RedisStore; sent: string[]; prefix: string; client: Redis }> {
    const client = connect();
    const sent = countCommands(client);
    const prefix = `${RUN}${n++}:`;
    const redis = new RedisStore({ client, subscriber: connect(), prefix, durability: 'ignore' });
    stores.push(redis);
    await vi.waitFor(() => expect(redis.stats().nearCacheEnabled).toBe(true), { timeout: 5000, interval: 2 });
    return { redis, sent, prefix, client };
  }

  async function composed(): Promise<{ store: TokenStore; redis: RedisStore; sent: string[]; prefix: string }> {
    const durable = new PostgresStore({ pool, tablePrefix: tablePrefix() });
    await durable.migrate();
    const { redis, sent, prefix } = await redisStore();
    const store = composeStores({ keys: durable, revocations: durable, counters: redis, claims: redis, usage: redis, cache: redis });
    stores.push(store);
    return { store, redis, sent, prefix };
  }

  // No usage tracking: its batches are written on a timer, which would make the counts depend on timing.
  const guardOn = (store: TokenStore): Guard =>
    createGuard({
      apiKeys: { prefix: 'tg_' },
      jwt: { issuer: 'https://id.example.com/', audience: 'api://orders', algorithms: ['HS256'], secret: SECRET },
      store,
      clock: () => NOW,
      trackUsage: false,
      rules: [{ methods: ['GET'], path: '/orders/**', scopes: ['orders:read'] }],
    });
  const request = (token: string): GuardRequest => ({ method: 'GET', path: '/orders/42', headers: { authorization: `Bearer ${token}` }, remoteAddress: '10.1.2.3' });
  const newKey = () => issueApiKey({ prefix: 'tg_', subject: 'svc', scopes: ['orders:read'], expiresIn: '30d', now: new Date(NOW.getTime() - 1000) });
  const sign = (jti: string) =>
    new SignJWT({ scope: 'orders:read', jti })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('https://id.example.com/')
      .setAudience('api://orders')
      .setSubject('alice')
      .setIssuedAt(iat)
      .setExpirationTime(iat + 3600)
      .sign(SECRET);

  /** What one decision sent: PostgreSQL queries and Redis commands, and its reason. */
  async function decide(guard: Guard, token: string, sent: string[]): Promise<{ reason: string; pg: number; redis: string[] }> {
    const pg0 = pgTotal();
    const r0 = sent.length;
    const d = await guard.evaluate(request(token));
    return { reason: d.reason, pg: pgTotal() - pg0, redis: sent.slice(r0) };
  }

  it('a cold record costs one PostgreSQL query; once kept, reading it costs one HMGET and no query, as on RedisStore alone', async () => {
    const { store, sent } = await composed();
    const { record } = newKey();
    await store.putApiKey(record);
    const before = { records: queries.records, all: pgTotal(), redis: sent.length };
    expect(await store.getApiKey(record.hash)).toEqual(record);
    expect({ records: queries.records - before.records, all: pgTotal() - before.all }).toEqual({ records: 1, all: 1 });
    // The miss (HMGET), the generation read before the durable store (GET), the keep (a script).
    expect(sent.slice(before.redis)).toEqual(['hmget', 'get', expect.stringMatching(/^eval(sha)?$/)]);

    const cached = { all: pgTotal(), redis: sent.length };
    expect(await store.getApiKey(record.hash)).toEqual(record);
    expect(pgTotal() - cached.all).toBe(0);
    expect(sent.slice(cached.redis)).toEqual(['hmget']);

    const alone = await redisStore();
    await alone.redis.putApiKey(record);
    const r0 = alone.sent.length;
    await alone.redis.getApiKey(record.hash);
    expect(alone.sent.slice(r0)).toEqual(['hmget']);
  });

  it('the first request of a fresh API key costs two PostgreSQL queries (its record, its revocation lookup); the next costs one HMGET, as on RedisStore alone', async () => {
    const { store, redis, sent } = await composed();
    const guard = guardOn(store);
    const { key, record } = newKey();
    await store.putApiKey(record);
    const q0 = { records: queries.records, revocations: queries.revocations, other: queries.other };
    const first = await decide(guard, key, sent);
    expect(first.reason).toBe('ok');
    expect({ records: queries.records - q0.records, revocations: queries.revocations - q0.revocations, other: queries.other - q0.other }).toEqual({
      records: 1,
      revocations: 1,
      other: 0,
    });

    const hits = redis.stats().nearCacheHits;
    const second = await decide(guard, key, sent);
    expect(second).toEqual({ reason: 'ok', pg: 0, redis: ['hmget'] });
    // The revocation lookup was answered by the near-cache.
    expect(redis.stats().nearCacheHits).toBe(hits + 1);

    const alone = await redisStore();
    const aloneGuard = guardOn(alone.redis);
    await alone.redis.putApiKey(record);
    expect((await decide(aloneGuard, key, alone.sent)).reason).toBe('ok');
    expect(await decide(aloneGuard, key, alone.sent)).toEqual({ reason: 'ok', pg: 0, redis: ['hmget'] });
  });

  it('a JWT whose revocation lookup is near-cached costs no round trip at all, as on RedisStore alone', async () => {
    const { store, sent } = await composed();
    const guard = guardOn(store);
    const token = await sign('rt-jwt-1');
    const q0 = queries.revocations;
    expect((await decide(guard, token, sent)).reason).toBe('ok');
    expect(queries.revocations - q0).toBe(1);
    expect(await decide(guard, token, sent)).toEqual({ reason: 'ok', pg: 0, redis: [] });

    const alone = await redisStore();
    const aloneGuard = guardOn(alone.redis);
    expect((await decide(aloneGuard, token, alone.sent)).reason).toBe('ok');
    expect(await decide(aloneGuard, token, alone.sent)).toEqual({ reason: 'ok', pg: 0, redis: [] });
  });

  it('a record Redis lost (evicted, flushed) costs one PostgreSQL query again, and is kept again', async () => {
    const { store, sent, prefix } = await composed();
    const { record } = newKey();
    await store.putApiKey(record);
    await store.getApiKey(record.hash);
    const other = connect();
    expect(await other.del(`${prefix}{k:${record.hash}}`)).toBe(1);
    const before = queries.records;
    expect(await store.getApiKey(record.hash)).toEqual(record);
    expect(queries.records - before).toBe(1);
    const again = { records: queries.records, redis: sent.length };
    expect(await store.getApiKey(record.hash)).toEqual(record);
    expect({ records: queries.records - again.records, redis: sent.slice(again.redis) }).toEqual({ records: 0, redis: ['hmget'] });
  });

  /** A load that counts its calls and answers only once released. */
  function gated<T>(answer: () => T): { load: () => Promise<T>; calls: () => number; release: () => void } {
    let calls = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    return {
      load: async () => {
        calls++;
        await gate;
        return answer();
      },
      calls: () => calls,
      release,
    };
  }

  it('twenty concurrent reads of one cold record share one read of the durable store', async () => {
    const { redis, sent, client } = await redisStore();
    const { record } = newKey();
    const durable = gated(() => ({ ...record }));
    const reads = Array.from({ length: 20 }, () => redis.getApiKeyThrough(record.hash, durable.load));
    // Every read has missed and sent its generation read; once the connection has answered those, all have decided.
    await vi.waitFor(() => expect(sent.filter((c) => c === 'get')).toHaveLength(20), { interval: 1 });
    await client.ping();
    await new Promise((r) => setImmediate(r));
    expect(durable.calls()).toBe(1);
    durable.release();
    for (const r of await Promise.all(reads)) expect(r).toEqual(record);
    expect(durable.calls()).toBe(1);
  });

  it('a record read that starts after a change completed never shares a read that started before it', async () => {
    const { redis, sent, client } = await redisStore();
    const { record } = newKey();
    const before = gated(() => ({ ...record, scopes: ['old'] }));
    const reading = redis.getApiKeyThrough(record.hash, before.load);
    await vi.waitFor(() => expect(before.calls()).toBe(1), { interval: 1 });
    await redis.invalidateApiKey(record.hash);
    const after = gated(() => ({ ...record, scopes: ['new'] }));
    const r0 = sent.length;
    const later = redis.getApiKeyThrough(record.hash, after.load);
    await vi.waitFor(() => expect(sent.slice(r0)).toEqual(['hmget', 'get']), { interval: 1 });
    await client.ping();
    await new Promise((r) => setImmediate(r));
    expect(after.calls()).toBe(1);
    before.release();
    after.release();
    expect((await reading)?.scopes).toEqual(['old']);
    expect((await later)?.scopes).toEqual(['new']);
  });

  it('twenty concurrent lookups of one revocation the near-cache lacks share one Redis read and one durable read', async () => {
    const { redis, sent } = await redisStore();
    const durable = gated(() => ({ token: null, subject: null }));
    const r0 = sent.length;
    const lookups = Array.from({ length: 20 }, () => redis.getRevocationThrough('rt-tok-1', 'alice', NOW.getTime(), durable.load));
    expect(sent.slice(r0)).toEqual(['get', 'get', 'get', 'get']);
    await vi.waitFor(() => expect(durable.calls()).toBe(1), { interval: 1 });
    durable.release();
    for (const l of await Promise.all(lookups)) expect(l).toBeUndefined();
    expect(durable.calls()).toBe(1);
    // The answer was kept: the next lookup is synchronous.
    expect(redis.getRevocationThrough('rt-tok-1', 'alice', NOW.getTime(), durable.load)).toBeUndefined();
  });

  it('a revocation lookup that starts after a revocation completed, or at an earlier now, never shares a read that started before', async () => {
    const { redis } = await redisStore();
    const t = NOW.getTime();
    const first = gated(() => ({ token: null, subject: null }));
    const stale = redis.getRevocationThrough('rt-tok-2', 'alice', t + 1000, first.load);
    await vi.waitFor(() => expect(first.calls()).toBe(1), { interval: 1 });
    // Earlier now: the durable store may have left out what expired in between, so it reads for itself.
    const earlier = gated(() => ({ token: null, subject: null }));
    const early = redis.getRevocationThrough('rt-tok-2', 'alice', t, earlier.load);
    await vi.waitFor(() => expect(earlier.calls()).toBe(1), { interval: 1 });
    earlier.release();
    expect(await early).toBeUndefined();
    // A revocation completes (this instance confirmed it) while the first read is still waiting on the durable store.
    await redis.revoke('rt-tok-2', { now: t });
    const after = gated(() => ({ token: { time: t, expiresAt: null }, subject: null }));
    expect(await redis.getRevocationThrough('rt-tok-2', 'alice', t + 1000, after.load)).toEqual({ revokedAt: t });
    first.release();
    // The first read answers what it read before the revocation, and the near-cache did not keep it.
    expect(await stale).toBeUndefined();
    expect(await redis.getRevocationThrough('rt-tok-2', 'alice', t + 1000, after.load)).toEqual({ revokedAt: t });
  });
});
