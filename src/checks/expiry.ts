// Expiry of API keys: their record's expiresAt and uses left. (JWT exp/nbf/iat are checked by the JWT verifier.)
import type { ApiKeyRecord } from '../leaf/store.js';

/** Why an API key record is expired at `now`, or undefined when it is not. */
export function apiKeyExpiry(record: ApiKeyRecord, now: number): string | undefined {
  if (record.expiresAt !== null && record.expiresAt <= now) return 'key record expired';
  if (record.remaining !== undefined && record.remaining <= 0) return 'no uses left';
  return undefined;
}
