// PostgresStore's options: their public types, their defaults, and the checks that refuse a mistake at construction.
import type { Pool } from 'pg';
import { StoreArgumentError } from '../validate.js';

/** Options of PostgresStore. */
export interface PostgresStoreOptions {
  /** The app's `pg` Pool. The store runs its queries on it and never ends it. */
  pool: Pool;
  /**
   * Start of every table and index name, so several apps (or test runs) can share one database: lower-case letters,
   * digits and `_`, at most 40 characters. Default: `'token_guard_'`.
   */
  tablePrefix?: string;
  /** Longest any query may take, in ms, before it fails with StoreError (the guard answers 503). Default: 500. */
  queryTimeout?: number;
}

/** Options of `sweep`. */
export interface PostgresSweepOptions {
  /** The caller's time, epoch ms: rows that expired at or before it are deleted. */
  now: number;
  /** Rows deleted per statement (each statement is short, so locks are held briefly). Default: 1000. */
  batchSize?: number;
  /** Most statements per call (a bound on one sweep's work; call again to go on). Default: 100. */
  maxBatches?: number;
  /**
   * How long an expired API key record is kept after its expiry, in ms, before it is swept (its lifecycle events
   * stay). `false` keeps expired records for good. Default: 30 days.
   */
  keepExpiredKeys?: number | false;
}

/** What one `sweep` deleted. */
export interface PostgresSweepResult {
  revocations: number;
  apiKeys: number;
  /** True when a limit stopped it before everything expired was gone (call again). */
  more: boolean;
}

/** The options once checked, with their defaults filled in. */
export interface ResolvedPostgresOptions {
  pool: Pool;
  tablePrefix: string;
  queryTimeout: number;
}

const PREFIX = /^[a-z_][a-z0-9_]{0,39}$/;
const MAX_DELAY_MS = 2_147_483_647;

/** Checks PostgresStore's options and fills in the defaults. */
export function resolvePostgresOptions(options: PostgresStoreOptions): ResolvedPostgresOptions {
  if (!options || typeof options !== 'object') throw new StoreArgumentError('PostgresStore: expected options { pool, … }');
  const { pool } = options;
  if (!pool || typeof (pool as { query?: unknown }).query !== 'function' || typeof (pool as { connect?: unknown }).connect !== 'function') {
    throw new StoreArgumentError('PostgresStore: options.pool must be a pg Pool');
  }
  const tablePrefix = options.tablePrefix ?? 'token_guard_';
  // Table names cannot be query parameters: the prefix goes into SQL text, so only a plain identifier is accepted.
  if (typeof tablePrefix !== 'string' || !PREFIX.test(tablePrefix)) {
    throw new StoreArgumentError('PostgresStore: tablePrefix must be lower-case letters, digits and _ (at most 40, not starting with a digit)');
  }
  const queryTimeout = options.queryTimeout ?? 500;
  if (typeof queryTimeout !== 'number' || !Number.isInteger(queryTimeout) || queryTimeout < 1 || queryTimeout > MAX_DELAY_MS) {
    throw new StoreArgumentError(`PostgresStore: queryTimeout must be whole milliseconds from 1 to ${MAX_DELAY_MS} (got ${String(queryTimeout)})`);
  }
  return { pool, tablePrefix, queryTimeout };
}
