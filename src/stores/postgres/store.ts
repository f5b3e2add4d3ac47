// PostgresStore: API key records and revocations kept durably in PostgreSQL, with an append-only lifecycle table.
// Types only from pg: it is an optional peer dependency, so nothing from it may be loaded at run time.
import type { Pool, QueryResult, QueryResultRow } from 'pg';
import { StoreError } from '../../leaf/errors.js';
import type { LifecycleEvent, LifecycleQuery } from '../../leaf/lifecycle.js';
import type { ApiKeyPatch, ApiKeyRecord, ApiKeyUpdateCondition, RevocationState, RevokeOptions, RevokeSubjectOptions } from '../../leaf/store.js';
import type { KeyInventoryStore, KeyRecordStore, LifecycleEventStore, RevocationEntries, RevocationSource } from '../../leaf/store-parts.js';
import {
  checkGetRevocation,
  checkId,
  checkLifecycleEvent,
  checkLifecycleQuery,
  checkPutApiKey,
  checkRevoke,
  checkRevokeSubject,
  checkTime,
  checkUpdateApiKey,
  DEFAULT_EVENT_LIMIT,
  StoreArgumentError,
} from '../validate.js';
import { type PostgresStoreOptions, type PostgresSweepOptions, type PostgresSweepResult, resolvePostgresOptions, unboundedConnect } from './options.js';
import { migrateSchema, type PostgresMigrateResult } from './migrate.js';
import { integerOf, PG_TYPES, pgEventForms, pgEventJson, pgEventKey, pgForms, pgText, type RecordRow, toLifecycleEvent, toRecord, toRevocationEntries } from './rows.js';
import { Tables } from './schema.js';
import { REVOCATION_TTL_SLACK_MS, revocationLapsed } from '../clock-skew.js';
import { warnOnce } from '../../leaf/warnings.js';

/**
 * Keeps API key records and revocations in PostgreSQL, so they survive any cache (Redis included) losing them, with
 * every change appended to a lifecycle table for audit. Takes the app's `pg` Pool; never opens or ends a connection.
 *
 * It implements the API key and revocation parts of `TokenStore` only: use it through `composeStores`, with counters,
 * claims and usage in RedisStore (or MemoryStore), and RedisStore in front as a read-through cache.
 *
 * - `migrate()` creates or upgrades the tables (versioned, idempotent, safe to run from several instances at once);
 *   call it at deploy or start-up. No request ever creates a table: a missing one is a StoreError (503).
 * - Every query is parameterised and bounded by `queryTimeout`; a failure or timeout is a StoreError, which the guard
 *   answers with 503 `store.unavailable`. The Pool reconnects on its own, so the store recovers without a restart.
 *   Past `maxWaiting` requests queued for a connection, a query is refused at once rather than queued (an outage
 *   would grow pg's queue by one per request). Columns are read by the store's own type parsers, not the app's.
 * - Times are the caller's (`now`), never the database's, so it runs on fake time like every store.
 * - `sweep({ now })` deletes expired revocations (and long-expired key records) in short batches.
 *
 * Exported from `token-guard/postgres`.
 * @example
 * import pg from 'pg';
 * import { PostgresStore } from 'token-guard/postgres';
 * // connectionTimeoutMillis: without it pg waits for a connection to an unresponsive database forever.
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, connectionTimeoutMillis: 500 });
 * pool.on('error', () => {}); // a dropped idle connection must not end the process
 * const durable = new PostgresStore({ pool });
 * await durable.migrate();
 */
export class PostgresStore implements KeyRecordStore, RevocationSource, KeyInventoryStore, LifecycleEventStore {
  private readonly pool: Pool;
  private readonly t: Tables;
  private readonly timeoutMs: number;
  private readonly maxWaiting: number;

  constructor(options: PostgresStoreOptions) {
    const o = resolvePostgresOptions(options);
    this.pool = o.pool;
    this.t = new Tables(o.tablePrefix);
    this.timeoutMs = o.queryTimeout;
    this.maxWaiting = o.maxWaiting;
    if (unboundedConnect(o.pool)) {
      warnOnce(
        'TOKEN_GUARD_POSTGRES_CONNECT_TIMEOUT',
        `PostgresStore: the pg Pool has no connectionTimeoutMillis, so a connection attempt to a database that accepts and never answers waits forever and holds one of the pool's connections; set connectionTimeoutMillis to at most queryTimeout (${o.queryTimeout} ms)`,
      );
    }
  }

  // --- Schema

  /**
   * Brings the schema to the version this code needs: creates the tables on an empty database, applies the newer
   * migrations on an older one, does nothing on a current one. One transaction under an advisory lock, so instances
   * starting together apply each migration once. Refuses (StoreError) a schema newer than this code knows.
   */
  async migrate(): Promise<PostgresMigrateResult> {
    return migrateSchema(this.pool, this.t);
  }

  // --- API key records

  async getApiKey(hash: string): Promise<ApiKeyRecord | undefined> {
    checkId('getApiKey', 'hash', hash);
    const rows = await this.query('getApiKey', `SELECT record::text AS record, remaining FROM ${this.t.apiKeys} WHERE hash = $1`, [pgText(hash)]);
    return rows[0] ? toRecord(rows[0] as RecordRow) : undefined;
  }

  async putApiKey(record: ApiKeyRecord): Promise<void> {
    checkPutApiKey(record);
    const { remaining, ...rest } = record;
    await this.query(
      'putApiKey',
      `INSERT INTO ${this.t.apiKeys} (hash, record, remaining) VALUES ($1, $2::jsonb, $3::bigint)
       ON CONFLICT (hash) DO UPDATE SET record = EXCLUDED.record, remaining = EXCLUDED.remaining`,
      [pgText(record.hash), JSON.stringify(rest), remaining === undefined ? null : String(remaining)],
    );
  }

  async updateApiKey(hash: string, patch: ApiKeyPatch, condition?: ApiKeyUpdateCondition): Promise<ApiKeyRecord | undefined> {
    checkUpdateApiKey(hash, patch, condition);
    const set: Record<string, unknown> = {};
    const drop: string[] = [];
    for (const [field, value] of Object.entries(patch)) {
      // Identity fields never change; uses left have their own column.
      if (field === 'id' || field === 'hash' || field === 'prefix' || field === 'createdAt' || field === 'remaining') continue;
      if (value === undefined) drop.push(field);
      else set[field] = value;
    }
    const remainingMode = !('remaining' in patch) ? 'keep' : patch.remaining === undefined ? 'del' : 'set';
    // One statement: the merge happens in the row, under its lock, so concurrent updates never lose each other.
    const rows = await this.query(
      'updateApiKey',
      `UPDATE ${this.t.apiKeys} SET record = (record || $2::jsonb) - $3::text[],
         remaining = CASE $4::text WHEN 'keep' THEN remaining WHEN 'del' THEN NULL ELSE $5::bigint END
       WHERE hash = $1 AND ($6::boolean IS NOT TRUE OR NOT (record ?| array['rotatedTo', 'revokedAt']))
       RETURNING record::text AS record, remaining`,
      [pgText(hash), JSON.stringify(set), drop, remainingMode, remainingMode === 'set' ? String(patch.remaining) : null, condition?.unrotatedAndUnrevoked === true],
    );
    return rows[0] ? toRecord(rows[0] as RecordRow) : undefined;
  }

  async deleteApiKey(hash: string): Promise<boolean> {
    checkId('deleteApiKey', 'hash', hash);
    return (await this.count('deleteApiKey', `DELETE FROM ${this.t.apiKeys} WHERE hash = $1`, [pgText(hash)])) > 0;
  }

  async useApiKey(hash: string): Promise<number | undefined> {
    checkId('useApiKey', 'hash', hash);
    // One statement: the UPDATE takes a use only while one is left and the key is not rotated (row-locked, so
    // concurrent uses never go below zero, and none lands after the rotation handed the uses left to the successor);
    // the outer SELECT sees the row as it was before, to tell "none left" from "unknown or unlimited".
    const rows = await this.query(
      'useApiKey',
      `WITH u AS (UPDATE ${this.t.apiKeys} SET remaining = remaining - 1 WHERE hash = $1 AND remaining > 0 AND rotated_to IS NULL RETURNING remaining)
       SELECT (SELECT remaining FROM u) AS taken, (SELECT remaining FROM ${this.t.apiKeys} WHERE hash = $1) AS before`,
      [pgText(hash)],
    );
    const row = rows[0];
    if (!row) throw new StoreError('PostgreSQL returned no row for useApiKey');
    if (row['taken'] !== null && row['taken'] !== undefined) return integerOf(row['taken'], 'uses left');
    return row['before'] === null || row['before'] === undefined ? undefined : -1;
  }

  // --- Key inventory (the subject and id columns are generated from the record, and indexed)

  /** Every record of `subject`, whatever its state (expired and revoked ones included), oldest first. */
  async listApiKeys(subject: string): Promise<ApiKeyRecord[]> {
    checkId('listApiKeys', 'subject', subject);
    // No record holds a NUL (every store refuses one), and PostgreSQL cannot even be asked about it.
    if (subject.includes('\0')) return [];
    const rows = await this.query(
      'listApiKeys',
      `SELECT record::text AS record, remaining FROM ${this.t.apiKeys} WHERE subject = $1 ORDER BY (record->>'createdAt')::double precision, hash`,
      [subject],
    );
    return rows.map((row) => toRecord(row as RecordRow));
  }

  /** The record whose id is `id`, or undefined. */
  async getApiKeyById(id: string): Promise<ApiKeyRecord | undefined> {
    checkId('getApiKeyById', 'id', id);
    if (id.includes('\0')) return undefined;
    const rows = await this.query('getApiKeyById', `SELECT record::text AS record, remaining FROM ${this.t.apiKeys} WHERE id = $1 ORDER BY hash LIMIT 1`, [id]);
    return rows[0] ? toRecord(rows[0] as RecordRow) : undefined;
  }

  // --- Revocation

  async revoke(tokenId: string, options: RevokeOptions): Promise<void> {
    checkRevoke(tokenId, options);
    const { now, expiresAt, reason } = options;
    // Just past on this clock may still be ahead on a reader's: stored, and the reader decides.
    if (revocationLapsed(expiresAt, now)) return;
    await this.writeRevocation('t', tokenId, now, now, expiresAt ?? null, reason ?? null);
  }

  async revokeSubject(subject: string, options: RevokeSubjectOptions): Promise<void> {
    checkRevokeSubject(subject, options);
    const { now, before, expiresAt, reason } = options;
    if (revocationLapsed(expiresAt, now)) return;
    await this.writeRevocation('s', subject, now, before, expiresAt ?? null, reason ?? null);
  }

  async getRevocation(tokenId: string, subject: string | undefined, now: number): Promise<RevocationState | undefined> {
    checkGetRevocation(tokenId, subject, now);
    const { token, subject: subj } = await this.getRevocationEntries(tokenId, subject, now);
    let state: RevocationState | undefined;
    if (token) {
      state = { revokedAt: token.time };
      if (token.reason !== undefined) state.reason = token.reason;
    }
    if (subj) {
      (state ??= {}).subjectRevokedBefore = subj.time;
      if (subj.reason !== undefined) state.subjectReason = subj.reason;
    }
    return state;
  }

  /** The live revocation entries of a token id and its subject, expiries and reasons included (what a cache in front keeps). */
  async getRevocationEntries(tokenId: string, subject: string | undefined, now: number): Promise<RevocationEntries> {
    checkGetRevocation(tokenId, subject, now);
    const rows = await this.query(
      'getRevocation',
      // Digest rows last: merged after an earlier release's spelling of the same id, their reason is the newer one.
      `SELECT kind, time, expires_at, reason FROM ${this.t.revocations} WHERE (kind = 't' AND id = ANY($1::text[])) OR (kind = 's' AND id = ANY($2::text[])) ORDER BY left(id, 2) = '%#'`,
      [pgForms(tokenId), subject === undefined ? [] : pgForms(subject)],
    );
    return toRevocationEntries(rows, now);
  }

  /**
   * One upsert with the contract's merge rules (the same as RedisStore's script): a live entry keeps its time (a
   * subject's cut-off only moves later) and is never shortened (kept-for-good wins, else the later expiry); the
   * latest reason given wins, a revocation without one keeps the earlier one; an expired entry is replaced.
   */
  private async writeRevocation(kind: 't' | 's', id: string, now: number, time: number, expiresAt: number | null, reason: string | null): Promise<void> {
    const r = this.t.revocations;
    const keepTime = kind === 't' ? 'r.time' : 'GREATEST(r.time, EXCLUDED.time)';
    await this.query(
      kind === 't' ? 'revoke' : 'revokeSubject',
      `INSERT INTO ${r} AS r (kind, id, time, expires_at, reason) VALUES ($1, $2, $3::float8, $4::float8, $5::text)
       ON CONFLICT (kind, id) DO UPDATE SET
         time = CASE WHEN r.expires_at IS NULL OR r.expires_at > $6::float8 THEN ${keepTime} ELSE EXCLUDED.time END,
         expires_at = CASE
           WHEN r.expires_at IS NOT NULL AND r.expires_at <= $6::float8 THEN EXCLUDED.expires_at
           WHEN r.expires_at IS NULL OR EXCLUDED.expires_at IS NULL THEN NULL
           ELSE GREATEST(r.expires_at, EXCLUDED.expires_at) END,
         reason = CASE WHEN r.expires_at IS NULL OR r.expires_at > $6::float8 THEN coalesce(EXCLUDED.reason, r.reason) ELSE EXCLUDED.reason END`,
      [kind, pgText(id), time, expiresAt, reason, now],
    );
  }

  // --- Lifecycle events (append-only; never capped: PostgreSQL keeps the whole audit trail)

  /** Appends one lifecycle event; an event whose id is already kept is a no-op. */
  async appendLifecycleEvent(event: LifecycleEvent): Promise<void> {
    checkLifecycleEvent(event);
    const kept = Object.fromEntries(Object.entries(event).filter(([, v]) => v !== undefined));
    await this.query(
      'appendLifecycleEvent',
      `INSERT INTO ${this.t.events} (id, at, type, token_id, subject, event) VALUES ($1, $2::float8, $3, $4, $5, $6::jsonb) ON CONFLICT (id) DO NOTHING`,
      [pgText(event.id), event.at, event.type, pgEventKey(event.tokenId), pgEventKey(event.subject), pgEventJson(kept)],
    );
  }

  /** The latest events matching `query` (subject, token id, since), oldest first, at most `limit` (default 100). */
  async listLifecycleEvents(query: LifecycleQuery): Promise<LifecycleEvent[]> {
    checkLifecycleQuery(query);
    const rows = await this.query(
      'listLifecycleEvents',
      `SELECT event::text AS event FROM (
         SELECT seq, event FROM ${this.t.events}
         WHERE ($1::text IS NULL OR (subject = $1 AND (event->>'subject' = $2 OR event ? '%')) OR (subject = $2 AND event->>'subject' = $2 AND NOT event ? '%'))
           AND ($3::text IS NULL OR (token_id = $3 AND (event->>'tokenId' = $4 OR event ? '%')) OR (token_id = $4 AND event->>'tokenId' = $4 AND NOT event ? '%'))
           AND ($5::float8 IS NULL OR at >= $5)
         ORDER BY seq DESC LIMIT $6
       ) latest ORDER BY seq`,
      [...pgEventForms(query.subject), ...pgEventForms(query.tokenId), query.since ?? null, query.limit ?? DEFAULT_EVENT_LIMIT],
    );
    return rows.map(toLifecycleEvent);
  }

  // --- Housekeeping

  /**
   * Deletes what has expired by `now`, in batches of `batchSize` rows per statement (short locks, rows another sweep
   * holds are skipped): revocations expired more than REVOCATION_TTL_SLACK_MS (5 minutes) before `now` (a sweeper
   * whose clock runs ahead must not drop what instances with a correct clock still refuse), and API key records
   * expired more than `keepExpiredKeys` ago.
   * Lifecycle events are never deleted. Run it from a timer or a job, not on the request path.
   */
  async sweep(options: PostgresSweepOptions): Promise<PostgresSweepResult> {
    if (options === null || typeof options !== 'object') throw new StoreArgumentError('sweep: expected { now, batchSize?, maxBatches?, keepExpiredKeys? }');
    const { now, batchSize = 1000, maxBatches = 100, keepExpiredKeys = 30 * 86_400_000 } = options;
    checkTime('sweep', 'now', now);
    for (const [name, v] of [
      ['batchSize', batchSize],
      ['maxBatches', maxBatches],
    ] as const) {
      if (!Number.isSafeInteger(v) || v < 1) throw new StoreArgumentError(`sweep: ${name} must be a positive integer (got ${String(v)})`);
    }
    if (keepExpiredKeys !== false && (typeof keepExpiredKeys !== 'number' || !Number.isFinite(keepExpiredKeys) || keepExpiredKeys < 0)) {
      throw new StoreArgumentError(`sweep: keepExpiredKeys must be milliseconds ≥ 0 or false (got ${String(keepExpiredKeys)})`);
    }
    const result: PostgresSweepResult = { revocations: 0, apiKeys: 0, more: false };
    const r = this.t.revocations;
    const k = this.t.apiKeys;
    const jobs: [keyof Omit<PostgresSweepResult, 'more'>, string, number][] = [
      ['revocations', `DELETE FROM ${r} WHERE (kind, id) IN (SELECT kind, id FROM ${r} WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`, now - REVOCATION_TTL_SLACK_MS],
    ];
    if (keepExpiredKeys !== false) {
      jobs.push(['apiKeys', `DELETE FROM ${k} WHERE hash IN (SELECT hash FROM ${k} WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`, now - keepExpiredKeys]);
    }
    let batches = 0;
    for (const [field, sql, cutoff] of jobs) {
      for (;;) {
        if (batches >= maxBatches) {
          result.more = true;
          return result;
        }
        batches++;
        const n = await this.count('sweep', sql, [cutoff, batchSize]);
        result[field] += n;
        if (n < batchSize) break;
      }
    }
    return result;
  }

  /** Nothing to release: the Pool is the app's, and the store holds no timer. */
  close(): void {}

  // --- Queries

  private query(what: string, text: string, values: unknown[]): Promise<QueryResultRow[]> {
    return this.bounded(what, this.attempt(text, values)).then((r) => r.rows);
  }

  private count(what: string, text: string, values: unknown[]): Promise<number> {
    return this.bounded(what, this.attempt(text, values)).then((r) => r.rowCount ?? 0);
  }

  /**
   * One statement, run again when PostgreSQL aborted it for a serialization failure or a deadlock: each statement is
   * its own transaction, so nothing of it stayed. Under READ COMMITTED (the default) that never happens; a database
   * whose default isolation is REPEATABLE READ or SERIALIZABLE aborts concurrent updates of one row (a key's uses,
   * a subject's revocation), which would otherwise answer 503. Tried again after a short random pause (so the
   * contenders spread out) while queryTimeout lasts, at most 20 times.
   */
  private async attempt(text: string, values: unknown[]): Promise<QueryResult> {
    const deadline = Date.now() + this.timeoutMs;
    for (let tries = 1; ; tries++) {
      // Refused without queueing: pg keeps a queued request until it gets a connection, which a database that does
      // not answer never gives, so each request of an outage would add one for good (the 503 comes from bounded()).
      const waiting = this.pool.waitingCount;
      if (waiting >= this.maxWaiting) {
        throw new StoreError(`${waiting} requests already wait for a pooled connection (maxWaiting ${this.maxWaiting}): the statement was not run`);
      }
      const client = await this.pool.connect();
      // A statement whose caller has been answered already (queryTimeout passed while it waited for a connection, say
      // behind a row lock) is not run: a refused request must not spend a key's use later, nor a backlog run stale.
      if (Date.now() >= deadline) {
        client.release();
        throw new StoreError(`no connection within ${this.timeoutMs} ms: the statement was not run`);
      }
      // While a client is checked out the pool no longer listens for its 'error': a socket reset mid-statement
      // (ECONNRESET, a proxy, a failover) would be an unhandled 'error' event and end the process. pg fails the
      // statement itself first; this listener, kept until the client is released, only keeps the event handled.
      const swallow = (): void => undefined;
      client.on('error', swallow);
      try {
        const result = await client.query({ text, values, types: PG_TYPES });
        client.release();
        return result;
      } catch (e) {
        // As pool.query does: a connection that failed a statement is not handed out again.
        client.release(e instanceof Error ? e : true);
        const code = (e as { code?: unknown } | null)?.code;
        if (tries >= 20 || Date.now() >= deadline || (code !== '40001' && code !== '40P01')) throw e;
      } finally {
        client.removeListener('error', swallow);
      }
      await new Promise((r) => setTimeout(r, Math.random() * 2 ** Math.min(tries, 6)));
    }
  }

  /** Within queryTimeout, and failing only with StoreError (the guard's 503), whatever pg threw. */
  private bounded<T>(what: string, promise: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new StoreError(`PostgreSQL ${what} timed out after ${this.timeoutMs} ms`)), this.timeoutMs);
      promise.then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (e: unknown) => {
          clearTimeout(timer);
          reject(new StoreError(`PostgreSQL ${what} failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e }));
        },
      );
    });
  }
}
