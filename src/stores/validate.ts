// Argument checks shared by MemoryStore and RedisStore: a caller's mistake (a Date where epoch ms belong, a missing
// `now`, NaN, an empty id) is refused loudly instead of being stored as something that silently does nothing.
import { MAX_WINDOW_MS, type ApiKeyPatch, type ApiKeyRecord, type ApiKeyUpdateCondition, type RateLimitCheck, type UsageEvent } from '../leaf/store.js';

export { MAX_WINDOW_MS } from '../leaf/store.js';
import { UsageError } from '../leaf/errors.js';
import { LIFECYCLE_EVENT_TYPES, REVOCATION_REASON_RE, type LifecycleEvent, type LifecycleQuery } from '../leaf/lifecycle.js';
import { hasLoneSurrogate, illFormedStringAt } from '../leaf/well-formed.js';

/**
 * A store method or store constructor was given an argument it cannot honour: a developer mistake, never a
 * request's fault. A `TypeError`, with a stable `code` to switch on.
 *
 * Exported from `token-guard` and `token-guard/redis`.
 */
export class StoreArgumentError extends UsageError {
  /** Always `store.invalid_argument`. */
  override readonly code = 'store.invalid_argument';

  constructor(message: string) {
    super(message);
    this.name = 'StoreArgumentError';
  }
}

/**
 * The largest time accepted, in epoch ms: a little past what a JS Date can hold (8.64e15), so a token's expiry plus
 * the clock tolerance still fits, and below 2^53, so times stay exact integers in JS and in Redis's Lua.
 */
const MAX_TIME = 9e15;

function show(value: unknown): string {
  if (value instanceof Date) return 'a Date (pass epoch milliseconds: date.getTime())';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean' || value === null || value === undefined) return String(value);
  return Array.isArray(value) ? 'an array' : `a ${typeof value}`;
}

function fail(where: string, what: string, expected: string, value: unknown): never {
  throw new StoreArgumentError(`${where}: ${what} must be ${expected} (got ${show(value)})`);
}

const WELL_FORMED = 'well-formed Unicode, without a lone UTF-16 surrogate (PostgreSQL and Redis keep one as U+FFFD)';

/**
 * `value` is a non-empty, well-formed string (an id, hash, subject or name). A lone surrogate is refused by every
 * store alike: PostgreSQL and Redis would file `tok-\uD800` and `tok-\uDC00` under one key, MemoryStore under two.
 */
export function checkId(where: string, what: string, value: unknown): asserts value is string {
  if (typeof value !== 'string' || value === '') fail(where, what, 'a non-empty string', value);
  if (hasLoneSurrogate(value)) fail(where, what, WELL_FORMED, value);
}

/** `value` is a time in epoch milliseconds: a finite number within a Date's range. */
export function checkTime(where: string, what: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isFinite(value) || Math.abs(value) > MAX_TIME) fail(where, what, 'epoch milliseconds (a finite number)', value);
}

function checkOptionalTime(where: string, what: string, value: unknown): void {
  if (value !== undefined) checkTime(where, what, value);
}

function checkObject(where: string, what: string, value: unknown): asserts value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail(where, what, 'an object', value);
}

/** A revocation reason, when given: a lower-case word (see RevocationReason), safe to log and show. */
export function checkReason(where: string, what: string, value: unknown): void {
  if (value !== undefined && (typeof value !== 'string' || !REVOCATION_REASON_RE.test(value))) {
    fail(where, what, 'a lower-case word (a-z, 0-9, _ . -, at most 64 characters)', value);
  }
}

/** `revoke(tokenId, { now, expiresAt?, reason? })`. An `expiresAt` at or before `now` is valid: it need not be stored. */
export function checkRevoke(tokenId: unknown, options: unknown): void {
  checkId('revoke', 'tokenId', tokenId);
  checkObject('revoke', 'options ({ now, expiresAt? })', options);
  checkTime('revoke', 'options.now', options['now']);
  checkOptionalTime('revoke', 'options.expiresAt', options['expiresAt']);
  checkReason('revoke', 'options.reason', options['reason']);
}

/** `revokeSubject(subject, { now, before, expiresAt? })`. */
export function checkRevokeSubject(subject: unknown, options: unknown): void {
  checkId('revokeSubject', 'subject', subject);
  checkObject('revokeSubject', 'options ({ now, before, expiresAt? })', options);
  checkTime('revokeSubject', 'options.now', options['now']);
  checkTime('revokeSubject', 'options.before', options['before']);
  checkOptionalTime('revokeSubject', 'options.expiresAt', options['expiresAt']);
  checkReason('revokeSubject', 'options.reason', options['reason']);
}

/**
 * `getRevocation(tokenId, subject, now)`. The subject may be any well-formed string, the empty one too (a token's `sub`
 * is not ours to judge; the verifiers refuse an ill-formed one before it gets here).
 */
export function checkGetRevocation(tokenId: unknown, subject: unknown, now: unknown): void {
  checkId('getRevocation', 'tokenId', tokenId);
  if (subject !== undefined && typeof subject !== 'string') fail('getRevocation', 'subject', 'a string or undefined', subject);
  if (subject !== undefined && hasLoneSurrogate(subject)) fail('getRevocation', 'subject', WELL_FORMED, subject);
  checkTime('getRevocation', 'now', now);
}

/**
 * `consume(tokenId, checks, now)`: whole-ms `now` and windows, whole positive limits, names unique within the call
 * (two checks of one name would share one counter and charge it once).
 */
export function checkConsume(tokenId: unknown, checks: unknown, now: unknown): asserts checks is readonly RateLimitCheck[] {
  checkId('consume', 'tokenId', tokenId);
  if (!Array.isArray(checks)) fail('consume', 'checks', 'an array', checks);
  checkTime('consume', 'now', now);
  if (!Number.isInteger(now)) fail('consume', 'now', 'whole epoch milliseconds', now);
  const names = new Set<string>();
  checks.forEach((c: unknown, i) => {
    checkObject('consume', `checks[${i}]`, c);
    checkId('consume', `checks[${i}].name`, c['name']);
    if (names.has(c['name'])) fail('consume', `checks[${i}].name`, 'unique within the call', c['name']);
    names.add(c['name']);
    const limit = c['limit'];
    if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1) fail('consume', `checks[${i}].limit`, 'a positive integer', limit);
    const windowMs = c['windowMs'];
    if (typeof windowMs !== 'number' || !Number.isInteger(windowMs) || windowMs < 1 || windowMs > MAX_WINDOW_MS) {
      fail('consume', `checks[${i}].windowMs`, `whole milliseconds from 1 to ${MAX_WINDOW_MS}`, windowMs);
    }
  });
}

/** `recordUsage(tokenId, { at, ip?, userAgent? })`. */
export function checkRecordUsage(tokenId: unknown, usage: unknown): asserts usage is UsageEvent {
  checkId('recordUsage', 'tokenId', tokenId);
  checkObject('recordUsage', 'usage ({ at, ip?, userAgent? })', usage);
  checkTime('recordUsage', 'usage.at', usage['at']);
  // Written out rather than looped over a list of names: this runs on every allowed request.
  const { ip, userAgent } = usage;
  if (ip !== undefined && typeof ip !== 'string') fail('recordUsage', 'usage.ip', 'a string or undefined', ip);
  if (userAgent !== undefined && typeof userAgent !== 'string') fail('recordUsage', 'usage.userAgent', 'a string or undefined', userAgent);
}

/**
 * The fields of an API key record or patch that the guard and the stores compute with: times as epoch ms, uses left
 * as an integer, ids and scopes as strings. (Policy-shaped fields such as `ip` and `hours` are the guard's to check.)
 */
function checkRecordFields(where: string, r: Record<string, unknown>, prefix: string): void {
  const has = (k: string): boolean => Object.hasOwn(r, k) && r[k] !== undefined;
  if (has('subject') && typeof r['subject'] !== 'string') fail(where, `${prefix}subject`, 'a string', r['subject']);
  if (has('scopes') && (!Array.isArray(r['scopes']) || !r['scopes'].every((s) => typeof s === 'string'))) fail(where, `${prefix}scopes`, 'an array of strings', r['scopes']);
  if (has('expiresAt') && r['expiresAt'] !== null) checkTime(where, `${prefix}expiresAt`, r['expiresAt']);
  if (has('revokedAt')) checkTime(where, `${prefix}revokedAt`, r['revokedAt']);
  if (has('remaining') && (typeof r['remaining'] !== 'number' || !Number.isSafeInteger(r['remaining']))) fail(where, `${prefix}remaining`, 'an integer', r['remaining']);
  if (has('rotatedAt')) checkTime(where, `${prefix}rotatedAt`, r['rotatedAt']);
  checkReason(where, `${prefix}revocationReason`, r['revocationReason']);
  for (const k of ['rotatedFrom', 'rotatedTo', 'lastFour'] as const) if (has(k)) checkId(where, `${prefix}${k}`, r[k]);
  if (has('keyedChecksum') && typeof r['keyedChecksum'] !== 'boolean') fail(where, `${prefix}keyedChecksum`, 'a boolean', r['keyedChecksum']);
  // Every store must hold what one holds: RedisStore and PostgresStore write the record as JSON, which has no BigInt
  // (a bare TypeError mid-write), function or symbol (dropped), NaN or Infinity (null), Map, Set, Date or class
  // instance (`{}`, a string); MemoryStore cloned them as they were, or threw a DataCloneError.
  let unstorable: { path: string; problem: string } | undefined;
  try {
    unstorable = nonJsonValueAt(r, prefix.slice(0, -1), 0);
  } catch {
    // A getter that throws, a revoked Proxy: no store could write it either.
    unstorable = { path: prefix.slice(0, -1), problem: `${JSON_VALUE} (reading it threw)` };
  }
  if (unstorable !== undefined) throw new StoreArgumentError(`${where}: ${unstorable.path} must be ${unstorable.problem}`);
  // PostgreSQL refuses a lone surrogate, Redis's Lua cannot decode one.
  const illFormed = illFormedStringAt(r, prefix.slice(0, -1));
  if (illFormed !== undefined) throw new StoreArgumentError(`${where}: ${illFormed.path} must be ${illFormed.problem}`);
}

/** Nesting deeper than any record has (a cycle, most likely); the same bound as `illFormedStringAt`'s. */
const MAX_DEPTH = 16;
const JSON_VALUE = 'a JSON value: a string, a finite number, a boolean, null, an array or a plain object';

/** What a value that JSON cannot hold as it is was, for the message; undefined for a JSON value. */
function nonJsonKind(v: unknown): string | undefined {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(v) ? undefined : String(v);
    case 'undefined':
      return 'undefined';
    case 'object': {
      if (v === null || Array.isArray(v)) return undefined;
      const proto: unknown = Object.getPrototypeOf(v);
      if (proto === Object.prototype || proto === null) return undefined;
      const name = (proto as { constructor?: { name?: unknown } }).constructor?.name;
      // 'an Array…', 'a Map', 'a Uint8Array'; a name that is no plain word is not shown.
      return typeof name === 'string' && /^\w{1,40}$/.test(name) ? `${/^[AEIO]/i.test(name) ? 'an' : 'a'} ${name}` : 'an object that is not a plain object';
    }
    default:
      return `a ${typeof v}`; // bigint, function, symbol
  }
}

/**
 * Where `value` holds something JSON cannot write as it is (so stores would hold it differently), or nests deeper than
 * any record does, below `path`; undefined when nothing is. An object's undefined fields are absent fields, kept by
 * no store; an array's are not. One pass over plain objects and arrays: linear in the record's size.
 */
function nonJsonValueAt(value: unknown, path: string, depth: number): { path: string; problem: string } | undefined {
  const kind = nonJsonKind(value);
  if (kind !== undefined) return { path, problem: `${JSON_VALUE} (got ${kind})` };
  if (value === null || typeof value !== 'object') return undefined;
  if (depth >= MAX_DEPTH) return { path, problem: `nested at most ${MAX_DEPTH} levels deep` };
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      // A hole or undefined reads back as null from a JSON store: refused like any value JSON changes.
      const at = nonJsonValueAt(value[i], `${path}[${i}]`, depth + 1);
      if (at !== undefined) return at;
    }
    return undefined;
  }
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined) continue;
    const at = nonJsonValueAt(v, `${path}.${k}`, depth + 1);
    if (at !== undefined) return at;
  }
  return undefined;
}

/** `putApiKey(record)`: a whole record. */
export function checkPutApiKey(record: unknown): asserts record is ApiKeyRecord {
  checkObject('putApiKey', 'record', record);
  for (const k of ['id', 'hash', 'prefix'] as const) checkId('putApiKey', `record.${k}`, record[k]);
  if (typeof record['subject'] !== 'string') fail('putApiKey', 'record.subject', 'a string', record['subject']);
  if (!Array.isArray(record['scopes'])) fail('putApiKey', 'record.scopes', 'an array of strings', record['scopes']);
  checkTime('putApiKey', 'record.createdAt', record['createdAt']);
  if (record['expiresAt'] !== null) checkTime('putApiKey', 'record.expiresAt', record['expiresAt']);
  checkRecordFields('putApiKey', record, 'record.');
}

/** `updateApiKey(hash, patch)`: the fields the patch sets (a `remaining` set to undefined takes the use limit away). */
export function checkUpdateApiKey(hash: unknown, patch: unknown, condition?: unknown): asserts patch is ApiKeyPatch {
  checkId('updateApiKey', 'hash', hash);
  checkObject('updateApiKey', 'patch', patch);
  checkRecordFields('updateApiKey', patch, 'patch.');
  if (condition === undefined) return;
  checkObject('updateApiKey', 'condition', condition);
  const unknown = Object.keys(condition as object).filter((k) => k !== 'unrotatedAndUnrevoked');
  const flag = (condition as ApiKeyUpdateCondition).unrotatedAndUnrevoked;
  // A condition the store does not understand must not be ignored: that would turn a guarded write into a plain one.
  if (unknown.length > 0 || (flag !== undefined && typeof flag !== 'boolean')) {
    // Described, not serialised: JSON.stringify throws on a BigInt or a cycle, a TypeError instead of this one.
    const key = unknown[0];
    const got = key !== undefined ? `the key ${JSON.stringify(key.length > 40 ? `${key.slice(0, 40)}…` : key)}` : `unrotatedAndUnrevoked as a ${typeof flag}`;
    throw new StoreArgumentError(`updateApiKey: condition takes only unrotatedAndUnrevoked (a boolean); got ${got}`);
  }
}

/** Whether `record` fails `condition`: then `updateApiKey` writes nothing. */
export function failsCondition(record: ApiKeyRecord, condition: ApiKeyUpdateCondition | undefined): boolean {
  return condition?.unrotatedAndUnrevoked === true && (record.rotatedTo !== undefined || record.revokedAt !== undefined);
}

const EVENT_TYPES = new Set<string>(LIFECYCLE_EVENT_TYPES);
const EVENT_STRINGS = ['subject', 'tokenId', 'actor', 'successorId', 'issuer'] as const;
const EVENT_FIELDS = new Set<string>(['id', 'type', 'at', 'reason', 'sunsetAt', ...EVENT_STRINGS]);

/**
 * `appendLifecycleEvent(event)`: a known type, an id, times as epoch ms, a reason of the safe shape, and no field
 * beyond the event's own (an event carries no secret and no hash: a field that could hold one is refused).
 */
export function checkLifecycleEvent(event: unknown): asserts event is LifecycleEvent {
  const where = 'appendLifecycleEvent';
  checkObject(where, 'event', event);
  for (const k of Object.keys(event)) if (!EVENT_FIELDS.has(k) && event[k] !== undefined) fail(where, `event.${k}`, 'absent (not a lifecycle event field)', event[k]);
  checkId(where, 'event.id', event['id']);
  if (typeof event['type'] !== 'string' || !EVENT_TYPES.has(event['type'])) fail(where, 'event.type', `one of ${LIFECYCLE_EVENT_TYPES.join(', ')}`, event['type']);
  checkTime(where, 'event.at', event['at']);
  checkOptionalTime(where, 'event.sunsetAt', event['sunsetAt']);
  checkReason(where, 'event.reason', event['reason']);
  for (const k of EVENT_STRINGS) if (event[k] !== undefined) checkId(where, `event.${k}`, event[k]);
}

/** `listLifecycleEvents(query)`: strings, epoch ms and a positive integer limit, each when given. */
export function checkLifecycleQuery(query: unknown): asserts query is LifecycleQuery {
  const where = 'listLifecycleEvents';
  checkObject(where, 'query ({ subject?, tokenId?, since?, limit? })', query);
  for (const k of ['subject', 'tokenId'] as const) if (query[k] !== undefined) checkId(where, `query.${k}`, query[k]);
  checkOptionalTime(where, 'query.since', query['since']);
  const limit = query['limit'];
  if (limit !== undefined && (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1)) fail(where, 'query.limit', 'a positive integer', limit);
}

/** Whether a kept event matches a query (limit aside). */
export function matchesQuery(event: LifecycleEvent, query: LifecycleQuery): boolean {
  return (
    (query.subject === undefined || event.subject === query.subject) &&
    (query.tokenId === undefined || event.tokenId === query.tokenId) &&
    (query.since === undefined || event.at >= query.since)
  );
}

/** How many events `listLifecycleEvents` returns when the query names no limit. */
export const DEFAULT_EVENT_LIMIT = 100;
