// Opaque API keys: `prefix + 40 base62 chars [+ 11-char keyed MAC] + 6-char CRC32 checksum`; stores keep only the SHA-256.
import { createHash, createHmac, createSecretKey, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { ApiKeyError } from '../leaf/errors.js';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const BODY_LENGTH = 40; // 40 × log2(62) ≈ 238 bits of entropy
const MIN_BODY_LENGTH = 32;
const CHECKSUM_LENGTH = 6; // base62 of a CRC32 (< 62^6)
const MAC_LENGTH = 11; // base62 of the first 64 bits of an HMAC-SHA256 (2^64 < 62^11)
const MIN_SECRET_BYTES = 32;
// A letter, then letters, digits or `_`, ending in `_` (`tg_`, `sk_live_`, `rk_test_`), at most 32 characters.
// The body and checksums are base62, so a key's prefix is everything up to its last `_`: `sk_` and `sk_live_`
// can both be accepted without one ever reading as the other. Not `eyJ…`: every JWT starts so (`{"`), and a
// token starting with an accepted prefix is only ever read as an API key.
const PREFIX_RE = /^(?!eyJ)[A-Za-z][A-Za-z0-9_]{0,30}_$/;
const BODY_RE = /^[0-9A-Za-z]+$/;

/** What a valid prefix looks like, for error messages. */
export const PREFIX_RULE = 'expected a letter, then letters, digits or "_", ending in "_", at most 32 characters, not starting with "eyJ" (e.g. "tg_", "sk_live_")';

/** Whether `prefix` is a valid API key prefix: a letter, then letters, digits or `_`, ending in `_`, at most 32 characters, not `eyJ…` (`tg_`, `sk_live_`). */
export function isValidPrefix(prefix: string): boolean {
  return PREFIX_RE.test(prefix);
}

/** Why `secret` cannot be a checksum secret, or undefined when it can: a string or bytes, at least 32 bytes. */
export function checksumSecretProblem(secret: unknown): string | undefined {
  if (typeof secret === 'string')
    return Buffer.byteLength(secret, 'utf8') >= MIN_SECRET_BYTES
      ? undefined
      : `expected at least ${MIN_SECRET_BYTES} bytes (e.g. crypto.randomBytes(32).toString('base64url'))`;
  if (secret instanceof Uint8Array) return secret.byteLength >= MIN_SECRET_BYTES ? undefined : `expected at least ${MIN_SECRET_BYTES} bytes`;
  return 'expected a string or a Uint8Array of at least 32 bytes';
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

function checksum(text: string): string {
  return base62(crc32(text), CHECKSUM_LENGTH);
}

/** The keyed checksum: HMAC-SHA256 of prefix + body under the deployment's secret, first 64 bits in base62. */
function keyedChecksum(secret: KeyObject, prefixAndBody: string): string {
  let n = createHmac('sha256', secret).update(prefixAndBody).digest().readBigUInt64BE(0);
  let s = '';
  for (let i = 0; i < MAC_LENGTH; i++) {
    s = BASE62[Number(n % 62n)] + s;
    n /= 62n;
  }
  return s;
}

/** The parts of a well-formed API key. */
export interface ParsedApiKey {
  prefix: string;
  /** The random part. Parsed without `checksumSecret`, a keyed key's MAC reads as the end of the body. */
  body: string;
  /** The CRC32 checksum (base62), over everything before it. */
  checksum: string;
  /** The keyed checksum, when the key was verified against a `checksumSecret`. */
  mac?: string;
}

/** Options of `parseApiKey`. */
export interface ParseApiKeyOptions {
  /** The prefix or prefixes accepted. Default: any valid prefix. */
  prefixes?: string | readonly string[];
  /** Verify the keyed checksum of keys minted with `issueApiKey({ checksumSecret })` (at least 32 bytes). */
  checksumSecret?: string | Uint8Array;
}

/** How a deployment's API keys look, compiled once: accepted prefixes and the checksum secret's key. */
export interface ApiKeyFormat {
  /** Accepted prefixes; undefined accepts any valid prefix. */
  prefixes: readonly string[] | undefined;
  secret: KeyObject | undefined;
}

/** Compiles parse options once (the guard does this at start-up). Throws ApiKeyError on a bad option. */
export function compileApiKeyFormat(options: ParseApiKeyOptions = {}): ApiKeyFormat {
  if (!options || typeof options !== 'object') throw new ApiKeyError('Invalid API key options: expected a prefix or { prefixes?, checksumSecret? }');
  const problems: string[] = [];
  const list = options.prefixes === undefined ? undefined : typeof options.prefixes === 'string' ? [options.prefixes] : options.prefixes;
  if (list !== undefined && (!Array.isArray(list) || list.some((p) => typeof p !== 'string'))) problems.push('prefixes: expected a prefix or a list of prefixes');
  const secretProblem = options.checksumSecret === undefined ? undefined : checksumSecretProblem(options.checksumSecret);
  if (secretProblem) problems.push(`checksumSecret: ${secretProblem}`);
  if (problems.length) throw new ApiKeyError(`Invalid API key options: ${problems.join('; ')}`);
  return {
    prefixes: list === undefined ? undefined : Object.freeze([...list]),
    secret: options.checksumSecret === undefined ? undefined : secretKeyOf(options.checksumSecret),
  };
}

function secretKeyOf(secret: string | Uint8Array): KeyObject {
  return createSecretKey(typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.from(secret));
}

/** Whether `token` starts with one of the format's prefixes: the guard then reads it as an API key, never as a JWT. */
export function hasApiKeyPrefix(token: string, format: ApiKeyFormat): boolean {
  const prefixes = format.prefixes;
  if (prefixes === undefined) return false;
  for (let i = 0; i < prefixes.length; i++) if (token.startsWith(prefixes[i] as string)) return true;
  return false;
}

/**
 * Checks an API key against a compiled format without any store lookup: `'malformed'` for a wrong prefix,
 * length, alphabet or CRC; `'forged'` for a key whose keyed checksum does not match this deployment's secret.
 */
export function checkApiKey(key: string, format: ApiKeyFormat): ParsedApiKey | 'malformed' | 'forged' {
  if (typeof key !== 'string' || key.length > 256) return 'malformed';
  // The body and both checksums are base62: the prefix ends at the last `_`, whatever prefixes are accepted.
  const sep = key.lastIndexOf('_');
  if (sep === -1) return 'malformed';
  const p = key.slice(0, sep + 1);
  if (format.prefixes !== undefined ? !format.prefixes.includes(p) : !isValidPrefix(p)) return 'malformed';
  const rest = key.slice(sep + 1);
  const macLength = format.secret ? MAC_LENGTH : 0;
  if (rest.length < MIN_BODY_LENGTH + macLength + CHECKSUM_LENGTH || !BODY_RE.test(rest)) return 'malformed';
  const sum = rest.slice(-CHECKSUM_LENGTH);
  if (checksum(p + rest.slice(0, -CHECKSUM_LENGTH)) !== sum) return 'malformed';
  if (!format.secret) return { prefix: p, body: rest.slice(0, -CHECKSUM_LENGTH), checksum: sum };
  const body = rest.slice(0, -(CHECKSUM_LENGTH + MAC_LENGTH));
  const mac = rest.slice(-(CHECKSUM_LENGTH + MAC_LENGTH), -CHECKSUM_LENGTH);
  // Both sides are MAC_LENGTH ASCII characters, so the buffers are the same length as timingSafeEqual needs.
  const expected = keyedChecksum(format.secret, p + body);
  if (!timingSafeEqual(Buffer.from(expected, 'latin1'), Buffer.from(mac, 'latin1'))) return 'forged';
  return { prefix: p, body, checksum: sum, mac };
}

/** Any valid prefix, no keyed checksum: the CRC32 covers a keyed key's MAC too, so every key of this format passes. */
const ANY_API_KEY: ApiKeyFormat = Object.freeze({ prefixes: undefined, secret: undefined });

/**
 * Whether `text` is shaped like an API key of this format, whatever its prefix: a valid prefix, a base62 body long
 * enough and a CRC32 checksum that matches. For refusing a raw key where an id belongs (a record id, `key_` + 32 hex
 * characters, is too short to pass).
 */
export function isApiKeyShaped(text: string): boolean {
  return typeof checkApiKey(text, ANY_API_KEY) === 'object';
}

/**
 * Splits and checks an API key without any store lookup: accepted prefix, base62 body of at least 32
 * characters, valid CRC32 checksum and, with `checksumSecret`, a keyed checksum minted under that secret.
 * Returns null for a malformed, mistyped or (with a secret) foreign key. The second argument is one
 * prefix (as before) or the options. Throws ApiKeyError for a checksumSecret under 32 bytes.
 *
 * Exported from `token-guard`.
 * @example
 * parseApiKey('tg_4vJ…', 'tg_') // → { prefix: 'tg_', body: '4vJ…', checksum: '…' } or null
 * parseApiKey(key, { prefixes: ['sk_live_', 'sk_test_'], checksumSecret: process.env.API_KEY_SECRET })
 */
export function parseApiKey(key: string, options?: string | ParseApiKeyOptions): ParsedApiKey | null {
  const format = compileApiKeyFormat(typeof options === 'string' ? { prefixes: options } : options);
  const parsed = checkApiKey(key, format);
  return typeof parsed === 'string' ? null : parsed;
}

/**
 * The store lookup key of an API key: SHA-256, base64url. The plaintext is never stored.
 *
 * Exported from `token-guard`.
 */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('base64url');
}

/**
 * A new key in this format: prefix, random base62 body, optional keyed checksum, CRC32 checksum. The record that
 * goes with it is built by `issueApiKey` (core/issue-api-key.ts), which validates its constraints. Options are
 * checked by the caller.
 */
export function mintApiKey(prefix: string, checksumSecret: string | Uint8Array | undefined): string {
  const body = randomBase62(BODY_LENGTH);
  const mac = checksumSecret === undefined ? '' : keyedChecksum(secretKeyOf(checksumSecret), prefix + body);
  return prefix + body + mac + checksum(prefix + body + mac);
}
