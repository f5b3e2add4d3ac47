// Expiry of API keys: their record's expiresAt and uses left. (JWT exp/nbf/iat are checked by the JWT verifier.)
import type { ApiKeyRecord } from '../leaf/store.js';

/**
 * Why an API key record is expired, as code reads it (and as the `key.expired` lifecycle event's `reason` says it):
 * its `expiresAt` passed, or it has no uses left (EXHAUSTED).
 */
export type KeyExpiry = 'expired' | 'no_uses_left';

/** The cause of a key with no uses left: what code tests, never the detail text written for people. */
export const EXHAUSTED = 'no_uses_left' satisfies KeyExpiry;

/** The operator-facing detail of each cause (`decision.detail`). */
export const EXPIRY_DETAIL: Readonly<Record<KeyExpiry, string>> = { expired: 'key record expired', no_uses_left: 'no uses left' };

/** Why an API key record is expired at `now`, as a cause, or undefined when it is not. */
export function apiKeyExpiryCause(record: ApiKeyRecord, now: number): KeyExpiry | undefined {
  if (record.expiresAt !== null && record.expiresAt <= now) return 'expired';
  if (record.remaining !== undefined && record.remaining <= 0) return EXHAUSTED;
  return undefined;
}

/** Why an API key record is expired at `now`, in words, or undefined when it is not. */
export function apiKeyExpiry(record: ApiKeyRecord, now: number): string | undefined {
  const cause = apiKeyExpiryCause(record, now);
  return cause === undefined ? undefined : EXPIRY_DETAIL[cause];
}
