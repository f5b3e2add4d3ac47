// The lifecycle of API keys outside a request: create (issue + store), list a subject's keys, rotate with a grace
// period, revoke with a reason, and read the lifecycle audit trail. Every change is reported as a LifecycleEvent to
// the caller's `onEvent` and appended to the store when the store keeps events.
import type { Duration } from '../leaf/duration.js';
import type { LifecycleEvent, LifecycleQuery, RevocationReason } from '../leaf/lifecycle.js';
import type { ApiKeyRecord, TokenStore } from '../leaf/store.js';
import type { IssueApiKeyOptions, IssuedApiKey } from './issue-api-key.js';

/** Options every lifecycle function takes: who acts, when, and where events go besides the store. */
export interface LifecycleOptions {
  /** Who makes the change, recorded in its event (`alice@example.com`, `cli`). Default: none. */
  actor?: string;
  /** Called with each event the call produces (after the store kept it). Its errors are swallowed. Default: none. */
  onEvent?: (event: LifecycleEvent) => void | Promise<void>;
  /** The time of the change. Default: now. */
  now?: Date;
}

/**
 * What `listApiKeys` shows about a key: metadata only, never its hash (which would work as a lookup key) nor the
 * key. Times are Dates.
 */
export interface ApiKeySummary {
  id: string;
  name?: string;
  subject: string;
  /** The key's prefix (`tg_`). */
  prefix: string;
  /** The key's last four characters, when the record knows them (keys issued by this version on). */
  lastFour?: string;
  scopes: string[];
  createdAt: Date;
  /** Null for a key that never expires. */
  expiresAt: Date | null;
  /** Its last use as the guard recorded it (`trackUsage`), when known. */
  lastUsedAt?: Date;
  /** When it was or will be revoked (a rotated key's end of grace). */
  revokedAt?: Date;
  revocationReason?: RevocationReason;
  rotatedFrom?: string;
  rotatedTo?: string;
  rotatedAt?: Date;
  /**
   * Its state at the time asked: `active`, `grace` (rotated, still accepted until `revokedAt`), `revoked`,
   * `expired` (its expiry passed, or no uses left).
   */
  state: 'active' | 'grace' | 'revoked' | 'expired';
  /** Uses left, for a key with a use limit. */
  remaining?: number;
  metadata?: Record<string, string | number | boolean>;
}

/** Options of `listApiKeys`. */
export interface ListApiKeysOptions {
  /** The time `state` is computed at. Default: now. */
  now?: Date;
}

/** Options of `createApiKey`: those of `issueApiKey`, plus who acts and where events go. */
export type CreateApiKeyOptions = IssueApiKeyOptions & Omit<LifecycleOptions, 'now'>;

/** The longest rotation grace accepted: 30 days. A longer overlap keeps a possibly leaked key alive too long. */
export const MAX_ROTATION_GRACE_MS = 30 * 86_400_000;

/** Options of `rotateApiKey`. */
export interface RotateApiKeyOptions extends LifecycleOptions {
  /**
   * How long the old key keeps working beside its successor (`'24h'`), from 0 (refused at once) to 30 days. During
   * it, answers to the old key carry `Deprecation` and `Sunset` headers. Never past the old key's own expiry.
   * Default: 0.
   */
  grace?: Duration;
  /** The successor's lifetime. Default: the old key's (`expiresAt − createdAt`), or none when it never expired. */
  expiresIn?: Duration | null;
  /** Secret of the keyed checksum (as `issueApiKey`'s). Default: none. */
  checksumSecret?: string | Uint8Array;
  /** Why (recorded on the old key's event and as its revocation reason). Default: `'rotated'`. */
  reason?: RevocationReason;
}

/** What `rotateApiKey` returns: the successor (plaintext once, and its stored record) and the old key as it is now. */
export interface RotatedApiKey extends IssuedApiKey {
  /** The old key after rotation. */
  previous: ApiKeySummary;
  /** When the old key stops working. */
  sunsetAt: Date;
}

/** Options of `revokeApiKey`. */
export interface RevokeApiKeyOptions extends LifecycleOptions {
  /** Why: `compromised`, `offboarded`, … (see RevocationReason). Default: `'unspecified'`. */
  reason?: RevocationReason;
}

const notYet = (name: string): never => {
  throw new Error(`${name}: not implemented yet`);
};

/**
 * Issues a key (as `issueApiKey`), stores its record and reports `key.issued`. Returns the plaintext once.
 *
 * Exported from `token-guard`.
 * @example
 * const { key } = await createApiKey(store, { prefix: 'tg_', subject: 'svc-billing', scopes: ['orders:read'], expiresIn: '90d', actor: 'alice' });
 */
export async function createApiKey(store: TokenStore, options: CreateApiKeyOptions): Promise<IssuedApiKey> {
  return notYet(`createApiKey(${typeof store}, ${typeof options})`);
}

/**
 * Every key of `subject`, newest first, as metadata (never the hash). Needs a store with a key inventory
 * (`listApiKeys`/`getApiKeyById`: MemoryStore and RedisStore have one); otherwise throws UsageError `store.unsupported`.
 *
 * Exported from `token-guard`.
 */
export async function listApiKeys(store: TokenStore, subject: string, options: ListApiKeysOptions = {}): Promise<ApiKeySummary[]> {
  return notYet(`listApiKeys(${typeof store}, ${subject}, ${typeof options})`);
}

/**
 * One key by its record id, as metadata, or undefined. Needs a store with a key inventory.
 *
 * Exported from `token-guard`.
 */
export async function findApiKey(store: TokenStore, id: string, options: ListApiKeysOptions = {}): Promise<ApiKeySummary | undefined> {
  return notYet(`findApiKey(${typeof store}, ${id}, ${typeof options})`);
}

/**
 * Issues a successor for key `id` with the same subject, scopes and constraints, links the two (`rotatedFrom`,
 * `rotatedTo`) and schedules the old key's revocation at the end of `grace`. Reports `key.issued` (successor) and
 * `key.rotated` (old key). Throws ApiKeyStateError for an unknown, revoked, already rotated or expired key, and
 * UsageError for a grace outside 0…30 days.
 *
 * Exported from `token-guard`.
 * @example
 * const { key, sunsetAt } = await rotateApiKey(store, 'key_3f…', { grace: '24h', actor: 'alice' });
 */
export async function rotateApiKey(store: TokenStore, id: string, options: RotateApiKeyOptions = {}): Promise<RotatedApiKey> {
  return notYet(`rotateApiKey(${typeof store}, ${id}, ${typeof options})`);
}

/**
 * Revokes key `id` at once, keeping `reason` on its record (shown in decisions' `detail`), and reports
 * `key.revoked`. Throws ApiKeyStateError for an unknown or already revoked key.
 *
 * Exported from `token-guard`.
 */
export async function revokeApiKey(store: TokenStore, id: string, options: RevokeApiKeyOptions = {}): Promise<ApiKeySummary> {
  return notYet(`revokeApiKey(${typeof store}, ${id}, ${typeof options})`);
}

/**
 * The lifecycle events a store kept, oldest first. Needs a store that keeps events (`listLifecycleEvents`:
 * MemoryStore and RedisStore do); otherwise throws UsageError `store.unsupported`.
 *
 * Exported from `token-guard`.
 */
export async function listLifecycleEvents(store: TokenStore, query: LifecycleQuery = {}): Promise<LifecycleEvent[]> {
  return notYet(`listLifecycleEvents(${typeof store}, ${typeof query})`);
}

/** The summary of a record at `nowMs` (internal: shared with the guard's reporting). */
export function summarize(record: ApiKeyRecord, nowMs: number, lastUsedAt?: number): ApiKeySummary {
  return notYet(`summarize(${record.id}, ${nowMs}, ${lastUsedAt})`);
}
