// RedisStore against the shared Redis: the conformance suite (plain and near-cached), key layout and TTLs (claims
// included), GCRA parity with gcra.ts, garbage in Redis through a real guard, prefixes, near-cache invalidation,
// usage batching.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import express from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Redis } from 'ioredis';
import { issueApiKey, MemoryStore, StoreError, type DecisionEvent, type TokenStore } from '../../src/index.js';
import { tokenGuard } from '../../src/adapters/express.js';
import { RedisStore, type RedisStoreOptions } from '../../src/stores/redis.js';
import { REVOCATION_TTL_SLACK_MS } from '../../src/stores/clock-skew.js';
import { storeConformance } from '../../src/testing/conformance.js';
import { basePolicy, NOW, signToken } from '../helpers/tokens.js';
import { deletePrefix, freePort, keysWithPrefix, randomPrefix, redisClient, redisUp } from '../helpers/redis.js';
import { lcg } from '../helpers/prng.js';

const T0 = NOW.getTime();
const RUN = randomPrefix('redis');

let client: Redis;
const subscribers: Redis[] = [];
const prefixes = new WeakMap<TokenStore, string>();
let n = 0;

/** A store on its own prefix under this run's, so every test starts empty. */
function makeStore(options: Partial<RedisStoreOptions> = {}): RedisStore {
  const prefix = `${RUN}${n++}:`;
  // A generous timeout: the conformance cases fire hundreds of parallel calls, and a loaded CI machine must not
  // turn them into timeouts (the timeout itself is tested in redis-faults.test.ts).
  const store = new RedisStore({ client, prefix, commandTimeout: 5000, ...options });
  prefixes.set(store, prefix);
  return store;
}

function subscriber(): Redis {
  const s = client.duplicate();
  s.on('error', () => undefined);
  subscribers.push(s);
  return s;
}

/** A near-cached store whose subscription is live (the cache stays off until it is). */
async function nearCachedStore(options: Partial<RedisStoreOptions> = {}): Promise<RedisStore> {
  const store = makeStore({ subscriber: subscriber(), ...options });
  await vi.waitFor(() => expect(store.stats().nearCacheEnabled).toBe(true), { timeout: 5000, interval: 2 });
  return store;
}

const cleanup = async (store: TokenStore) => {
  await deletePrefix(client, prefixes.get(store) as string);
};

describe.skipIf(!redisUp)('RedisStore on the shared Redis', () => {
  beforeAll(() => {
    client = redisClient();
  });
  afterAll(async () => {
    await deletePrefix(client, RUN);
    for (const s of subscribers) s.disconnect();
    client.disconnect();
  });

  // A client to a port nobody listens on: every call must fail within commandTimeout.
  const unreachable: Redis[] = [];
  const failingStore = async () => {
    const dead = new Redis({ host: '127.0.0.1', port: await freePort() });
    dead.on('error', () => undefined);
    unreachable.push(dead);
    return new RedisStore({ client: dead, prefix: RUN });
  };
  afterAll(() => unreachable.forEach((c) => c.disconnect()));

  storeConformance('RedisStore', () => makeStore(), { describe, it, expect }, { cleanup, failingStore, lifecycle: true });
  storeConformance('RedisStore with near-cache', () => nearCachedStore(), { describe, it, expect }, { cleanup, lifecycle: true });

  describe('key layout', () => {
    it('puts the prefix and a per-token hash tag on every key, so one token’s keys share a slot', async () => {
      const store = makeStore();
      const prefix = prefixes.get(store) as string;
      await store.putApiKey({ id: 'key_1', hash: 'h1', prefix: 'tg_', subject: 'svc', scopes: [], createdAt: T0, expiresAt: null });
      await store.revoke('tok:{1}', { now: T0, expiresAt: T0 + 60_000 });
      await store.revokeSubject('alice', { now: T0, before: T0 });
      await store.consume(
        'tok:{1}',
        [
          { name: 'policy', limit: 5, windowMs: 60_000 },
          { name: 'rule:0', limit: 2, windowMs: 1000 },
        ],
        T0,
      );
      store.recordUsage('tok:{1}', { at: T0 });
      await store.flush();
      const keys = await keysWithPrefix(client, prefix);
      expect(keys.map((k) => k.slice(prefix.length))).toEqual([
        '{i:key_1}',
        '{k:h1}',
        '{s:alice}:rev',
        '{t:tok%3a%7b1%7d}:rev',
        '{t:tok%3a%7b1%7d}:rl:policy',
        '{t:tok%3a%7b1%7d}:rl:rule%3a0',
        '{t:tok%3a%7b1%7d}:use',
        '{u:svc}',
      ]);
      // Cluster hashes only what is between the first { and the next }: one tag, one slot.
      expect(new Set(keys.filter((k) => k.includes('{t:')).map(hashTag))).toEqual(new Set(['t:tok%3a%7b1%7d']));
      await store.close();
    });

    it('gives a revocation a TTL of the token’s remaining life plus the clock-skew slack and keeps its exact times in the value', async () => {
      const store = makeStore();
      const prefix = prefixes.get(store) as string;
      await store.revoke('tok-1', { now: T0, expiresAt: T0 + 3_600_000 });
      await store.revokeSubject('alice', { now: T0, before: T0 - 5, expiresAt: T0 + 60_000 });
      const pttl = await client.pttl(`${prefix}{t:tok-1}:rev`);
      expect(pttl).toBeGreaterThan(3_600_000 + REVOCATION_TTL_SLACK_MS - 5_000);
      expect(pttl).toBeLessThanOrEqual(3_600_000 + REVOCATION_TTL_SLACK_MS);
      expect(JSON.parse((await client.get(`${prefix}{t:tok-1}:rev`)) as string)).toEqual({ at: T0, exp: T0 + 3_600_000 });
      expect(await client.pttl(`${prefix}{s:alice}:rev`)).toBeLessThanOrEqual(60_000 + REVOCATION_TTL_SLACK_MS);
      expect(JSON.parse((await client.get(`${prefix}{s:alice}:rev`)) as string)).toEqual({ before: T0 - 5, exp: T0 + 60_000 });
      await store.close();
    });

    it('keeps a revocation without an expiry with no TTL', async () => {
      const store = makeStore();
      await store.revoke('tok-1', { now: T0 });
      expect(await client.pttl(`${prefixes.get(store)}{t:tok-1}:rev`)).toBe(-1);
      await store.close();
    });

    it('keeps a one-time claim at prefix{o:<escaped key>}, holding its expiry, with a TTL to match', async () => {
      const store = makeStore();
      const prefix = prefixes.get(store) as string;
      expect(await store.claimOnce('dpop:{x}', { now: T0, expiresAt: T0 + 70_000 })).toBe(true);
      const keys = await keysWithPrefix(client, prefix);
      expect(keys.map((k) => k.slice(prefix.length))).toEqual(['{o:dpop%3a%7bx%7d}']);
      expect(await client.get(keys[0] as string)).toBe(String(T0 + 70_000));
      const pttl = await client.pttl(keys[0] as string);
      expect(pttl).toBeGreaterThan(70_000 - 5_000);
      expect(pttl).toBeLessThanOrEqual(70_000);
      await store.close();
    });

    it('stores nothing for a claim whose expiry has already passed', async () => {
      const store = makeStore();
      expect(await store.claimOnce('dpop:late', { now: T0, expiresAt: T0 - 1 })).toBe(true);
      expect(await keysWithPrefix(client, prefixes.get(store) as string)).toEqual([]);
      await store.close();
    });

    it('lets a counter expire once its TAT is reached, plus a minute of slack for the caller’s clock', async () => {
      const store = makeStore();
      await store.consume('tok-1', [{ name: 'policy', limit: 10, windowMs: 60_000 }], T0);
      const key = `${prefixes.get(store)}{t:tok-1}:rl:policy`;
      const pttl = await client.pttl(key);
      expect(pttl).toBeGreaterThan(60_000);
      expect(pttl).toBeLessThanOrEqual(66_000);
      // Whole ms plus the remainder in 1/limit ms, and the limit it is counted in.
      expect(await client.get(key)).toBe(`${T0 + 6000}:0:10`);
      await store.close();
    });
  });

  it('reproduces gcra.ts exactly when a counter’s limit and window change between calls (a policy redeployed)', async () => {
    const redis = makeStore({ commandTimeout: 5000 }); // a loaded machine must not fail 400 calls in a row
    const memory = new MemoryStore();
    const rand = lcg(7);
    let now = T0;
    for (let i = 0; i < 400; i++) {
      now += Math.floor(rand() * 50);
      const check = { name: 'policy', limit: 1 + Math.floor(rand() * 40), windowMs: [999, 1000, 1001, 7000][Math.floor(rand() * 4)] as number };
      expect(await redis.consume('tok-a', [check], now)).toEqual(memory.consume('tok-a', [check], now));
    }
    await redis.close();
  });

  it('reads a counter written by an earlier version (a bare float TAT) rounded up to whole ms', async () => {
    const store = makeStore({ commandTimeout: 5000 });
    const key = `${prefixes.get(store)}{t:tok-1}:rl:policy`;
    // As the float GCRA left it: 3 of 7 per 1001 ms taken at T0.
    await client.set(key, String(T0 + (3 * 1001) / 7), 'PX', 60_000);
    const r = await store.consume('tok-1', [{ name: 'policy', limit: 7, windowMs: 1001 }], T0);
    // Read as T0 + 429 ms (429 ≥ 3 × 143): the 4th request fits, 3 are left, nothing is gained from the rounding.
    expect(r).toEqual({ allowed: true, retryAfterMs: 0, limits: [{ name: 'policy', limit: 7, remaining: 3, resetMs: 572 }] });
    expect(await client.get(key)).toBe(`${T0 + 572}:0:7`);
    await store.close();
  });

  it('reproduces gcra.ts exactly: the same calls give the same results as MemoryStore, to the last bit', async () => {
    const redis = makeStore();
    const memory = new MemoryStore();
    const rand = lcg(42);
    let now = T0;
    const limits = [
      { name: 'policy', limit: 7, windowMs: 60_000 },
      { name: 'rule:0', limit: 3, windowMs: 1000 },
      { name: 'key', limit: 600, windowMs: 3_600_000 },
    ];
    for (let i = 0; i < 400; i++) {
      now += Math.floor(rand() * 400);
      const checks = limits.filter(() => rand() < 0.7);
      if (checks.length === 0) continue;
      const token = rand() < 0.8 ? 'tok-a' : 'tok-b';
      expect(await redis.consume(token, checks, now)).toEqual(memory.consume(token, checks, now));
    }
    await redis.close();
  });

  describe('garbage in Redis fails closed, through a real guard', () => {
    let store: RedisStore;
    let prefix: string;
    let events: DecisionEvent[];
    let app: express.Express;

    beforeAll(async () => {
      store = makeStore();
      prefix = prefixes.get(store) as string;
    });

    async function setup(extra: Parameters<typeof basePolicy>[0] = {}) {
      events = [];
      app = express();
      app.use(tokenGuard(await basePolicy({ store, onDecision: (e) => void events.push(e), ...extra })));
      app.get('/orders/:id', (_req, res) => void res.json({ ok: true }));
    }

    /** A valid API key stored in Redis, and the key its record lives at. */
    async function apiKey(): Promise<{ key: string; at: string }> {
      const issued = issueApiKey({ prefix: 'tg_', subject: 'svc', scopes: ['orders:read'], expiresIn: '30d', now: new Date(T0 - 1000) });
      await store.putApiKey(issued.record);
      return { key: issued.key, at: `${prefix}{k:${issued.record.hash}}` };
    }

    async function expectRefused(token: string, status: number, reason: string) {
      const res = await request(app).get('/orders/1').set('Authorization', `Bearer ${token}`);
      expect(res.status).toBe(status);
      expect(res.body.reason).toBe(reason);
      expect(events.at(-1)).toMatchObject({ reason, effect: 'deny', status });
      return events.at(-1) as DecisionEvent;
    }

    it('a string where an API key record should be (WRONGTYPE) → 503 store.unavailable', async () => {
      await setup();
      const { key, at } = await apiKey();
      await client.del(at);
      await client.set(at, 'garbage');
      const event = await expectRefused(key, 503, 'store.unavailable');
      expect(event.error?.message).toMatch(/WRONGTYPE/);
    });

    it('an API key record that is not JSON → 503 store.unavailable', async () => {
      await setup();
      const { key, at } = await apiKey();
      await client.hset(at, 'rec', '{"id": "key_1", "hash":');
      await expectRefused(key, 503, 'store.unavailable');
    });

    it('a parsable API key record of the wrong shape → 401 token.invalid', async () => {
      await setup();
      const { key, at } = await apiKey();
      await client.hset(at, 'rec', '{"id":42,"scopes":"orders:read"}');
      const event = await expectRefused(key, 401, 'token.invalid');
      expect(event.detail).toBe('API key record is malformed');
    });

    it('uses left that are not a number → 503 store.unavailable', async () => {
      await setup();
      const { key, at } = await apiKey();
      await client.hset(at, 'rem', 'plenty');
      await expectRefused(key, 503, 'store.unavailable');
    });

    it.each([
      ['unparsable JSON', (k: string) => client.set(k, '{"at":')],
      ['JSON of the wrong shape', (k: string) => client.set(k, '{"revoked":true}')],
      ['a hash (WRONGTYPE)', (k: string) => client.hset(k, 'at', '1')],
    ])('a token revocation entry holding %s → 503 store.unavailable, never an allow', async (_what, write) => {
      await setup();
      const jti = `jwt-garbage-${n++}`;
      await write(`${prefix}{t:${jti}}:rev`);
      await expectRefused(await signToken({ jti, scope: 'orders:read' }), 503, 'store.unavailable');
    });

    it('a subject revocation entry holding garbage → 503 store.unavailable', async () => {
      await setup();
      const sub = `sub-garbage-${n++}`;
      await client.set(`${prefix}{s:${sub}}:rev`, 'not json');
      await expectRefused(await signToken({ jti: `jwt-${n++}`, scope: 'orders:read' }, { sub }), 503, 'store.unavailable');
    });

    it.each([
      ['not a number', (k: string) => client.set(k, 'soon')],
      ['a list (WRONGTYPE)', (k: string) => client.rpush(k, '1')],
      ['a remainder not below its limit', (k: string) => client.set(k, `${T0}:10:10`)],
      ['a limit of 0', (k: string) => client.set(k, `${T0}:0:0`)],
      ['inf', (k: string) => client.set(k, 'inf')],
    ])('a rate-limit counter holding %s → 503 store.unavailable', async (_what, write) => {
      await setup({ rateLimit: { limit: 10, window: '1m' } });
      const jti = `jwt-counter-${n++}`;
      await write(`${prefix}{t:${jti}}:rl:policy`);
      await expectRefused(await signToken({ jti, scope: 'orders:read' }), 503, 'store.unavailable');
    });

    it('the same token is allowed once the garbage is gone', async () => {
      await setup({ rateLimit: { limit: 10, window: '1m' } });
      const jti = `jwt-heal-${n++}`;
      await client.set(`${prefix}{t:${jti}}:rev`, '{');
      const token = await signToken({ jti, scope: 'orders:read' });
      await expectRefused(token, 503, 'store.unavailable');
      await client.del(`${prefix}{t:${jti}}:rev`);
      expect((await request(app).get('/orders/1').set('Authorization', `Bearer ${token}`)).status).toBe(200);
    });

    it('revoke refuses to overwrite a revocation entry it cannot read', async () => {
      const jti = `jwt-overwrite-${n++}`;
      await client.set(`${prefix}{t:${jti}}:rev`, '[1,2');
      await expect(store.revoke(jti, { now: T0 })).rejects.toThrow(StoreError);
      expect(await client.get(`${prefix}{t:${jti}}:rev`)).toBe('[1,2');
    });

    it.each([
      ['not a number', (k: string) => client.set(k, 'later')],
      ['a hash (WRONGTYPE)', (k: string) => client.hset(k, 'exp', '1')],
    ])('claimOnce on a claim holding %s rejects with StoreError and leaves it, never granting the claim', async (_what, write) => {
      const id = `garbage-${n++}`;
      const at = `${prefix}{o:dpop%3a${id}}`;
      await write(at);
      await expect(store.claimOnce(`dpop:${id}`, { now: T0, expiresAt: T0 + 60_000 })).rejects.toThrow(StoreError);
      expect(await client.exists(at)).toBe(1);
    });

    it('regression (L4): a record whose JSON carries remaining but has no rem field → 503 on every use, never unlimited uses', async () => {
      await setup({ trackUsage: false });
      const issued = issueApiKey({ prefix: 'tg_', subject: 'svc', scopes: ['orders:read'], expiresIn: '30d', uses: 1, now: new Date(T0 - 1000) });
      // The record as another writer (a migration, an older tool) stores it: uses inside the JSON, no `rem` field.
      await client.hset(`${prefix}{k:${issued.record.hash}}`, 'rec', JSON.stringify(issued.record));
      for (let i = 0; i < 3; i++) await expectRefused(issued.key, 503, 'store.unavailable');
    });

    it('regression (L4): useApiKey on a record whose JSON carries remaining rejects instead of answering unlimited', async () => {
      const issued = issueApiKey({ prefix: 'tg_', subject: 'svc', scopes: [], expiresIn: '30d', uses: 5, now: new Date(T0) });
      await client.hset(`${prefix}{k:${issued.record.hash}}`, 'rec', JSON.stringify(issued.record));
      await expect(store.useApiKey(issued.record.hash)).rejects.toThrow(StoreError);
      await expect(store.getApiKey(issued.record.hash)).rejects.toThrow(StoreError);
    });

    it('a record whose JSON carries remaining is refused even with a rem field, and by updateApiKey (which would drop it)', async () => {
      const issued = issueApiKey({ prefix: 'tg_', subject: 'svc', scopes: [], expiresIn: '30d', uses: 5, now: new Date(T0) });
      const at = `${prefix}{k:${issued.record.hash}}`;
      await client.hset(at, 'rec', JSON.stringify(issued.record), 'rem', '5');
      await expect(store.getApiKey(issued.record.hash)).rejects.toThrow(StoreError);
      await client.hdel(at, 'rem');
      const before = await client.hget(at, 'rec');
      await expect(store.updateApiKey(issued.record.hash, { name: 'renamed' })).rejects.toThrow(StoreError);
      expect(await client.hget(at, 'rec')).toBe(before);
      // putApiKey is the repair: it splits the uses out into rem again.
      await store.putApiKey(issued.record);
      expect(await store.useApiKey(issued.record.hash)).toBe(4);
    });

    it('a metadata field named remaining is just metadata: the key stays unlimited', async () => {
      const issued = issueApiKey({ prefix: 'tg_', subject: 'svc', scopes: [], expiresIn: '30d', metadata: { remaining: 3 }, now: new Date(T0) });
      await store.putApiKey(issued.record);
      expect((await store.getApiKey(issued.record.hash))?.metadata).toEqual({ remaining: 3 });
      expect(await store.useApiKey(issued.record.hash)).toBeUndefined();
    });

    it('getUsage of a malformed usage hash throws StoreError', async () => {
      await client.hset(`${prefix}{t:tok-usage}:use`, 'count', 'many');
      await expect(store.getUsage('tok-usage')).rejects.toThrow(StoreError);
    });
  });

  it('two stores with distinct prefixes on one Redis never see each other’s state', async () => {
    const base = `${RUN}${n++}:`;
    // One prefix extends the other: the brace after the prefix still keeps them apart.
    const a = new RedisStore({ client, prefix: `${base}app:` });
    const b = new RedisStore({ client, prefix: `${base}app:x:` });
    const rec = { id: 'key_1', hash: 'h1', prefix: 'tg_', subject: 'svc', scopes: ['a'], createdAt: T0, expiresAt: null, remaining: 3 };
    await a.putApiKey(rec);
    await a.revoke('tok-1', { now: T0 });
    await a.revokeSubject('alice', { now: T0, before: T0 });
    for (let i = 0; i < 2; i++) await a.consume('tok-1', [{ name: 'policy', limit: 2, windowMs: 60_000 }], T0);
    a.recordUsage('tok-1', { at: T0 });
    await a.flush();

    expect(await b.getApiKey('h1')).toBeUndefined();
    expect(await b.useApiKey('h1')).toBeUndefined();
    expect(await b.getRevocation('tok-1', 'alice', T0)).toBeUndefined();
    expect((await b.consume('tok-1', [{ name: 'policy', limit: 2, windowMs: 60_000 }], T0)).limits[0]?.remaining).toBe(1);
    expect(await b.getUsage('tok-1')).toBeUndefined();
    // And a is untouched by b's writes.
    expect((await a.getApiKey('h1'))?.remaining).toBe(3);
    expect((await a.consume('tok-1', [{ name: 'policy', limit: 2, windowMs: 60_000 }], T0)).allowed).toBe(false);
    // Record, its id and subject index entries, two revocations, a counter, usage.
    expect((await keysWithPrefix(client, `${base}app:`)).filter((k) => !k.startsWith(`${base}app:x:`)).length).toBe(7);
    expect((await keysWithPrefix(client, `${base}app:x:`)).length).toBe(1);
    await Promise.all([a.close(), b.close()]);
  });

  it('two instances on one prefix, each on its own connection: of 100 parallel claims of one key, exactly one wins', async () => {
    const prefix = `${RUN}${n++}:`;
    const other = redisClient();
    const a = new RedisStore({ client, prefix });
    const b = new RedisStore({ client: other, prefix });
    try {
      const window = { now: T0, expiresAt: T0 + 60_000 };
      const results = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 ? a : b).claimOnce('dpop:shared', window)));
      expect(results.filter(Boolean).length).toBe(1);
      expect(await a.claimOnce('dpop:shared', window)).toBe(false);
      expect(await b.claimOnce('dpop:shared', window)).toBe(false);
    } finally {
      await Promise.all([a.close(), b.close()]);
      other.disconnect();
    }
  });

  describe('near-cache', () => {
    it('answers a repeated revocation lookup locally, synchronously', async () => {
      const store = await nearCachedStore();
      expect(await store.getRevocation('tok-1', 'alice', T0)).toBeUndefined();
      const second = store.getRevocation('tok-1', 'alice', T0);
      expect(second).toBeUndefined();
      expect(store.stats()).toMatchObject({ nearCacheHits: 1, nearCacheMisses: 1 });
      await store.close();
    });

    it('a revoke on one instance resolves only after the other instance dropped its cached lookup', async () => {
      const prefix = `${RUN}${n++}:`;
      const a = new RedisStore({ client, prefix, subscriber: subscriber() });
      const b = new RedisStore({ client: redisClient(), prefix, subscriber: subscriber() });
      await vi.waitFor(() => expect(a.stats().nearCacheEnabled && b.stats().nearCacheEnabled).toBe(true));
      expect(await b.getRevocation('tok-1', 'alice', T0)).toBeUndefined();
      expect(b.getRevocation('tok-1', 'alice', T0)).toBeUndefined(); // now cached
      await a.revoke('tok-1', { now: T0, expiresAt: T0 + 60_000 });
      // No waiting: the very next lookup on b sees the revocation.
      expect(await b.getRevocation('tok-1', 'alice', T0)).toEqual({ revokedAt: T0 });
      await a.revokeSubject('alice', { now: T0, before: T0 + 1 });
      expect(await b.getRevocation('tok-1', 'alice', T0)).toEqual({ revokedAt: T0, subjectRevokedBefore: T0 + 1 });
      expect(b.stats().invalidations).toBe(2);
      await Promise.all([a.close(), b.close()]);
    });

    it('revoke rejects with StoreError when a listening instance does not confirm, yet the revocation is stored', async () => {
      const prefix = `${RUN}${n++}:`;
      const silent = subscriber();
      await silent.subscribe(`${prefix}{c}:inv`); // listens, never answers
      const a = new RedisStore({ client, prefix, subscriber: subscriber(), confirmTimeout: 100 });
      await vi.waitFor(() => expect(a.stats().nearCacheEnabled).toBe(true));
      await expect(a.revoke('tok-1', { now: T0 })).rejects.toThrow(/1 of 2 instance\(s\) did not confirm/);
      expect(await a.getRevocation('tok-1', undefined, T0)).toEqual({ revokedAt: T0 });
      await silent.unsubscribe();
      await a.close();
    });

    it('stores sharing one subscriber answer once for it: a revoke still waits for every other connection', async () => {
      const prefix = `${RUN}${n++}:`;
      const silent = subscriber();
      await silent.subscribe(`${prefix}{c}:inv`); // another connection: listens, never answers
      const shared = subscriber();
      const a = new RedisStore({ client, prefix, subscriber: shared, confirmTimeout: 100 });
      const b = new RedisStore({ client, prefix, subscriber: shared, confirmTimeout: 100 });
      await vi.waitFor(() => expect(a.stats().nearCacheEnabled && b.stats().nearCacheEnabled).toBe(true));
      // Two connections listen; a's echo and b's answer both come from the shared one, which is one of them.
      await expect(a.revoke('tok-1', { now: T0 })).rejects.toThrow(/1 of 2 instance\(s\) did not confirm/);
      await expect(b.revoke('tok-2', { now: T0 })).rejects.toThrow(/1 of 2 instance\(s\) did not confirm/);
      await silent.unsubscribe();
      await Promise.all([a.close(), b.close()]);
    });

    it('closing one of two stores on a shared subscriber leaves the other subscribed: it still hears revocations', async () => {
      const prefix = `${RUN}${n++}:`;
      const shared = subscriber();
      const a = new RedisStore({ client, prefix, subscriber: shared });
      const b = new RedisStore({ client, prefix, subscriber: shared });
      const other = new RedisStore({ client: redisClient(), prefix, subscriber: subscriber() });
      await vi.waitFor(() => expect(a.stats().nearCacheEnabled && b.stats().nearCacheEnabled && other.stats().nearCacheEnabled).toBe(true));
      await a.close();
      expect(await b.getRevocation('tok-3', undefined, T0)).toBeUndefined();
      expect(b.getRevocation('tok-3', undefined, T0)).toBeUndefined(); // cached
      await other.revoke('tok-3', { now: T0 });
      expect(await b.getRevocation('tok-3', undefined, T0)).toEqual({ revokedAt: T0 });
      await Promise.all([b.close(), other.close()]);
    });

    it('a dozen stores on one subscriber raise no MaxListenersExceededWarning, and give the room back on close', async () => {
      const warnings: string[] = [];
      const onWarning = (w: Error) => warnings.push(w.name);
      process.on('warning', onWarning);
      const shared = subscriber();
      const before = shared.getMaxListeners();
      try {
        const stores = Array.from({ length: 12 }, () => new RedisStore({ client, prefix: `${RUN}${n++}:`, subscriber: shared }));
        await vi.waitFor(() => expect(stores.every((s) => s.stats().nearCacheEnabled)).toBe(true));
        // Each one still hears its own revocations.
        await (stores[11] as RedisStore).revoke('tok-12', { now: T0 });
        for (const s of stores) await s.close();
        await (stores[0] as RedisStore).close();
        // A warning is emitted on the next tick: one more turn for it to show up.
        await new Promise<void>((r) => setImmediate(r));
        expect(warnings).not.toContain('MaxListenersExceededWarning');
        expect(shared.getMaxListeners()).toBe(before);
      } finally {
        process.off('warning', onWarning);
      }
    });

    it('a pattern subscriber (a debugging PSUBSCRIBE *) is not waited for', async () => {
      const prefix = `${RUN}${n++}:`;
      const watcher = subscriber();
      await watcher.psubscribe('*');
      const a = new RedisStore({ client, prefix, subscriber: subscriber(), confirmTimeout: 100 });
      await vi.waitFor(() => expect(a.stats().nearCacheEnabled).toBe(true));
      await a.revoke('tok-1', { now: T0 });
      expect(await a.getRevocation('tok-1', undefined, T0)).toEqual({ revokedAt: T0 });
      await watcher.punsubscribe();
      await a.close();
    });

    it('stops using the cache while its subscriber is disconnected, and resumes after it reconnects', async () => {
      const sub = subscriber();
      const store = makeStore({ subscriber: sub });
      await vi.waitFor(() => expect(store.stats().nearCacheEnabled).toBe(true));
      await store.getRevocation('tok-1', undefined, T0);
      sub.disconnect();
      await vi.waitFor(() => expect(store.stats().nearCacheEnabled).toBe(false));
      // A revocation the disconnected subscriber cannot hear about is still seen.
      await new RedisStore({ client, prefix: prefixes.get(store) as string }).revoke('tok-1', { now: T0 });
      expect(await store.getRevocation('tok-1', undefined, T0)).toEqual({ revokedAt: T0 });
      await sub.connect();
      await vi.waitFor(() => expect(store.stats().nearCacheEnabled).toBe(true));
      await store.close();
    });

    it('a store without a subscriber has no near-cache and still notifies near-cached instances', async () => {
      const prefix = `${RUN}${n++}:`;
      const admin = new RedisStore({ client, prefix });
      const b = new RedisStore({ client, prefix, subscriber: subscriber() });
      await vi.waitFor(() => expect(b.stats().nearCacheEnabled).toBe(true));
      await b.getRevocation('tok-1', undefined, T0);
      await admin.revoke('tok-1', { now: T0 });
      await vi.waitFor(() => expect(b.stats().invalidations).toBe(1));
      expect(await b.getRevocation('tok-1', undefined, T0)).toEqual({ revokedAt: T0 });
      expect(admin.stats().nearCacheEnabled).toBe(false);
      await Promise.all([admin.close(), b.close()]);
    });
  });

  describe('usage write-behind', () => {
    it('writes buffered usage once usageBatchSize distinct tokens are waiting', async () => {
      const store = makeStore({ usageBatchSize: 3, usageFlushInterval: 3_600_000 });
      store.recordUsage('tok-1', { at: T0 });
      store.recordUsage('tok-2', { at: T0 });
      expect(store.stats().usageBuffered).toBe(2);
      store.recordUsage('tok-3', { at: T0 });
      await vi.waitFor(async () => expect(await store.getUsage('tok-3')).toMatchObject({ count: 1, lastUsedAt: T0 }));
      expect(store.stats().usageBuffered).toBe(0);
      await store.close();
    });

    it('writes buffered usage within usageFlushInterval without a flush call', async () => {
      const store = makeStore({ usageFlushInterval: 20 });
      store.recordUsage('tok-1', { at: T0, ip: '203.0.113.9' });
      expect(await store.getUsage('tok-1')).toBeUndefined();
      await vi.waitFor(async () => expect(await store.getUsage('tok-1')).toMatchObject({ count: 1, lastUsedAt: T0, lastIp: '203.0.113.9' }));
      await store.close();
    });

    it('close flushes and leaves the app’s clients connected', async () => {
      const sub = subscriber();
      const store = makeStore({ subscriber: sub });
      store.recordUsage('tok-1', { at: T0 });
      await store.close();
      expect(await store.getUsage('tok-1')).toMatchObject({ count: 1, lastUsedAt: T0 });
      expect(client.status).toBe('ready');
      expect(await client.ping()).toBe('PONG');
      expect(sub.status).toBe('ready');
    });
  });

  describe('options', () => {
    it.each([
      ['no client', { client: undefined }],
      ['a client that is not ioredis', { client: {} }],
      ['a prefix with a brace', { prefix: 'app{1}:' }],
      ['a zero commandTimeout', { commandTimeout: 0 }],
      ['a negative usageTtl', { usageTtl: -1 }],
    ])('throws TypeError for %s', (_what, options) => {
      expect(() => new RedisStore({ client, ...options } as RedisStoreOptions & { client: never })).toThrow(TypeError);
    });

    it('throws TypeError when the subscriber is the command client itself', () => {
      expect(() => new RedisStore({ client, subscriber: client })).toThrow(TypeError);
    });

    it('throws TypeError for a non-integer remaining rather than storing it', async () => {
      const store = makeStore();
      await expect(store.putApiKey({ id: 'k', hash: 'h', prefix: 'tg_', subject: 's', scopes: [], createdAt: T0, expiresAt: null, remaining: 1.5 })).rejects.toThrow(TypeError);
      await store.close();
    });
  });
});

// What Redis Cluster hashes a key by: the text between its first { and the next }.
function hashTag(key: string): string {
  const open = key.indexOf('{');
  const close = key.indexOf('}', open + 1);
  return key.slice(open + 1, close);
}

describe('the built token-guard/redis', () => {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  it('loads (ESM and CJS) without ioredis installed, since it only uses ioredis types', () => {
    expect(existsSync(`${root}dist/redis.js`), 'dist/redis.js is missing: run `npm run build` first').toBe(true);
    // A resolve hook (ESM) and a resolver patch (CJS) make `ioredis` unresolvable, as in an app without it.
    const script = `
      const { register, Module } = await import('node:module');
      register('data:text/javascript,' + encodeURIComponent('export async function resolve(s, c, next) { if (s === "ioredis" || s.startsWith("ioredis/")) throw new Error("ioredis absent"); return next(s, c); }'));
      const resolve = Module._resolveFilename;
      Module._resolveFilename = function (s, ...rest) { if (s === 'ioredis' || s.startsWith('ioredis/')) throw new Error('ioredis absent'); return resolve.call(this, s, ...rest); };
      const esm = await import(${JSON.stringify(`${root}dist/redis.js`)});
      const cjs = Module.createRequire(${JSON.stringify(root)})(${JSON.stringify(`${root}dist/redis.cjs`)});
      let probe = 'no';
      try { await import('ioredis'); } catch { probe = 'hidden'; }
      console.log(typeof esm.RedisStore, typeof cjs.RedisStore, probe);
    `;
    const out = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' });
    expect(out.stderr).toBe('');
    expect(out.stdout.trim()).toBe('function function hidden');
  });
});
