// Regression (security review, PostgreSQL): a statement that waited for a pooled connection past queryTimeout was
// answered 503 (the guard refused the request), yet stayed in the pool's queue and ran once a connection came free.
// Behind one locked row (a DBA's transaction, a migration) a backlog of refused requests then spent a use-limited
// key's uses after the lock lifted. A statement whose caller has been answered is no longer run; what can still land
// late is bounded by the pool's size (the statements already running when the lock lifts).
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import pg from 'pg';
import { issueApiKey, StoreError } from '../../src/index.js';
import { PostgresStore } from '../../src/stores/postgres.js';
import { createTestDatabase, dropTestDatabase, pgPool, pgUp, tablePrefix } from '../helpers/postgres.js';

describe.skipIf(!pgUp)('regression: a use refused for a timeout is not spent later', () => {
  let db: { name: string; url: string };
  const pools: pg.Pool[] = [];
  beforeAll(async () => {
    db = await createTestDatabase('latespend');
  });
  afterAll(async () => {
    for (const p of pools) await p.end().catch(() => undefined);
    if (db) await dropTestDatabase(db.name);
  });

  it('40 uses refused while the key row is locked spend at most a pool-size of uses once it is released', async () => {
    const pool = pgPool(db.url, { max: 2 });
    pools.push(pool);
    const prefix = tablePrefix();
    const store = new PostgresStore({ pool, tablePrefix: prefix, queryTimeout: 200 });
    await store.migrate();
    const key = issueApiKey({ prefix: 'tg_', subject: 'svc', scopes: ['orders:read'], uses: 1000, expiresIn: '30d' });
    await store.putApiKey(key.record);

    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    await admin.query('BEGIN');
    await admin.query(`SELECT 1 FROM "${prefix}api_keys" WHERE hash = $1 FOR UPDATE`, [key.record.hash]);
    const answers = await Promise.allSettled(Array.from({ length: 40 }, () => store.useApiKey(key.record.hash)));
    expect(answers.every((a) => a.status === 'rejected' && a.reason instanceof StoreError)).toBe(true);
    await admin.query('ROLLBACK');
    await admin.end();

    // The queue drains; nothing refused is run now.
    await vi.waitFor(() => expect([pool.waitingCount, pool.idleCount === pool.totalCount]).toEqual([0, true]), { timeout: 5000, interval: 20 });
    expect((await store.getApiKey(key.record.hash))?.remaining).toBeGreaterThanOrEqual(1000 - 2);
    // And the store answers at once again.
    expect(await store.useApiKey(key.record.hash)).toBeGreaterThanOrEqual(1000 - 3);
  });
});
