// PostgresStore reads its columns the same way whatever type parsers the app set: globally
// (`pg.types.setTypeParser(20, BigInt)`, a commonly recommended setting, or a jsonb parser that keeps the text), or on
// its pool (`types`). Before, such a setting made every key with uses left (or every key) answer 503. Through a guard
// on the composed store: keys with uses, revocations and lifecycle events. Binary results, which pg mangles, are refused.
import { SignJWT } from 'jose';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { composeStores, createApiKey, createGuard, listApiKeys, listLifecycleEvents, MemoryStore, revokeApiKey, StoreError, type Guard } from '../../src/index.js';
import { PostgresStore, StoreArgumentError } from '../../src/stores/postgres.js';
import { pgPool, pgUp, tablePrefix, useTestDatabase } from '../helpers/postgres.js';

const T0 = Date.UTC(2026, 10, 25, 10, 0, 0);
const SECRET = 'type-parser-test-secret-of-at-least-32-bytes';
const INT4 = 23;
const INT8 = 20;
const FLOAT8 = 701;
const BPCHAR = 1042;
const JSON_OID = 114;
const JSONB = 3802;
const OIDS = [INT4, INT8, FLOAT8, BPCHAR, JSON_OID, JSONB] as const;

const keep = (v: string): string => v;

/** Makes the pool's clients drop a query's own `types`, as pg-native does: only the global parsers are at work. */
function ignorePerQueryTypes(pool: pg.Pool): void {
  const patched = new WeakSet<pg.PoolClient>();
  pool.on('acquire', (client) => {
    if (patched.has(client)) return;
    patched.add(client);
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const [config, ...rest] = args;
      if (config !== null && typeof config === 'object' && 'types' in config) {
        const { types: _ignored, ...withoutTypes } = config as Record<string, unknown>;
        return query(withoutTypes, ...rest);
      }
      return query(...args);
    };
  });
}

describe.skipIf(!pgUp)('PostgresStore whatever type parsers the app set', () => {
  const db = useTestDatabase('typeparsers');
  const pools: pg.Pool[] = [];
  const saved = new Map(OIDS.map((oid) => [oid, pg.types.getTypeParser(oid, 'text')] as const));

  afterEach(async () => {
    for (const [oid, parser] of saved) pg.types.setTypeParser(oid, 'text', parser);
    await Promise.all(pools.splice(0).map((p) => p.end()));
  });

  /** What an app commonly sets: int8 (and int4) as BigInt, json and jsonb kept as their text, float8 as text. */
  function setAppParsers(): void {
    pg.types.setTypeParser(INT8, 'text', BigInt);
    pg.types.setTypeParser(INT4, 'text', BigInt);
    pg.types.setTypeParser(JSONB, 'text', keep);
    pg.types.setTypeParser(JSON_OID, 'text', keep);
    pg.types.setTypeParser(FLOAT8, 'text', keep);
    pg.types.setTypeParser(BPCHAR, 'text', (v: string) => `[${v}]`);
  }

  // connectionTimeoutMillis as the docs advise (a pool without it is warned about, which is not this file's subject).
  const newPool = (options: pg.PoolConfig = {}) => pgPool(db.pool.options.connectionString as string, { connectionTimeoutMillis: 5000, ...options });
  const prefixes = new WeakMap<PostgresStore, string>();

  async function storeOn(pool: pg.Pool): Promise<PostgresStore> {
    pools.push(pool);
    const prefix = tablePrefix();
    const store = new PostgresStore({ pool, tablePrefix: prefix, queryTimeout: 5000 });
    prefixes.set(store, prefix);
    // migrate reads the schema version (an int4) through the same parsers.
    expect(await store.migrate()).toEqual({ from: 0, to: 1 });
    return store;
  }

  function guardOn(durable: PostgresStore): Guard {
    const mem = new MemoryStore();
    const store = composeStores({ keys: durable, revocations: durable, counters: mem, claims: mem, usage: mem });
    return createGuard({
      apiKeys: { prefix: 'tg_' },
      jwt: { issuer: 'https://idp.example/', audience: 'api', algorithms: ['HS256'], secret: SECRET },
      store,
      unmatched: 'authenticate',
    });
  }

  const at = (ms: number) => new Date(T0 + ms);
  const evaluate = (guard: Guard, token: string, ms: number) =>
    guard.evaluate({ method: 'GET', path: '/orders', headers: { authorization: `Bearer ${token}` }, remoteAddress: '192.0.2.1', now: at(ms) });
  const jwt = (sub: string, jti: string) =>
    new SignJWT({ jti })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(sub)
      .setIssuer('https://idp.example/')
      .setAudience('api')
      .setIssuedAt(T0 / 1000 - 60)
      .setExpirationTime(T0 / 1000 + 3600)
      .sign(new TextEncoder().encode(SECRET));

  /** Keys with uses, a key revoked with a reason, a JWT revoked by id and one by subject, and the lifecycle trail. */
  async function keysRevocationsAndEvents(durable: PostgresStore): Promise<void> {
    const guard = guardOn(durable);
    const store = guard.store;
    const limited = await createApiKey(store, { prefix: 'tg_', subject: 'svc', scopes: [], uses: 2, expiresIn: '1d', now: at(0), actor: 'ops' });
    const plain = await createApiKey(store, { prefix: 'tg_', subject: 'svc', scopes: [], expiresIn: '1d', now: at(1), actor: 'ops' });

    expect((await evaluate(guard, limited.key, 10)).reason).toBe('ok');
    expect((await evaluate(guard, limited.key, 11)).reason).toBe('ok');
    expect(await evaluate(guard, limited.key, 12)).toMatchObject({ status: 401, reason: 'token.expired' });
    expect((await evaluate(guard, plain.key, 13)).reason).toBe('ok');

    await revokeApiKey(store, plain.record.id, { reason: 'compromised', actor: 'ops', now: at(20) });
    expect(await evaluate(guard, plain.key, 21)).toMatchObject({ status: 401, reason: 'token.revoked' });
    const summaries = await listApiKeys(store, 'svc', { now: at(22) });
    expect(summaries.map((s) => [s.id, s.state, s.remaining ?? null])).toEqual([
      [plain.record.id, 'revoked', null],
      [limited.record.id, 'expired', 0],
    ]);

    const byId = await jwt('alice', 'jti-1');
    const bySubject = await jwt('bob', 'jti-2');
    const first = await evaluate(guard, byId, 30);
    expect(first.reason).toBe('ok');
    await guard.revoke(first.token as NonNullable<typeof first.token>, { reason: 'compromised', now: at(31) });
    expect(await evaluate(guard, byId, 32)).toMatchObject({ status: 401, reason: 'token.revoked' });
    expect((await evaluate(guard, bySubject, 33)).reason).toBe('ok');
    await guard.revokeSubject('bob', { reason: 'offboarded', now: at(34) });
    expect(await evaluate(guard, bySubject, 35)).toMatchObject({ status: 401, reason: 'token.revoked' });
    expect(await durable.getRevocation('jti-1', 'bob', T0 + 36)).toEqual({
      revokedAt: T0 + 31,
      reason: 'compromised',
      subjectRevokedBefore: T0 + 34,
      subjectReason: 'offboarded',
    });

    const events = await listLifecycleEvents(store, { subject: 'svc' });
    expect(events.map((e) => [e.type, e.tokenId, e.at])).toEqual([
      ['key.issued', limited.record.id, T0],
      ['key.issued', plain.record.id, T0 + 1],
      ['key.expired', limited.record.id, T0 + 12],
      ['key.revoked', plain.record.id, T0 + 20],
    ]);
  }

  it('set globally (int8 and int4 as BigInt, json and jsonb kept as text, float8 as text, char changed): everything still works', async () => {
    setAppParsers();
    await keysRevocationsAndEvents(await storeOn(newPool()));
  });

  it("set on the app's pool (`types` with int8 as BigInt and jsonb as text): everything still works", async () => {
    const types = {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8 ? BigInt : oid === JSONB ? keep : pg.types.getTypeParser(oid, format ?? 'text')) as typeof pg.types.getTypeParser,
    };
    await keysRevocationsAndEvents(await storeOn(newPool({ types })));
  });

  describe('binary results, which pg (8.x) mangles on the way (a float8 time read as another time)', () => {
    afterEach(() => {
      pg.defaults.binary = false;
    });

    it('a pool with binary: true is refused at construction (StoreArgumentError)', async () => {
      const pool = newPool({ binary: true } as pg.PoolConfig);
      pools.push(pool);
      expect(() => new PostgresStore({ pool })).toThrow(StoreArgumentError);
    });

    it('with pg.defaults.binary set, every read fails (StoreError, the guard answers 503) rather than misread', async () => {
      const durable = await storeOn(newPool());
      const { key, record } = await createApiKey(guardOn(durable).store, { prefix: 'tg_', subject: 'svc', scopes: [], expiresIn: '1d', now: at(0) });
      await durable.revoke('jti-1', { now: T0 + 31 });
      pg.defaults.binary = true;
      const pool = newPool();
      pools.push(pool);
      const binary = new PostgresStore({ pool, tablePrefix: prefixes.get(durable) as string, queryTimeout: 5000 });
      await expect(binary.getRevocation('jti-1', undefined, T0 + 32)).rejects.toThrow(StoreError);
      await expect(binary.getApiKey(record.hash)).rejects.toThrow(StoreError);
      expect(await evaluate(guardOn(binary), key, 33)).toMatchObject({ status: 503, reason: 'store.unavailable' });
    });
  });

  it('on a client that ignores per-query parsers (as pg-native does), with the global ones set: everything still works', async () => {
    setAppParsers();
    // Without the store's parsers a char column reads as the app's parser says: no store can read that one.
    pg.types.setTypeParser(BPCHAR, 'text', saved.get(BPCHAR) as (v: string) => unknown);
    const pool = newPool();
    ignorePerQueryTypes(pool);
    await keysRevocationsAndEvents(await storeOn(pool));
  });

  describe('uses left beyond 2^53 are refused (StoreError, the guard answers 503), never rounded', () => {
    const BEYOND = '9007199254740993'; // 2^53 + 1: as a double, 2^53

    async function tooManyUses(pool: pg.Pool): Promise<void> {
      const durable = await storeOn(pool);
      const { key, record } = await createApiKey(guardOn(durable).store, { prefix: 'tg_', subject: 'svc', scopes: [], uses: 5, expiresIn: '1d', now: at(0) });
      await db.pool.query(`UPDATE "${prefixes.get(durable)}api_keys" SET remaining = $1::bigint WHERE hash = $2`, [BEYOND, record.hash]);
      await expect(durable.getApiKey(record.hash)).rejects.toThrow(StoreError);
      expect(await evaluate(guardOn(durable), key, 10)).toMatchObject({ status: 503, reason: 'store.unavailable' });
    }

    it('read by the store itself', async () => {
      setAppParsers();
      await tooManyUses(newPool());
    });

    it('read as a BigInt, or as a rounded number, by a client that ignores per-query parsers', async () => {
      setAppParsers();
      const a = newPool();
      ignorePerQueryTypes(a);
      await tooManyUses(a);
      pg.types.setTypeParser(INT8, 'text', (v: string) => Number.parseInt(v, 10));
      const b = newPool();
      ignorePerQueryTypes(b);
      await tooManyUses(b);
    });
  });
});
