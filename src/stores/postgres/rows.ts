// PostgresStore's values to and from rows: the text escape every id goes through, and the reading of what a query
// returns into records, revocation entries and lifecycle events. Anything that does not read as written is a
// StoreError (fail closed), never a guess.
import { createHash } from 'node:crypto';
import type { CustomTypesConfig, QueryResultRow } from 'pg';
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

// Every type not listed (text, char, int8) is read as the text PostgreSQL sent: a JS number cannot hold every int8, so
// integerOf reads its text exactly. Records and events are selected as text too (`record::text`) and parsed by
// objectOf, so a jsonb parser set elsewhere never sees them, and only text that spells a JSON object is read as one.
const asText = (v: string): string => v;
const TEXT_PARSERS: Readonly<Record<number, (v: string) => number>> = {
  21: Number, // int2
  23: Number, // int4
  700: Number, // float4
  701: Number, // float8: PostgreSQL writes the shortest text that reads back as the same double
};
// pg (8.x) hands a binary value over after a round trip through a UTF-8 string, which mangles most bytes of a
// number: a query on a client with `binary: true` (pool option, or pg.defaults) fails (StoreError) rather than read
// a revocation's time as another time.
function refuseBinary(): never {
  throw new Error('PostgresStore reads text results only: a client with binary: true would misread them');
}

/**
 * How every query of the store reads its columns, whatever the app set globally (`pg.types.setTypeParser`) or on its
 * pool (`types`): a BigInt parser for int8 or a jsonb parser that keeps the text, both common app settings, would
 * otherwise make every key with uses left, or every key, a 503.
 */
export const PG_TYPES: CustomTypesConfig = {
  getTypeParser: (oid: number, format?: string) => (format === 'binary' ? refuseBinary : (TEXT_PARSERS[oid] ?? asText)),
};

/** A float8 column as JS reads it: a number, or its text where another parser was at work (pg-native ignores PG_TYPES). */
export function numberOf(v: unknown, what: string): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN;
  if (!Number.isFinite(n)) throw new StoreError(`PostgreSQL returned a malformed ${what}`);
  return n;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * A bigint column as a safe integer: its text (PG_TYPES), or a BigInt or number from another parser. Beyond 2^53 it
 * is refused, never rounded: a count of uses read one off would let a use through that is not there.
 */
export function integerOf(v: unknown, what: string): number {
  let n = Number.NaN;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'bigint') n = v >= -MAX_SAFE && v <= MAX_SAFE ? Number(v) : Number.NaN;
  else if (typeof v === 'string' && /^-?\d{1,16}$/.test(v)) n = Number(v);
  if (!Number.isSafeInteger(n)) throw new StoreError(`PostgreSQL returned a malformed ${what}`);
  return n;
}

/** A jsonb column selected as text (`::text`), parsed: a JSON object, or a StoreError. */
function objectOf(v: unknown, what: string): object {
  let o: unknown;
  try {
    o = typeof v === 'string' ? JSON.parse(v) : undefined;
  } catch {
    // not JSON: refused below
  }
  if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new StoreError(`${what} in PostgreSQL is malformed`);
  return o;
}

/** The columns an API key record is read from (`record::text AS record, remaining`). */
export interface RecordRow {
  record: unknown;
  remaining: unknown;
}

/** A record from its row: the JSON, plus `remaining` from its own column. Anything else is a StoreError (fail closed). */
export function toRecord(row: RecordRow): ApiKeyRecord {
  const { remaining } = row;
  const record = objectOf(row.record, 'API key record');
  // Uses left live in their column, where useApiKey takes them atomically: one in the JSON came from another writer.
  if (Object.hasOwn(record, 'remaining')) throw new StoreError('API key record in PostgreSQL carries remaining in its JSON');
  const out = record as ApiKeyRecord;
  if (remaining !== null && remaining !== undefined) out.remaining = integerOf(remaining, 'uses left');
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

/** A lifecycle event from its row's `event` JSON (`event::text AS event`). */
export function toLifecycleEvent(row: QueryResultRow): LifecycleEvent {
  const e = objectOf(row['event'], 'lifecycle event');
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
