// issueApiKey: a new API key and its store record. The key's format is tokens/api-key.ts's; the record's
// constraints are validated by the same schemas the policy and the stored-record reader use.
import { randomUUID } from 'node:crypto';
import { ApiKeyError, shownValue } from '../leaf/errors.js';
import { parseDuration, type Duration } from '../leaf/duration.js';
import type { IpRule } from '../leaf/ip.js';
import type { HoursRule } from '../leaf/hours-rule.js';
import type { ApiKeyRecord, RateLimitRule } from '../leaf/store.js';
import { checksumSecretProblem, hashApiKey, isValidPrefix, mintApiKey, PREFIX_RULE } from '../tokens/api-key.js';
import { recordFieldProblems } from './record-schema.js';
import { illFormedStringAt } from '../leaf/well-formed.js';

/** Options of `issueApiKey`. */
export interface IssueApiKeyOptions {
  /** Key prefix (`tg_`, `sk_live_`): lets the guard tell keys from JWTs and lets secret scanners recognise them. */
  prefix: string;
  /**
   * Mint a keyed checksum with this secret (at least 32 bytes), so a guard given the same
   * `apiKeys.checksumSecret` refuses keys it did not mint without a store lookup. Default: CRC32 only.
   */
  checksumSecret?: string | Uint8Array;
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
  if (typeof options.prefix !== 'string' || !isValidPrefix(options.prefix)) problems.push(`prefix: ${PREFIX_RULE} (got ${shownValue(options.prefix)})`);
  const secretProblem = options.checksumSecret === undefined ? undefined : checksumSecretProblem(options.checksumSecret);
  if (secretProblem) problems.push(`checksumSecret: ${secretProblem}`);
  if (typeof options.subject !== 'string' || options.subject === '') problems.push('subject: expected a non-empty string');
  const lifetime = options.expiresIn === null ? null : parseDuration(options.expiresIn);
  if (lifetime === undefined) problems.push(`expiresIn: expected a duration ('90d', '1h', ms) or null (got ${shownValue(options.expiresIn)})`);
  // A zero lifetime issues a key that is already expired: a mistake, not a request.
  else if (lifetime === 0) problems.push('expiresIn: expected a duration greater than zero, or null for a key that never expires');
  // An invalid Date would make createdAt and expiresAt NaN, which a JSON store turns into null: a key that never expires.
  if (options.now !== undefined && !(options.now instanceof Date && Number.isFinite(options.now.getTime()))) problems.push('now: expected a valid Date');
  // Constraints by the schemas the policy and the stored-record reader use; name and metadata by theirs (record-schema.ts).
  for (const field of ['scopes', 'ip', 'hours', 'rateLimit', 'name', 'metadata'] as const) {
    if (field !== 'scopes' && options[field] === undefined) continue;
    problems.push(...recordFieldProblems(field, options[field]));
  }
  if (options.uses !== undefined && !(Number.isInteger(options.uses) && options.uses > 0)) problems.push('uses: expected a positive integer');
  // A lone surrogate (a name cut mid-emoji) is stored by one store and refused or undecodable in another.
  const illFormed = illFormedStringAt({ subject: options.subject, name: options.name, metadata: options.metadata }, 'options');
  if (illFormed !== undefined) problems.push(`${illFormed.path.slice('options.'.length)}: expected ${illFormed.problem}`);
  if (problems.length) throw new ApiKeyError(`Invalid issueApiKey options: ${problems.join('; ')}`);

  const key = mintApiKey(options.prefix, options.checksumSecret);
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
  record.lastFour = key.slice(-4);
  // Remembered so that a rotation without the secret is refused: its successor would fail the app's checksum check.
  if (options.checksumSecret !== undefined) record.keyedChecksum = true;
  return { key, record };
}
