// Regression: the `keys` and `revoke` commands could only reach a Redis, so with the layout docs/durable-state.md
// recommends (PostgreSQL durable, Redis in front) `keys list` saw none of the keys, `keys revoke` found none, and
// `revoke token` wrote only the Redis cache: once Redis lost it, a compromised key worked again. With `--policy FILE`
// they act on the policy module's own store, so each change lands where the app keeps it.
import type { Redis } from 'ioredis';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeStores, createApiKey, createGuard, hashApiKey, MemoryStore } from '../../src/index.js';
import { PostgresStore } from '../../src/stores/postgres.js';
import { createTestDatabase, dropTestDatabase, pgPool, pgUp, tablePrefix } from '../helpers/postgres.js';
import { deletePrefix, randomPrefix, REDIS_URL, redisClient, redisUp } from '../helpers/redis.js';
import { cli, json } from './run.js';

describe.skipIf(!pgUp || !redisUp)('token-guard keys and revoke --policy: the policy module’s own store', () => {
  const prefix = randomPrefix('cli-pol');
  const pgPrefix = tablePrefix();
  let db: { name: string; url: string };
  let pool: pg.Pool;
  let durable: PostgresStore;
  let client: Redis;
  let env: Record<string, string>;

  beforeAll(async () => {
    db = await createTestDatabase('clipolicy');
    pool = pgPool(db.url);
    durable = new PostgresStore({ pool, tablePrefix: pgPrefix });
    await durable.migrate();
    client = redisClient();
    env = { TG_PG_URL: db.url, TG_PG_PREFIX: pgPrefix, REDIS_URL, TG_PREFIX: prefix };
  });
  afterAll(async () => {
    await pool?.end();
    if (db) await dropTestDatabase(db.name);
    await deletePrefix(client, prefix);
    client.disconnect();
  });

  it('lists, revokes and issues keys kept in PostgreSQL, and its revocations outlive the Redis cache', async () => {
    const m = new MemoryStore();
    const composed = composeStores({ keys: durable, revocations: durable, counters: m, claims: m, usage: m });
    const made = await createApiKey(composed, { prefix: 'tg_', subject: 'svc-dur', scopes: ['orders:read'], expiresIn: '30d' });
    const listed = await cli(['keys', 'list', 'svc-dur', '--policy', 'durable.mjs', '--json'], { env });
    expect(listed.code).toBe(0);
    expect(json<{ keys: { id: string }[] }>(listed).keys.map((k) => k.id)).toEqual([made.record.id]);

    const revoked = await cli(['revoke', 'token', made.record.id, '--reason', 'compromised', '--policy', 'durable.mjs'], { env });
    expect([revoked.code, revoked.stdout]).toEqual([0, expect.stringContaining('Revoked')]);
    expect(await durable.getRevocation(made.record.id, undefined, Date.now())).toMatchObject({ reason: 'compromised' });
    // Redis loses everything of this app: the key stays refused, PostgreSQL has the revocation.
    await deletePrefix(client, prefix);
    const guard = createGuard({ apiKeys: { prefix: 'tg_' }, store: composed });
    const d = await guard.evaluate({ method: 'GET', path: '/x', headers: { authorization: `Bearer ${made.key}` }, remoteAddress: '127.0.0.1' });
    expect(d.reason).toBe('token.revoked');

    const issued = await cli(['keys', 'issue', '--subject', 'svc-dur', '--key-prefix', 'tg_', '--expires-in', '1d', '--policy', 'durable.mjs', '--json'], { env });
    expect(issued.code).toBe(0);
    expect(await durable.getApiKey(hashApiKey(json<{ key: string }>(issued).key))).toMatchObject({ subject: 'svc-dur' });
  });

  it('refuses --policy with --redis, and a policy without a store, before touching anything', async () => {
    const both = await cli(['revoke', 'token', 'x', '--policy', 'durable.mjs', '--redis', REDIS_URL], { env });
    expect([both.code, both.stderr]).toEqual([2, expect.stringContaining('does not go with --policy')]);
    const none = await cli(['revoke', 'token', 'x', '--policy', 'good.mjs'], { env });
    expect([none.code, none.stderr]).toEqual([2, expect.stringContaining('names no store')]);
  });
});
