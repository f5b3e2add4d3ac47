// Regression: under `durability: 'require'` RedisStore held back the answer of a call until its verdict on the server's
// settings, but not the command: the ioredis command (or Lua script) was already sent when the gate saw it. So before
// the verdict and after a refusal, useApiKey spent uses, claimOnce, consume and revoke wrote to Redis, and close()
// flushed usage it then reported as dropped, while every caller was told the call failed (a retry spent a key's use
// twice, and a refusing store kept spending on every 503). Now no command is sent until the gate is open: a refused,
// unverified or timed-out call never reaches Redis. Also: read-through lookups (composeStores with the RedisStore as
// cache) answered from the durable store for keys but threw (503) for revocations after a refusal; both now go to the
// durable store alone, as when Redis is down, and write nothing to Redis.
// Against the shared Redis, which runs as a stock one (appendonly no), read directly with its own connection.
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  type ApiKeyRecord,
  composeStores,
  createGuard,
  issueApiKey,
  type LifecycleEvent,
  MemoryStore,
  type RevokeOptions,
  type RevokeSubjectOptions,
} from '../../src/index.js';
import { RedisDurabilityError, RedisStore } from '../../src/stores/redis.js';
import { keysWithPrefix, redisClient, stockRedisFor, useSharedRedis } from '../helpers/redis.js';
import { jwtPolicy, NOW, signToken } from '../helpers/tokens.js';
import { afterRejectionsAreReported, collectUnhandledRejections } from '../helpers/unhandled.js';

const stockRedis = await stockRedisFor('redis-durability-unsent');

const T0 = NOW.getTime();
const MINUTE = 60_000;
/** What a server that keeps everything answers to CONFIG GET. */
const SAFE: Record<string, string> = { 'maxmemory-policy': 'noeviction', maxmemory: '0', appendonly: 'yes', appendfsync: 'everysec', save: '' };

describe.skipIf(!stockRedis)("RedisStore durability: 'require' sends nothing it may not write", () => {
  const redis = useSharedRedis('redis-durability-unsent');
  const unhandled = collectUnhandledRejections();
  let n = 0;
  const stores: RedisStore[] = [];
  const clients: Redis[] = [];

  afterEach(async () => {
    vi.useRealTimers();
    vi.restoreAllMocks();
    await Promise.all(stores.splice(0).map((s) => s.close()));
    for (const c of clients.splice(0)) c.disconnect();
    await afterRejectionsAreReported();
    expect(unhandled).toEqual([]);
  });

  /**
   * A connection whose CONFIG GETs (the store's check) wait for `release`: the real server's answer (stock: refused),
   * or `SAFE`'s (a pass). Mocked before the store is made, so its check is held from the start.
   */
  function heldCheck(client: Redis): { release: (answer?: 'real' | 'safe') => void } {
    let release!: (answer: 'real' | 'safe') => void;
    const released = new Promise<'real' | 'safe'>((resolve) => (release = resolve));
    const config = client.config.bind(client) as (...args: unknown[]) => Promise<unknown>;
    vi.spyOn(client, 'config').mockImplementation(((...args: unknown[]) =>
      released.then((answer) => (answer === 'safe' ? [args[1], SAFE[args[1] as string] ?? ''] : config(...args)))) as never);
    return { release: (answer = 'real') => release(answer) };
  }

  /** A 'require' store on a connection of its own, under a fresh prefix, with a key of 3 uses already in Redis. */
  async function setUp(options: { hold?: boolean; commandTimeout?: number; subscriber?: boolean } = {}) {
    const prefix = `${redis.prefix}${++n}:`;
    const seed = new RedisStore({ client: redis.client, prefix, durability: 'ignore' });
    const { record } = issueApiKey({ prefix: 'tg_', subject: 'alice', scopes: [], expiresIn: '1d', uses: 3, now: NOW });
    // And one for deleteApiKey to delete.
    const victim = issueApiKey({ prefix: 'tg_', subject: 'erin', scopes: [], expiresIn: '1d', now: NOW }).record;
    await seed.putApiKey(record);
    await seed.putApiKey(victim);
    await seed.close();
    const client = redisClient();
    clients.push(client);
    await client.ping();
    const subscriber = options.subscriber ? redisClient() : undefined;
    if (subscriber) clients.push(subscriber);
    const held = options.hold ? heldCheck(client) : undefined;
    const store = new RedisStore({
      client,
      prefix,
      durability: 'require',
      commandTimeout: options.commandTimeout ?? 5000,
      ...(subscriber && { subscriber }),
    });
    stores.push(store);
    const before = await keysWithPrefix(redis.client, prefix);
    return { prefix, record, victim, client, store, held, before };
  }

  /** What Redis holds under `prefix`, read directly: every key, and the key record's uses left. */
  async function inRedis(prefix: string, record: ApiKeyRecord) {
    const keys = await keysWithPrefix(redis.client, prefix);
    const hashKey = keys.find((k) => k === `${prefix}{k:${record.hash}}`);
    return { keys, usesLeft: hashKey === undefined ? null : await redis.client.hget(hashKey, 'rem') };
  }

  /** Every kind of write the store makes, each one call. */
  function writeEverything(store: RedisStore, record: ApiKeyRecord, victim: ApiKeyRecord): Promise<unknown>[] {
    const other = issueApiKey({ prefix: 'tg_', subject: 'bob', scopes: [], expiresIn: '1d', now: NOW }).record;
    const event: LifecycleEvent = { id: 'evt_unsent1', type: 'key.issued', at: T0, subject: 'alice', tokenId: record.id };
    const revokeToken: RevokeOptions = { now: T0, expiresAt: T0 + MINUTE };
    const revokeSubject: RevokeSubjectOptions = { now: T0, before: T0 };
    store.recordUsage('tok-1', { at: T0, ip: '203.0.113.9', userAgent: 'ua' });
    return [
      store.useApiKey(record.hash),
      store.claimOnce('proof-1', { now: T0, expiresAt: T0 + MINUTE }),
      store.claimOnce('proof-2', { now: T0, expiresAt: T0 + MINUTE, group: 'jkt-1', maxPerGroup: 10 }),
      store.consume('tok-1', [{ name: 'policy', limit: 2, windowMs: MINUTE }], T0),
      store.revoke('jti-1', revokeToken),
      store.revokeSubject('carol', revokeSubject),
      store.putApiKey(other),
      store.updateApiKey(record.hash, { name: 'renamed' }),
      store.deleteApiKey(victim.hash),
      store.appendLifecycleEvent(event),
      store.invalidateApiKey(victim.hash),
      store.flush(),
    ];
  }

  it('before the verdict nothing is sent: writes made while the check is out leave Redis untouched, then fail with the refusal', async () => {
    const { prefix, record, victim, client, store, held, before } = await setUp({ hold: true });
    const calls = writeEverything(store, record, victim).map((p) =>
      p.then(
        () => 'written',
        (e: unknown) => e,
      ),
    );
    // Anything already sent on this connection has been run by Redis once this PING answers.
    await client.ping();
    expect(await inRedis(prefix, record)).toEqual({ keys: before, usesLeft: '3' });
    held?.release();
    for (const outcome of await Promise.all(calls)) expect(outcome).toBeInstanceOf(RedisDurabilityError);
    await client.ping();
    expect(await inRedis(prefix, record)).toEqual({ keys: before, usesLeft: '3' });
  });

  it('after a refusal nothing is sent: every write fails unsent, also when retried, and close() drops usage without writing it', async () => {
    const { prefix, record, victim, client, store, before } = await setUp({ subscriber: true });
    await expect(store.ready()).rejects.toMatchObject({ name: 'RedisDurabilityError', report: { verdict: 'refused' } });
    for (let attempt = 0; attempt < 2; attempt++) {
      for (const outcome of await Promise.all(
        writeEverything(store, record, victim).map((p) =>
          p.then(
            () => 'written',
            (e: unknown) => e,
          ),
        ),
      )) {
        expect(outcome).toBeInstanceOf(RedisDurabilityError);
      }
    }
    store.recordUsage('tok-2', { at: T0, ip: '203.0.113.9' });
    await store.close();
    // One use per flush above (each refused), one at close.
    expect(store.stats()).toMatchObject({ usageBuffered: 0, usageDropped: 3 });
    await client.ping();
    expect(await inRedis(prefix, record)).toEqual({ keys: before, usesLeft: '3' });
    // Its subscriber left the channels all the same (UNSUBSCRIBE writes nothing, so it never waits for the verdict).
    const [, listening] = (await redis.client.pubsub('NUMSUB', `${prefix}{c}:inv`)) as [string, number];
    expect(listening).toBe(0);
  });

  it('a call that gave up waiting for the verdict is never sent later, even when the check then passes', async () => {
    // Fake from before the store is made: the check's own timer is one of them, and never runs out here.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { prefix, record, client, store, held } = await setUp({ hold: true, commandTimeout: 250 });
    const use = store.useApiKey(record.hash).then(
      () => 'spent',
      (e: unknown) => e,
    );
    await vi.advanceTimersByTimeAsync(250);
    expect(await use).toMatchObject({ name: 'StoreError', message: 'Redis use timed out after 250 ms' });
    held?.release('safe');
    expect(await store.ready()).toMatchObject({ verdict: 'passed', checked: true });
    await client.ping();
    expect((await inRedis(prefix, record)).usesLeft).toBe('3');
    // The gate is open now: a call is sent, and spends one use.
    expect(await store.useApiKey(record.hash)).toBe(2);
    expect((await inRedis(prefix, record)).usesLeft).toBe('2');
  });

  it('a call admitted with less than half its bound left fails unsent: a write never lands after its caller was told it timed out', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { prefix, record, client, store, held } = await setUp({ hold: true, commandTimeout: 250 });
    const use = store.useApiKey(record.hash).then(
      () => 'spent',
      (e: unknown) => e,
    );
    // The verdict comes 1 ms before the call's bound: sent now, Redis's reply would come after the caller gave up.
    await vi.advanceTimersByTimeAsync(249);
    held?.release('safe');
    expect(await store.ready()).toMatchObject({ verdict: 'passed' });
    expect(await use).toMatchObject({ name: 'StoreError', message: expect.stringContaining('not sent') });
    await client.ping();
    expect((await inRedis(prefix, record)).usesLeft).toBe('3');
  });

  it('a revoke waiting for the verdict when close() begins is never sent, even when the verdict then passes', async () => {
    for (const subscriber of [false, true]) {
      const { prefix, record, store, held } = await setUp({ hold: true, commandTimeout: 5000, subscriber });
      // Something for close() to flush: close() then waits on the gate, which the verdict opens meanwhile.
      store.recordUsage('tok-1', { at: T0 });
      const revoke = store.revoke('jti-after-close', { now: T0, expiresAt: T0 + MINUTE }).then(
        () => 'stored',
        (e: unknown) => (e as Error).message,
      );
      await new Promise((r) => setImmediate(r));
      const closing = store.close();
      await new Promise((r) => setImmediate(r));
      held?.release('safe');
      await closing;
      expect([subscriber, await revoke]).toEqual([subscriber, 'RedisStore is closed: the revocation was not stored']);
      expect((await inRedis(prefix, record)).keys.filter((k) => k.includes('jti-after-close'))).toEqual([]);
    }
  });

  it('read through a refused cache, keys and revocations alike come from the durable store alone, and nothing is written to Redis', async () => {
    const { prefix, client, store, held, before } = await setUp({ hold: true });
    // A durable store as composeStores needs it (PostgresStore's shape): records, and revocations with their entries.
    const memory = new MemoryStore();
    const revoked = new Map<string, number>();
    const durable = {
      getApiKey: (hash: string) => memory.getApiKey(hash),
      putApiKey: (r: ApiKeyRecord) => memory.putApiKey(r),
      updateApiKey: memory.updateApiKey.bind(memory),
      deleteApiKey: (hash: string) => memory.deleteApiKey(hash),
      useApiKey: (hash: string) => memory.useApiKey(hash),
      revoke: async (id: string, o: RevokeOptions) => void revoked.set(id, o.now),
      revokeSubject: async () => undefined,
      getRevocation: async (id: string) => (revoked.has(id) ? { revokedAt: revoked.get(id) as number } : undefined),
      getRevocationEntries: async (id: string) => ({ token: revoked.has(id) ? { time: revoked.get(id) as number, expiresAt: null } : null, subject: null }),
    };
    const composed = composeStores({ keys: durable, revocations: durable, counters: memory, claims: memory, usage: memory, cache: store });
    const { record } = issueApiKey({ prefix: 'tg_', subject: 'dave', scopes: [], expiresIn: '1d', now: NOW });
    await durable.putApiKey(record);
    await durable.revoke('jti-revoked', { now: T0 });

    // Before the verdict: each lookup waits for it (within commandTimeout), and the refusal sends it to the durable store.
    const early = Promise.all([composed.getApiKey(record.hash), composed.getRevocation('jti-revoked', 'dave', T0)]);
    await client.ping();
    held?.release();
    expect(await early).toEqual([expect.objectContaining({ id: record.id }), { revokedAt: T0 }]);
    await expect(store.ready()).rejects.toMatchObject({ report: { verdict: 'refused' } });

    // After it: the same, for both lookups (getRevocationThrough threw RedisDurabilityError, so the guard answered 503).
    expect(await composed.getApiKey(record.hash)).toMatchObject({ id: record.id });
    expect(await composed.getRevocation('jti-revoked', 'dave', T0)).toEqual({ revokedAt: T0 });
    expect(await composed.getRevocation('jti-fine', 'dave', T0)).toBeUndefined();
    const guard = createGuard({ jwt: await jwtPolicy(), store: composed, unmatched: 'authenticate', clock: () => NOW, trackUsage: false });
    const evaluate = async (jti: string) =>
      guard.evaluate({ method: 'GET', path: '/orders/1', headers: { authorization: `Bearer ${await signToken({ jti }, { sub: 'dave' })}` }, remoteAddress: '203.0.113.9' });
    expect(await evaluate('jti-revoked')).toMatchObject({ effect: 'deny', status: 401, reason: 'token.revoked' });
    expect(await evaluate('jti-fine')).toMatchObject({ effect: 'allow', status: 200 });

    await client.ping();
    expect(await keysWithPrefix(redis.client, prefix)).toEqual(before);
    await composed.close?.();
  });
});
