// PostgresStore on a database whose default isolation is not READ COMMITTED (a DBA's `ALTER DATABASE … SET
// default_transaction_isolation`). Each of the store's statements is its own transaction; under REPEATABLE READ or
// SERIALIZABLE, PostgreSQL aborts concurrent updates of one row with a serialization failure, which answered 503 for
// legitimate requests, and two instances migrating at once failed ("relation already exists"): the second one's
// snapshot predated the first one's tables. The store now retries aborted statements and migrates in READ COMMITTED.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import type { ApiKeyRecord } from '../../src/index.js';
import { PostgresStore } from '../../src/stores/postgres.js';
import { createTestDatabase, dropTestDatabase, PG_URL, pgPool, pgUp, tablePrefix } from '../helpers/postgres.js';

const T0 = Date.UTC(2026, 10, 25, 10, 0, 0);
const record = (hash: string, remaining: number): ApiKeyRecord => ({
  id: `key_${hash.slice(0, 6)}`,
  hash,
  prefix: 'tg_',
  subject: 'svc',
  scopes: ['orders:read'],
  createdAt: T0,
  expiresAt: null,
  remaining,
});

for (const level of ['repeatable read', 'serializable'] as const) {
  describe.skipIf(!pgUp)(`PostgresStore on a database whose default isolation is ${level}`, () => {
    let db: { name: string; url: string };
    const pools: pg.Pool[] = [];
    beforeAll(async () => {
      db = await createTestDatabase(`iso_${level.replace(' ', '')}`);
      const admin = new pg.Client({ connectionString: PG_URL });
      await admin.connect();
      await admin.query(`ALTER DATABASE "${db.name}" SET default_transaction_isolation = '${level}'`);
      await admin.end();
    });
    afterAll(async () => {
      for (const p of pools) await p.end().catch(() => undefined);
      if (db) await dropTestDatabase(db.name);
    });
    /** Two app instances: a pool and a store each, on the same tables. */
    const instances = (prefix: string) =>
      [0, 1].map(() => {
        const pool = pgPool(db.url, { max: 8 });
        pools.push(pool);
        return new PostgresStore({ pool, tablePrefix: prefix, queryTimeout: 10_000 });
      });

    it('is the isolation the database hands out (the test would prove nothing otherwise)', async () => {
      const pool = pgPool(db.url, { max: 1 });
      pools.push(pool);
      expect((await pool.query('SHOW default_transaction_isolation')).rows[0]).toEqual({ default_transaction_isolation: level });
    });

    it('two instances migrating at once both succeed, and the schema is applied once', async () => {
      const [a, b] = instances(tablePrefix()) as [PostgresStore, PostgresStore];
      const results = await Promise.all([a.migrate(), b.migrate()]);
      expect(results.map((r) => r.to)).toEqual([results[0]?.to, results[0]?.to]);
      expect(results.filter((r) => r.from === 0)).toHaveLength(1);
    });

    it('200 concurrent uses of a key with 30 left, across two instances: exactly 30 granted, none refused as an outage', async () => {
      const [a, b] = instances(tablePrefix()) as [PostgresStore, PostgresStore];
      await a.migrate();
      const hash = 'u'.repeat(64);
      await a.putApiKey(record(hash, 30));
      const answers = await Promise.allSettled(Array.from({ length: 200 }, (_, i) => (i % 2 ? a : b).useApiKey(hash)));
      expect(answers.filter((x) => x.status === 'rejected')).toEqual([]);
      const left = answers.map((x) => (x as PromiseFulfilledResult<number | undefined>).value as number);
      expect(left.filter((n) => n >= 0)).toHaveLength(30);
      expect((await a.getApiKey(hash))?.remaining).toBe(0);
    });

    it('50 concurrent revocations of one subject: every call lands, the latest cut-off wins', async () => {
      const [a, b] = instances(tablePrefix()) as [PostgresStore, PostgresStore];
      await a.migrate();
      const befores = Array.from({ length: 50 }, (_, i) => T0 + ((i * 37) % 50));
      const answers = await Promise.allSettled(befores.map((before, i) => (i % 2 ? a : b).revokeSubject('alice', { now: T0, before })));
      expect(answers.filter((x) => x.status === 'rejected')).toEqual([]);
      expect((await a.getRevocation('tok', 'alice', T0 + 1000))?.subjectRevokedBefore).toBe(T0 + 49);
    });
  });
}
