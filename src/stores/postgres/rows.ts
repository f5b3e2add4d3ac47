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
  return digestIfLong(escapeText(s));
}

/** `%` and NUL as `%25` and `%00`: injective, and the identity on a string with neither. */
function escapeText(s: string): string {
  return s.includes('%') || s.includes('\0') ? s.replace(/[%\0]/g, (c) => (c === '%' ? '%25' : '%00')) : s;
}

/** The inverse of `escapeText`. */
function unescapeText(s: string): string {
  return s.includes('%') ? s.replace(/%(25|00)/g, (m) => (m === '%25' ? '%' : '\0')) : s;
}

/** `s`, or `%#` and its SHA-256 when it is longer than MAX_TEXT_BYTES. */
function digestIfLong(s: string): string {
  if (s.length * 3 <= MAX_TEXT_BYTES || Buffer.byteLength(s) <= MAX_TEXT_BYTES) return s;
  return `%#${createHash('sha256').update(s).digest('base64url')}`;
}

/**
 * The spellings under which a revocation id may be stored: its `pgText`, and, where it differs, what releases before
 * it wrote: escaped but not digested (PostgreSQL compresses an index entry, so a repetitive long id fitted).
 */
export function pgForms(s: string): string[] {
  const stored = pgText(s);
  const earlier = escapeText(s);
  return stored === earlier ? [stored] : [stored, earlier];
}

/**
 * A lifecycle query's subject or token id as listLifecycleEvents asks for it: its `pgText` (the column), and the
 * value itself, or null when it holds a NUL (text cannot carry one: only an escaped event can name it). A row is the
 * value's when its column is the `pgText` and its event names the value (or is escaped), or, as releases before this
 * one kept events, when its column and its unescaped event both spell the value as it is. So `al%00ice`'s old rows
 * are not listed for `al` NUL `ice`, whose column spells the same, nor a long value's digest row for a short value
 * spelled like that digest.
 */
export function pgEventForms(s: string | undefined): [string | null, string | null] {
  return s === undefined ? [null, null] : [pgText(s), s.includes('\0') ? null : s];
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
  if (!(ESCAPED in e)) return e as LifecycleEvent;
  const event: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e)) if (k !== ESCAPED) event[k] = typeof v === 'string' ? unescapeText(v) : v;
  return event as unknown as LifecycleEvent;
}

/** The mark of an event kept with its strings escaped: no lifecycle event field is named so (the store refuses others). */
const ESCAPED = '%';

/**
 * A lifecycle event as its jsonb column keeps it. jsonb holds no NUL, yet a subject or token id is the token issuer's
 * to choose: an event with a NUL in a string keeps every string escaped (as `pgText` does) and the mark, so it reads
 * back as it was given. Any other event is kept as it is.
 */
export function pgEventJson(event: Readonly<Record<string, unknown>>): string {
  if (!Object.values(event).some((v) => typeof v === 'string' && v.includes('\0'))) return JSON.stringify(event);
  const kept: Record<string, unknown> = { [ESCAPED]: 1 };
  for (const [k, v] of Object.entries(event)) kept[k] = typeof v === 'string' ? escapeText(v) : v;
  return JSON.stringify(kept);
}
