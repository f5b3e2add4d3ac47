// PostgreSQL for tests: is it there (skip loudly locally, fail on CI), a database of this run's own (created at
// import, dropped by dropTestDatabase), pools on it, per-store table prefixes, and a suite's database with its pool
// and migrated stores.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { PostgresStore, type PostgresStoreOptions } from '../../src/stores/postgres.js';

/** The server the suites use (its `postgres` database is only used to create and drop the test database). */
export const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const START_HINT = 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start  (or set PG_URL)';
const onCi = process.env.CI === 'true';

/** A pool that never ends the process on a dropped idle connection (tests assert on failures instead). */
export function pgPool(url: string, options: pg.PoolConfig = {}): pg.Pool {
  // As the docs advise (connectionTimeoutMillis set): a pool without it prints TOKEN_GUARD_POSTGRES_CONNECT_TIMEOUT.
  const pool = new pg.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 10_000, ...options });
  pool.on('error', () => undefined);
  return pool;
}

async function reachable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Whether PostgreSQL answers. Unreachable on CI (`CI=true`) fails the suite at import; elsewhere it is skipped with one warning line. */
export const pgUp: boolean = await (async () => {
  if (await reachable()) return true;
  if (onCi) throw new Error(`PostgreSQL is not reachable at ${PG_URL} and CI=true: the PostgreSQL suites must run on CI. Start it: ${START_HINT}`);
  console.warn(`⚠️  POSTGRESQL SUITES SKIPPED: no PostgreSQL at ${PG_URL}. Start it with: ${START_HINT}`);
  return false;
})();

/** `PG_URL` with another database name. */
export function urlFor(database: string): string {
  const u = new URL(PG_URL);
  u.pathname = `/${database}`;
  return u.toString();
}

/** Creates `token_guard_test_<suite>_<random>` and returns its URL. */
export async function createTestDatabase(suite: string): Promise<{ name: string; url: string }> {
  const name = `token_guard_test_${suite}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  return { name, url: urlFor(name) };
}

/** Drops a test database, ending whatever connections are still on it. */
export async function dropTestDatabase(name: string): Promise<void> {
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

let n = 0;
/** A table prefix no other store of this run uses. */
export function tablePrefix(): string {
  return `t${n++}_${randomBytes(3).toString('hex')}_`;
}

/** The database useTestDatabase made for a suite: its pool, and stores on it with tables of their own. */
export interface SuiteDatabase {
  /** The pool on the database (read it inside a test or hook: it is made in beforeAll). */
  readonly pool: pg.Pool;
  /** A migrated PostgresStore on the pool with a fresh table prefix, and that prefix (for SQL a test writes itself). */
  store(options?: Omit<PostgresStoreOptions, 'pool' | 'tablePrefix'>): Promise<{ store: PostgresStore; prefix: string }>;
}

/**
 * For the enclosing describe: a database `token_guard_test_<suite>_<random>` and a pool on it, made before its tests;
 * the pool ended and the database dropped after them.
 */
export function useTestDatabase(suite: string): SuiteDatabase {
  let db: { name: string; url: string } | undefined;
  let pool: pg.Pool | undefined;
  beforeAll(async () => {
    db = await createTestDatabase(suite);
    pool = pgPool(db.url);
  });
  afterAll(async () => {
    await pool?.end();
    if (db) await dropTestDatabase(db.name);
  });
  const suiteDb: SuiteDatabase = {
    get pool() {
      if (!pool) throw new Error(`useTestDatabase('${suite}'): the pool is made in beforeAll, read it in a test or hook`);
      return pool;
    },
    async store(options = {}) {
      const prefix = tablePrefix();
      const store = new PostgresStore({ ...options, pool: suiteDb.pool, tablePrefix: prefix });
      await store.migrate();
      return { store, prefix };
    },
  };
  return suiteDb;
}
