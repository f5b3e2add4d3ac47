// Opaque API keys: `prefix + 40 base62 chars + 6-char CRC32 checksum`; stores keep only the SHA-256.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { ApiKeyError } from '../core/errors.js';
import { parseDuration, type Duration } from '../core/duration.js';
import { checkCidr } from '../core/ip.js';
import type { IpRule } from '../checks/ip.js';
import { checkHours, type HoursRule } from '../checks/hours.js';
import type { ApiKeyRecord, RateLimitRule } from '../stores/types.js';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const BODY_LENGTH = 40; // 40 × log2(62) ≈ 238 bits of entropy
const CHECKSUM_LENGTH = 6; // base62 of a CRC32 (< 62^6)
const PREFIX_RE = /^[A-Za-z][A-Za-z0-9]{0,15}_$/;
const BODY_RE = /^[0-9A-Za-z]+$/;

/** Whether `prefix` is a valid API key prefix: a letter, up to 15 letters or digits, then `_` (e.g. `tg_`, `acmeLive_`). */
export function isValidPrefix(prefix: string): boolean {
  return PREFIX_RE.test(prefix);
}

function base62(n: number, width: number): string {
  let s = '';
  for (let i = 0; i < width; i++) {
    s = BASE62[n % 62] + s;
    n = Math.floor(n / 62);
  }
  return s;
}

function randomBase62(length: number): string {
  let out = '';
  // Rejection sampling: bytes ≥ 248 would bias the first 8 symbols (256 is not a multiple of 62).
  while (out.length < length) {
    for (const b of randomBytes(length * 2)) {
      if (b < 248 && out.length < length) out += BASE62[b % 62];
    }
  }
  return out;
}

function checksum(prefixAndBody: string): string {
  return base62(crc32(prefixAndBody), CHECKSUM_LENGTH);
}

/** The parts of a well-formed API key. */
export interface ParsedApiKey {
  prefix: string;
  body: string;
  checksum: string;
}

/**
 * Splits and checks an API key without any store lookup: right prefix, base62 body of at least 32
 * characters, valid CRC32 checksum. Returns null for a malformed or mistyped key.
 *
 * Exported from `token-guard`.
 * @example
 * parseApiKey('tg_4vJ…', 'tg_') // → { prefix: 'tg_', body: '4vJ…', checksum: '…' } or null
 */
export function parseApiKey(key: string, prefix?: string): ParsedApiKey | null {
  if (typeof key !== 'string' || key.length > 256) return null;
  const sep = key.indexOf('_');
  if (sep === -1) return null;
  const p = key.slice(0, sep + 1);
  if (prefix !== undefined ? p !== prefix : !isValidPrefix(p)) return null;
  const rest = key.slice(sep + 1);
  if (rest.length < 32 + CHECKSUM_LENGTH || !BODY_RE.test(rest)) return null;
  const body = rest.slice(0, -CHECKSUM_LENGTH);
  const sum = rest.slice(-CHECKSUM_LENGTH);
  return checksum(p + body) === sum ? { prefix: p, body, checksum: sum } : null;
}

/**
 * The store lookup key of an API key: SHA-256, base64url. The plaintext is never stored.
 *
 * Exported from `token-guard`.
 */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('base64url');
}

/** Options of `issueApiKey`. */
export interface IssueApiKeyOptions {
  /** Key prefix (`tg_`): lets the guard tell keys from JWTs and lets secret scanners recognise them. */
  prefix: string;
  subject: string;
  scopes: readonly string[];
  /** Lifetime (`'90d'`, ms), or `null` for a key that never expires. */
  expiresIn: Duration | null;
  /** Client addresses this key may be used from. */
  ip?: IpRule;
  /** Hours this key may be used in. */
  hours?: HoursRule;
  /** This key's own rate limit. */
  rateLimit?: RateLimitRule;
  /** Number of uses; the key is refused once they are spent. */
  uses?: number;
  name?: string;
  metadata?: Record<string, string | number | boolean>;
  /** Id of the key this one replaces (rotation). */
  rotatedFrom?: string;
  /** Issue time. Default: now. */
  now?: Date;
}

/** What `issueApiKey` returns: the plaintext key (show it once) and the record to store. */
export interface IssuedApiKey {
  key: string;
  record: ApiKeyRecord;
}

/**
 * Creates a new API key and its store record. The plaintext `key` is returned once and is not kept
 * anywhere; the `record` holds only its hash. Put the record in the store to activate the key.
 * Throws ApiKeyError on bad options.
 *
 * Exported from `token-guard`.
 * @example
 * const { key, record } = issueApiKey({ prefix: 'tg_', subject: 'svc-billing', scopes: ['orders:read'], expiresIn: '90d' });
 * await store.putApiKey(record);
 * console.log('give this to the client once:', key);
 */
export function issueApiKey(options: IssueApiKeyOptions): IssuedApiKey {
  const problems: string[] = [];
  if (typeof options.prefix !== 'string' || !isValidPrefix(options.prefix)) problems.push(`prefix: expected a letter, up to 15 letters or digits, then "_" (got ${JSON.stringify(options.prefix)})`);
  if (typeof options.subject !== 'string' || options.subject === '') problems.push('subject: expected a non-empty string');
  if (!Array.isArray(options.scopes) || options.scopes.some((s) => typeof s !== 'string' || s === '' || /\s/.test(s))) problems.push('scopes: expected an array of scope strings without spaces');
  const lifetime = options.expiresIn === null ? null : parseDuration(options.expiresIn);
  if (lifetime === undefined) problems.push(`expiresIn: expected a duration ('90d', '1h', ms) or null (got ${JSON.stringify(options.expiresIn)})`);
  // A zero lifetime issues a key that is already expired: a mistake, not a request.
  else if (lifetime === 0) problems.push('expiresIn: expected a duration greater than zero, or null for a key that never expires');
  // An invalid Date would make createdAt and expiresAt NaN, which a JSON store turns into null: a key that never expires.
  if (options.now !== undefined && !(options.now instanceof Date && Number.isFinite(options.now.getTime()))) problems.push('now: expected a valid Date');
  if (options.ip !== undefined) {
    // Checked key by key: a misspelt `alow`, or a string where a list belongs, must not issue an unrestricted key.
    if (!options.ip || typeof options.ip !== 'object' || Array.isArray(options.ip)) problems.push('ip: expected { allow?: [...], deny?: [...] }');
    else {
      for (const [field, list] of Object.entries(options.ip) as [string, unknown][]) {
        if (field !== 'allow' && field !== 'deny') problems.push(`ip.${field}: unknown key (expected allow or deny)`);
        else if (!Array.isArray(list)) problems.push(`ip.${field}: expected an array of IPs or CIDRs`);
        else list.forEach((c: unknown, i) => { const m = typeof c === 'string' ? checkCidr(c) : 'expected an IP or CIDR string'; if (m) problems.push(`ip.${field}[${i}]: ${m}`); });
      }
    }
  }
  if (options.hours) for (const p of checkHours(options.hours)) problems.push(`hours${p.path ? `.${p.path}` : ''}: ${p.message}`);
  if (options.rateLimit && !(Number.isInteger(options.rateLimit.limit) && options.rateLimit.limit > 0 && (parseDuration(options.rateLimit.window) ?? 0) > 0)) problems.push('rateLimit: expected { limit: positive integer, window: duration }');
  if (options.uses !== undefined && !(Number.isInteger(options.uses) && options.uses > 0)) problems.push('uses: expected a positive integer');
  if (problems.length) throw new ApiKeyError(`Invalid issueApiKey options: ${problems.join('; ')}`);

  const body = randomBase62(BODY_LENGTH);
  const key = options.prefix + body + checksum(options.prefix + body);
  const createdAt = (options.now ?? new Date()).getTime();
  const record: ApiKeyRecord = {
    id: `key_${randomUUID().replace(/-/g, '')}`,
    hash: hashApiKey(key),
    prefix: options.prefix,
    subject: options.subject,
    scopes: [...options.scopes],
    createdAt,
    expiresAt: lifetime === null ? null : createdAt + (lifetime as number),
  };
  if (options.ip) record.ip = { ...(options.ip.allow && { allow: [...options.ip.allow] }), ...(options.ip.deny && { deny: [...options.ip.deny] }) };
  if (options.hours) record.hours = structuredClone(options.hours) as HoursRule;
  if (options.rateLimit) record.rateLimit = { ...options.rateLimit };
  if (options.uses !== undefined) record.remaining = options.uses;
  if (options.name !== undefined) record.name = options.name;
  if (options.metadata !== undefined) record.metadata = { ...options.metadata };
  if (options.rotatedFrom !== undefined) record.rotatedFrom = options.rotatedFrom;
  return { key, record };
}
