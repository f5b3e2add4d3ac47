// PostgresStore's schema: table names under the store's prefix, and the versioned migrations `migrate()` applies.
// Each migration is applied once, in order, inside one transaction that holds an advisory lock, so several
// instances migrating at once apply it once; a database whose schema is newer than this code is refused.

/** The names of one store's tables (all quoted, so a prefix's case is kept). */
export class Tables {
  readonly version: string;
  readonly apiKeys: string;
  readonly revocations: string;
  readonly events: string;

  constructor(readonly prefix: string) {
    const q = (name: string) => `"${prefix}${name}"`;
    this.version = q('schema_version');
    this.apiKeys = q('api_keys');
    this.revocations = q('revocations');
    this.events = q('events');
  }

  /** An index name under the prefix (PostgreSQL index names are per schema, so they need the prefix too). */
  index(name: string): string {
    return `"${this.prefix}${name}"`;
  }
}

/** One schema version: the statements that bring the previous version to it. */
export interface Migration {
  version: number;
  statements(t: Tables): string[];
}

/**
 * Every schema version, oldest first. Never edit one that shipped: add the next.
 *
 * Times are `double precision` epoch ms (exact for every integer below 2^53, as in JS, and a fractional `now` stays
 * what the caller passed). API key records are kept whole as JSON (minus `remaining`, a column so that `useApiKey`
 * is one atomic UPDATE); the columns the store queries by are generated from it, so they can never disagree.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    statements: (t) => [
      `CREATE TABLE ${t.apiKeys} (
        hash text PRIMARY KEY,
        record jsonb NOT NULL,
        remaining bigint,
        id text GENERATED ALWAYS AS (record->>'id') STORED,
        subject text GENERATED ALWAYS AS (record->>'subject') STORED,
        expires_at double precision GENERATED ALWAYS AS ((record->>'expiresAt')::double precision) STORED,
        revoked_at double precision GENERATED ALWAYS AS ((record->>'revokedAt')::double precision) STORED,
        rotated_from text GENERATED ALWAYS AS (record->>'rotatedFrom') STORED,
        rotated_to text GENERATED ALWAYS AS (record->>'rotatedTo') STORED
      )`,
      `CREATE INDEX ${t.index('api_keys_subject')} ON ${t.apiKeys} (subject)`,
      `CREATE INDEX ${t.index('api_keys_id')} ON ${t.apiKeys} (id)`,
      `CREATE INDEX ${t.index('api_keys_expires_at')} ON ${t.apiKeys} (expires_at) WHERE expires_at IS NOT NULL`,
      // kind: 't' a token id (time = when revoked), 's' a subject (time = the cut-off: tokens issued before it).
      `CREATE TABLE ${t.revocations} (
        kind char(1) NOT NULL CHECK (kind IN ('t', 's')),
        id text NOT NULL,
        time double precision NOT NULL,
        expires_at double precision,
        reason text,
        PRIMARY KEY (kind, id)
      )`,
      `CREATE INDEX ${t.index('revocations_expires_at')} ON ${t.revocations} (expires_at) WHERE expires_at IS NOT NULL`,
      // Lifecycle events (appendLifecycleEvent): append-only, in the order appended (seq), one row per event id. The
      // store only ever INSERTs here, and sweep() never deletes from it. recorded_at is the database's clock, for audit.
      `CREATE TABLE ${t.events} (
        seq bigserial PRIMARY KEY,
        id text NOT NULL UNIQUE,
        at double precision NOT NULL,
        type text NOT NULL,
        token_id text,
        subject text,
        event jsonb NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now()
      )`,
      `CREATE INDEX ${t.index('events_token_id')} ON ${t.events} (token_id, seq) WHERE token_id IS NOT NULL`,
      `CREATE INDEX ${t.index('events_subject')} ON ${t.events} (subject, seq) WHERE subject IS NOT NULL`,
    ],
  },
];

/** The schema version this code writes and reads. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;
