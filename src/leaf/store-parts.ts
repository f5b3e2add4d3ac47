// The store contract by concern: stores that implement part of TokenStore (PostgresStore: keys and revocations), and
// what composeStores needs to put a cache (RedisStore) in front of a durable store.
import type { Awaitable } from './types.js';
import type { RevocationReason } from './lifecycle.js';
import type { ApiKeyRecord, RevocationState, RevokeOptions, RevokeSubjectOptions, TokenStore } from './store.js';

/** The API key records of a TokenStore: what a keys-only store (e.g. PostgresStore) implements. */
export type KeyRecordStore = Pick<TokenStore, 'getApiKey' | 'putApiKey' | 'updateApiKey' | 'deleteApiKey' | 'useApiKey'>;

/** The revocations of a TokenStore. */
export type RevocationListStore = Pick<TokenStore, 'revoke' | 'revokeSubject' | 'getRevocation'>;

/** The rate-limit counters of a TokenStore. */
export type CounterStore = Pick<TokenStore, 'consume'> & Partial<Pick<TokenStore, 'peekRateLimit'>>;

/** The one-time claims of a TokenStore (DPoP proofs). */
export type ClaimStore = Pick<TokenStore, 'claimOnce'> & Partial<Pick<TokenStore, 'isClaimed'>>;

/** The usage records of a TokenStore. */
export type UsageStore = Pick<TokenStore, 'recordUsage' | 'getUsage'> & Partial<Pick<TokenStore, 'flush'>>;

/** The key inventory of a TokenStore (optional there; PostgresStore has it). */
export type KeyInventoryStore = Required<Pick<TokenStore, 'listApiKeys' | 'getApiKeyById'>>;

/** The lifecycle audit of a TokenStore (optional there; PostgresStore keeps it in an append-only table). */
export type LifecycleEventStore = Required<Pick<TokenStore, 'appendLifecycleEvent' | 'listLifecycleEvents'>>;

/** A store that implements some concerns only, used through `composeStores`. */
export type PartialTokenStore = Partial<TokenStore>;

/** One revocation as stored: when (a token's revocation time or a subject's cut-off) and until when (null: for good). */
export interface RevocationEntry {
  time: number;
  expiresAt: number | null;
  /** The reason given with it, when there was one. */
  reason?: RevocationReason;
}

/** The stored revocations of a token id and of its subject, each null when there is none (expired ones included). */
export interface RevocationEntries {
  token: RevocationEntry | null;
  subject: RevocationEntry | null;
}

/** A revocation store that can say what it holds, expiries included, so that a cache in front of it can keep it. */
export interface RevocationSource extends RevocationListStore {
  /** The entries of `tokenId` and (when given) `subject` that are live at `now`. */
  getRevocationEntries(tokenId: string, subject: string | undefined, now: number): Promise<RevocationEntries>;
}

/**
 * A shared cache in front of a durable store (RedisStore implements it): read-through for API key records and
 * revocation lookups, and the fan-out that makes every instance see a revocation on its next request.
 */
export interface StoreCache {
  /** The record under `hash`, from the cache or else from `load` (then kept, unless it changed meanwhile). */
  getApiKeyThrough(hash: string, load: (hash: string) => Promise<ApiKeyRecord | undefined>): Promise<ApiKeyRecord | undefined>;
  /** Drops the cached record under `hash` after it changed in the durable store. */
  invalidateApiKey(hash: string): Promise<void>;
  /** Revocation state from the cache (synchronously when it can), or else from `load` (then kept). */
  getRevocationThrough(
    tokenId: string,
    subject: string | undefined,
    now: number,
    load: (tokenId: string, subject: string | undefined, now: number) => Promise<RevocationEntries>,
  ): Awaitable<RevocationState | undefined>;
  /** Writes a token revocation already stored durably into the cache and fans it out to every instance. */
  revoke(tokenId: string, options: RevokeOptions): Awaitable<void>;
  /** Writes a subject revocation already stored durably into the cache and fans it out to every instance. */
  revokeSubject(subject: string, options: RevokeSubjectOptions): Awaitable<void>;
}
