// How PostgresStore's `migrate()` applies schema.ts's migrations: on one client of its own, since the transaction and
// its advisory lock must hold across every statement (the store's other queries each run on any pooled connection).
import type { Pool, PoolClient } from 'pg';
import { StoreError } from '../../leaf/errors.js';
import { integerOf, PG_TYPES } from './rows.js';
import { MIGRATIONS, SCHEMA_VERSION, type Tables } from './schema.js';

/** What `migrate()` did. */
export interface PostgresMigrateResult {
  /** Schema version found (0: none). */
  from: number;
  /** Schema version now. */
  to: number;
}

/** Brings the tables `t` names to SCHEMA_VERSION: `PostgresStore.migrate()`, which says what it guarantees. */
export async function migrateSchema(pool: Pool, t: Tables): Promise<PostgresMigrateResult> {
  let client: PoolClient;
  try {
    client = await pool.connect();
  } catch (e) {
    throw new StoreError(`PostgreSQL migrate failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  try {
    // READ COMMITTED whatever the database's default: under REPEATABLE READ the snapshot would be taken before the
    // advisory lock is granted, and a second migrator would not see the first one's tables.
    await client.query('BEGIN ISOLATION LEVEL READ COMMITTED');
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`token-guard:${t.prefix}`]);
    await client.query(`CREATE TABLE IF NOT EXISTS ${t.version} (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`);
    const { rows } = await client.query<{ v: unknown }>({ text: `SELECT coalesce(max(version), 0)::int AS v FROM ${t.version}`, types: PG_TYPES });
    const from = integerOf(rows[0]?.v ?? 0, 'schema version');
    if (from > SCHEMA_VERSION) {
      throw new StoreError(`PostgreSQL schema of ${t.prefix}* is at version ${from}, newer than this token-guard knows (${SCHEMA_VERSION}): upgrade token-guard`);
    }
    for (const m of MIGRATIONS) {
      if (m.version <= from) continue;
      for (const sql of m.statements(t)) await client.query(sql);
      await client.query(`INSERT INTO ${t.version} (version) VALUES ($1)`, [m.version]);
    }
    await client.query('COMMIT');
    return { from, to: Math.max(from, SCHEMA_VERSION) };
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    if (e instanceof StoreError) throw e;
    throw new StoreError(`PostgreSQL migrate failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  } finally {
    client.release();
  }
}
