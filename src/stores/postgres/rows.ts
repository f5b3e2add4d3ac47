// PostgresStore's values to and from rows: the text escape every id goes through, and the reading of what a query
// returns into records, revocation entries and lifecycle events. Anything that does not read as written is a
// StoreError (fail closed), never a guess.
import { createHash } from 'node:crypto';
import type { QueryResultRow } from 'pg';
import { StoreError } from '../../leaf/errors.js';
import type { LifecycleEvent } from '../../leaf/lifecycle.js';
import type { ApiKeyRecord } from '../../leaf/store.js';
import type { RevocationEntries, RevocationEntry } from '../../leaf/store-parts.js';

/**
 * Longest id stored as it is, in UTF-8 bytes: a btree index entry holds at most 2704 bytes, so a longer `jti` (a
 * signed token may carry one of several kilobytes) could not be revoked at all.
 */
const MAX_TEXT_BYTES = 2600;

/**
 * PostgreSQL keeps no NUL in text, yet a token id or subject is the token issuer's to choose: an injective escape
 * (`%` and NUL as `%25` and `%00`) makes every string storable, and leaves the usual ones as they are. One longer than
 * MAX_TEXT_BYTES is kept as `%#` and its SHA-256, which no escaped string can spell (its `%` would be `%25`).
 */
export function pgText(s: string): string {
  return digestIfLong(s.includes('%') || s.includes('\0') ? s.replace(/[%\0]/g, (c) => (c === '%' ? '%25' : '%00')) : s);
}

/** What `digestIfLong` writes for a long value. */
const DIGEST_SHAPED = /^%#[A-Za-z0-9_-]{43}$/;

/** `s`, or `%#` and its SHA-256 when it is longer than MAX_TEXT_BYTES. */
function digestIfLong(s: string): string {
  if (s.length * 3 <= MAX_TEXT_BYTES || Buffer.byteLength(s) <= MAX_TEXT_BYTES) return s;
  return `%#${createHash('sha256').update(s).digest('base64url')}`;
}

/**
 * The spellings under which a value may be stored: its `pgText`, and what releases before it wrote where they differ.
 * Revocations were escaped but not digested (PostgreSQL compresses an index entry, so a repetitive long id fitted);
 * lifecycle events' token ids and subjects (`events: true`) were kept as they were. Such rows are read too.
 */
export function pgForms(s: string, events = false): string[] {
  const stored = pgText(s);
  const earlier = events ? s : s.replace(/[%\0]/g, (c) => (c === '%' ? '%25' : '%00'));
  // A NUL cannot even be asked about in text, and no earlier release could store one. An earlier event key spelled
  // like a digest is this release's digest of a long value, not an old row: read, it would merge two subjects.
  return stored === earlier || earlier.includes('\0') || DIGEST_SHAPED.test(earlier) ? [stored] : [stored, earlier];
}

/** A lifecycle event's token id or subject as its column keeps it: `pgText`, like revocation ids. */
export function pgEventKey(s: string | undefined): string | null {
  return s === undefined ? null : pgText(s);
}

/** A number column as JS reads it (float8 arrives as a number, bigint as a string). */
export function numberOf(v: unknown, what: string): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : Number.NaN;
  if (!Number.isFinite(n)) throw new StoreError(`PostgreSQL returned a malformed ${what}`);
  return n;
}

/** The columns an API key record is read from. */
export interface RecordRow {
  record: unknown;
  remaining: unknown;
}

/** A record from its row: the JSON, plus `remaining` from its own column. Anything else is a StoreError (fail closed). */
export function toRecord(row: RecordRow): ApiKeyRecord {
  const { record, remaining } = row;
  if (record === null || typeof record !== 'object' || Array.isArray(record)) throw new StoreError('API key record in PostgreSQL is malformed');
  // Uses left live in their column, where useApiKey takes them atomically: one in the JSON came from another writer.
  if (Object.hasOwn(record, 'remaining')) throw new StoreError('API key record in PostgreSQL carries remaining in its JSON');
  const out = record as ApiKeyRecord;
  if (remaining !== null && remaining !== undefined) {
    const n = numberOf(remaining, 'uses left');
    if (!Number.isSafeInteger(n)) throw new StoreError('API key uses left in PostgreSQL is not an integer');
    out.remaining = n;
  }
  return out;
}

function live(entry: RevocationEntry | null, now: number): RevocationEntry | null {
  return entry !== null && (entry.expiresAt === null || entry.expiresAt > now) ? entry : null;
}

function merged(a: RevocationEntry | null, b: RevocationEntry | null, time: (x: number, y: number) => number): RevocationEntry | null {
  if (a === null || b === null) return a ?? b;
  const out: RevocationEntry = { time: time(a.time, b.time), expiresAt: a.expiresAt === null || b.expiresAt === null ? null : Math.max(a.expiresAt, b.expiresAt) };
  const reason = b.reason ?? a.reason;
  if (reason !== undefined) out.reason = reason;
  return out;
}

/** The live entries among a token id's and its subject's revocation rows (kind, time, expires_at, reason). */
export function toRevocationEntries(rows: QueryResultRow[], now: number): RevocationEntries {
  const out: RevocationEntries = { token: null, subject: null };
  for (const row of rows) {
    const entry: RevocationEntry = {
      time: numberOf(row['time'], 'revocation time'),
      expiresAt: row['expires_at'] === null ? null : numberOf(row['expires_at'], 'revocation expiry'),
    };
    if (typeof row['reason'] === 'string') entry.reason = row['reason'];
    // Two rows of one kind: a long id under its digest and, from before the digest, as it was. Merged by the
    // contract's rules: revoked since the first time (a token) or up to the latest cut-off (a subject), for good if
    // either is, else until the later expiry.
    if (row['kind'] === 't') out.token = merged(out.token, live(entry, now), Math.min);
    else if (row['kind'] === 's') out.subject = merged(out.subject, live(entry, now), Math.max);
    else throw new StoreError('PostgreSQL returned a revocation of an unknown kind');
  }
  return out;
}

/** A lifecycle event from its row's `event` JSON. */
export function toLifecycleEvent(row: QueryResultRow): LifecycleEvent {
  const e = row['event'];
  if (e === null || typeof e !== 'object' || Array.isArray(e)) throw new StoreError('lifecycle event in PostgreSQL is malformed');
  return e as LifecycleEvent;
}
