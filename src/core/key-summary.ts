// What the key inventory shows of a record: its summary (metadata only, never the hash), with its state at a time
// as requests would find it (the record's own dates, and the store's revocation list).
import { isRevoked } from '../checks/revocation.js';
import { StoreError } from '../leaf/errors.js';
import { isRevocationReason, type RevocationReason } from '../leaf/lifecycle.js';
import type { ApiKeyRecord, RevocationState, TokenStore } from '../leaf/store.js';
import { isRecord } from './key-records.js';
import { checkRevocationState } from './store-calls.js';

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

/** A record the store handed back, checked: a malformed one is the store's failure, never listed half-read. */
export function checked(record: unknown): ApiKeyRecord {
  if (!isRecord(record)) throw new StoreError('the store returned an API key record of the wrong shape');
  return record;
}

/** The state of a record at `nowMs`. */
function stateOf(r: ApiKeyRecord, nowMs: number): ApiKeySummary['state'] {
  if (r.revokedAt !== undefined && r.revokedAt <= nowMs) return 'revoked';
  if ((r.expiresAt !== null && r.expiresAt <= nowMs) || (r.remaining !== undefined && r.remaining <= 0)) return 'expired';
  if (r.revokedAt !== undefined) return 'grace';
  return 'active';
}

/** What listings show of a record at `nowMs`: every field but the hash, times as Dates. */
export function summarize(record: ApiKeyRecord, nowMs: number, lastUsedAt?: number): ApiKeySummary {
  const s: ApiKeySummary = {
    id: record.id,
    subject: record.subject,
    prefix: record.prefix,
    scopes: [...record.scopes],
    createdAt: new Date(record.createdAt),
    expiresAt: record.expiresAt === null ? null : new Date(record.expiresAt),
    state: stateOf(record, nowMs),
  };
  if (record.name !== undefined) s.name = record.name;
  if (typeof record.lastFour === 'string') s.lastFour = record.lastFour;
  if (lastUsedAt !== undefined) s.lastUsedAt = new Date(lastUsedAt);
  if (record.revokedAt !== undefined) s.revokedAt = new Date(record.revokedAt);
  if (isRevocationReason(record.revocationReason)) s.revocationReason = record.revocationReason;
  if (typeof record.rotatedFrom === 'string') s.rotatedFrom = record.rotatedFrom;
  if (typeof record.rotatedTo === 'string') s.rotatedTo = record.rotatedTo;
  if (typeof record.rotatedAt === 'number') s.rotatedAt = new Date(record.rotatedAt);
  if (record.remaining !== undefined) s.remaining = record.remaining;
  if (record.metadata !== undefined) s.metadata = { ...record.metadata };
  return s;
}

/**
 * The summary of a record with its last use read from the store's usage (when the store has it), and revoked where
 * the store's revocation list refuses the key though its record does not say so (`guard.revoke` of its id, or the
 * CLI's `revoke token`; `revokeSubject` of its subject before the key was made plus `toleranceMs`, as the guard reads it).
 */
export async function summaryWithUse(store: TokenStore, record: ApiKeyRecord, nowMs: number, toleranceMs: number): Promise<ApiKeySummary> {
  const [usage, listed] = await Promise.all([store.getUsage(record.id), listedRevocation(store, record, nowMs, toleranceMs)]);
  const last = usage && typeof usage.lastUsedAt === 'number' && Number.isFinite(usage.lastUsedAt) ? usage.lastUsedAt : undefined;
  const s = summarize(record, nowMs, last);
  if (listed === undefined || (s.state !== 'active' && s.state !== 'grace')) return s;
  s.state = 'revoked';
  s.revokedAt = new Date(listed.revokedAt ?? (listed.subjectRevokedBefore as number));
  const reason = listed.revokedAt !== undefined ? listed.reason : listed.subjectReason;
  if (isRevocationReason(reason)) s.revocationReason = reason;
  else delete s.revocationReason;
  return s;
}

/**
 * The store's revocation of the key (its id, or its subject after it was made), as requests read it; else undefined.
 * `toleranceMs` must be the guard's clock tolerance: the guard reads a key's creation that much earlier against a
 * subject's cut-off, so a key made up to that long after `revokeSubject` is refused, and must be shown refused.
 */
export async function listedRevocation(store: TokenStore, record: ApiKeyRecord, nowMs: number, toleranceMs: number): Promise<RevocationState | undefined> {
  const state = checkRevocationState(await store.getRevocation(record.id, record.subject, nowMs));
  return isRevoked(state, record.createdAt, toleranceMs) ? state : undefined;
}
