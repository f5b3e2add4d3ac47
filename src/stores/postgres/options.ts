// PostgresStore's options: their public types, their defaults, and the checks that refuse a mistake at construction.
import type { Pool } from 'pg';
import { StoreArgumentError } from '../validate.js';

/** Options of PostgresStore. */
export interface PostgresStoreOptions {
  /**
   * The app's `pg` Pool. The store runs its queries on it and never ends it. Give it `connectionTimeoutMillis` (at most
   * `queryTimeout`): without it pg waits for a connection to an unresponsive database forever (the store warns once).
   */
  pool: Pool;
  /**
   * Start of every table and index name, so several apps (or test runs) can share one database: lower-case letters,
   * digits and `_`, at most 40 characters. Default: `'token_guard_'`.
   */
  tablePrefix?: string;
  /** Longest any query may take, in ms, before it fails with StoreError (the guard answers 503). Default: 500. */
  queryTimeout?: number;
  /**
   * Most requests for a connection that may wait in the pool's queue (`pool.waitingCount`, the app's own queries
   * included; at least 1) before a query is refused at once with StoreError instead of queued behind them. The pool
   * keeps a queued request until a connection frees up, however long the database takes to answer, so without a bound
   * an outage grows the queue by one per request. Default: 100 × the pool's `max` (1000 for pg's default of 10): at a
   * few ms per statement, a request queued further back would most likely wait out the default queryTimeout anyway.
   */
  maxWaiting?: number;
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
  maxWaiting: number;
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
  // pg's binary results lose bytes on the way (see rows.ts): refused here, where the mistake is made.
  if ((pool as { options?: { binary?: unknown } }).options?.binary === true) {
    throw new StoreArgumentError('PostgresStore: a pool with binary: true is not supported (pg would misread the values the store reads)');
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
  const poolMax = (pool as { options?: { max?: unknown } }).options?.max;
  const maxWaiting = options.maxWaiting ?? 100 * (typeof poolMax === 'number' && Number.isSafeInteger(poolMax) && poolMax >= 1 ? poolMax : 10);
  if (typeof maxWaiting !== 'number' || !Number.isSafeInteger(maxWaiting) || maxWaiting < 1) {
    throw new StoreArgumentError(`PostgresStore: maxWaiting must be a whole number from 1 (got ${String(maxWaiting)})`);
  }
  return { pool, tablePrefix, queryTimeout, maxWaiting };
}

/**
 * Whether the pool's `connectionTimeoutMillis` is unset or 0 (false for a pool that is not pg's: no `options`). pg
 * then waits for a new connection forever, and a database that accepts TCP but never answers (a hung server, a proxy
 * whose backend is gone) holds every connection the pool opens: the pool stops serving until the process restarts.
 */
export function unboundedConnect(pool: Pool): boolean {
  const options = (pool as { options?: { connectionTimeoutMillis?: unknown } }).options;
  if (options === null || typeof options !== 'object') return false;
  const wait = options.connectionTimeoutMillis;
  return !(typeof wait === 'number' && wait > 0);
}
