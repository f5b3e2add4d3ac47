// What RedisStore keeps in Redis, read and written: API key records, revocation entries, usage hashes, script replies.
// Anything that does not read as what we wrote is a StoreError (fail closed), never a guess.
import { StoreError } from '../../leaf/errors.js';
import type { ApiKeyRecord, RevocationState, TokenUsage } from '../../leaf/store.js';
import { StoreArgumentError } from '../validate.js';
import type { Reply } from './lua.js';

/** A revocation entry as stored: the times, compared against the caller's `now` on every read. */
export interface RevocationEntry {
  time: number;
  exp: number | null;
  /** The reason given with the revocation, when there was one. */
  reason?: string;
}

/** The fields of a usage hash, in the order `readUsage` takes them. */
export const USAGE_FIELDS = ['count', 'first', 'at', 'ip', 'ua', 'ips', 'min', 'minc'] as const;

/** A number in a script's reply. */
export function num(v: Reply | undefined): number {
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isFinite(n)) throw new StoreError('Redis returned a malformed rate-limit reply');
  return n;
}

function parseJson(raw: string, what: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch (e) {
    throw new StoreError(`${what} in Redis is not valid JSON`, { cause: e });
  }
}

/**
 * Parses a record's `rec` JSON. We never write `remaining` there (uses left live in `rem`, where `useApiKey` takes
 * them atomically), so JSON that carries it came from another writer: read as limited, it would never be spent.
 */
export function recordJson(raw: string): ApiKeyRecord {
  const record = parseJson(raw, 'API key record') as ApiKeyRecord;
  if (record && typeof record === 'object' && Object.hasOwn(record, 'remaining')) {
    throw new StoreError('API key record in Redis carries remaining in its JSON; uses left belong in the rem field (store it again with putApiKey)');
  }
  return record;
}

/** A record from its `rec` JSON and `rem` field (uses left, absent when unlimited); undefined when there is none. */
export function toRecord(rec: string | null, rem: string | null): ApiKeyRecord | undefined {
  if (rec === null) return undefined;
  // A record of the wrong shape is returned as it is: the guard refuses it with token.invalid.
  const record = recordJson(rec);
  if (rem !== null) {
    const n = Number(rem);
    if (!Number.isSafeInteger(n)) throw new StoreError('API key uses left in Redis is not an integer');
    if (record && typeof record === 'object') record.remaining = n;
  }
  return record;
}

/** Uses left as the scripts take them: '' for unlimited. */
export function usesLeft(remaining: number | undefined): string {
  if (remaining === undefined) return '';
  if (!Number.isSafeInteger(remaining)) throw new StoreArgumentError(`RedisStore: remaining must be an integer (got ${String(remaining)})`);
  return String(remaining);
}

/** A revocation entry (`field` is `at` for a token, `before` for a subject), or null when there is none. */
export function parseEntry(raw: string | null, field: 'at' | 'before'): RevocationEntry | null {
  if (raw === null) return null;
  const v = parseJson(raw, 'revocation entry');
  // A revocation we cannot read must never read as "not revoked": fail closed.
  if (!v || typeof v !== 'object') throw new StoreError('revocation entry in Redis is malformed');
  const o = v as Record<string, unknown>;
  const time = o[field];
  const exp = o['exp'];
  const reason = o['r'];
  if (typeof time !== 'number' || (exp !== null && typeof exp !== 'number') || (reason !== undefined && typeof reason !== 'string')) {
    throw new StoreError('revocation entry in Redis is malformed');
  }
  return reason === undefined ? { time, exp } : { time, exp, reason };
}

function live(entry: RevocationEntry | null, now: number): entry is RevocationEntry {
  return entry !== null && (entry.exp === null || entry.exp > now);
}

/** What a token's and its subject's entries mean at `now` (an entry past its expiry means nothing). */
export function toState(token: RevocationEntry | null, subject: RevocationEntry | null, now: number): RevocationState | undefined {
  let state: RevocationState | undefined;
  if (live(token, now)) state = token.reason === undefined ? { revokedAt: token.time } : { revokedAt: token.time, reason: token.reason };
  if (live(subject, now)) {
    state ??= {};
    state.subjectRevokedBefore = subject.time;
    if (subject.reason !== undefined) state.subjectReason = subject.reason;
  }
  return state;
}

/** A token's usage from its hash's fields (in `USAGE_FIELDS` order); undefined when it was never used. */
export function readUsage(fields: (string | null | undefined)[]): TokenUsage | undefined {
  const [count, first, at, ip, ua, ips, minute, minuteCount] = fields;
  if (count === null || count === undefined) return undefined;
  const usage: TokenUsage = {
    count: Number(count),
    firstUsedAt: Number(first ?? at),
    lastUsedAt: Number(at),
    recentIps: typeof ips === 'string' && ips !== '' ? ips.split(',') : [],
    minute: Number(minute ?? 0),
    minuteCount: Number(minuteCount ?? 0),
  };
  if (![usage.count, usage.minuteCount].every(Number.isSafeInteger) || ![usage.firstUsedAt, usage.lastUsedAt, usage.minute].every(Number.isFinite)) {
    throw new StoreError('usage in Redis is malformed');
  }
  if (typeof ip === 'string') usage.lastIp = ip;
  if (typeof ua === 'string') usage.lastUserAgent = ua;
  return usage;
}
