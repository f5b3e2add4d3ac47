// Key and token lifecycle events (issued, rotated, revoked, retired, expired): the audit stream of changes, next
// to the per-request decisions. Plain data with times as epoch ms, so an event survives a JSON round trip.

/** What happened, one of a fixed set. */
export type LifecycleEventType = 'key.issued' | 'key.rotated' | 'key.revoked' | 'key.retired' | 'key.expired' | 'token.revoked' | 'subject.revoked';

/** Every lifecycle event type, in the order a key usually goes through them. */
export const LIFECYCLE_EVENT_TYPES: readonly LifecycleEventType[] = Object.freeze([
  'key.issued',
  'key.rotated',
  'key.revoked',
  'key.retired',
  'key.expired',
  'token.revoked',
  'subject.revoked',
]);

/**
 * Why a key or token was revoked or retired. The built-in ones are what the library itself writes (`rotated` at the
 * end of a rotation's grace, `idle` by `apiKeys.idleTimeout`, `max_age` by `apiKeys.maxAge`); any other lower-case
 * word (`a-z`, digits, `_`, `-`, `.`, at most 64 characters) is accepted, so it can be logged and shown safely.
 */
export type RevocationReason = 'compromised' | 'offboarded' | 'rotated' | 'superseded' | 'idle' | 'max_age' | 'unspecified' | (string & {});

/** The shape a revocation reason must have (see RevocationReason). */
export const REVOCATION_REASON_RE = /^[a-z][a-z0-9_.-]{0,63}$/;

/** Whether `value` is a revocation reason the store and the guard accept. */
export function isRevocationReason(value: unknown): value is RevocationReason {
  return typeof value === 'string' && REVOCATION_REASON_RE.test(value);
}

/** The detail of a refusal of a key its record says is revoked (or rotated, its grace over). */
export function revokedKeyDetail(record: { readonly rotatedTo?: unknown; readonly revokedAt?: unknown; readonly revocationReason?: unknown }): string {
  if (typeof record.rotatedTo === 'string') {
    const end = typeof record.revokedAt === 'number' && Number.isFinite(record.revokedAt) ? `; its grace ended at ${new Date(record.revokedAt).toISOString()}` : '';
    return `API key rotated to ${record.rotatedTo}${end}`;
  }
  return isRevocationReason(record.revocationReason) ? `API key revoked (reason: ${record.revocationReason})` : 'API key revoked';
}

/**
 * One change in the life of a key, a token or a subject. Never carries the secret or its hash.
 * `at` and `sunsetAt` are epoch ms.
 */
export interface LifecycleEvent {
  /** Unique id of this event (`evt_…`), so a store or a consumer can drop a duplicate delivery. */
  id: string;
  type: LifecycleEventType;
  /** When it happened (epoch ms). */
  at: number;
  /** Whose key or token it was (absent for a `token.revoked` given a bare token id). */
  subject?: string;
  /** The API key record id (`key_…`) for `key.*` events; the token id (JWT `jti` or key id) for `token.revoked`. */
  tokenId?: string;
  /** Who made the change, as the caller named it (`alice@example.com`, `cli`, `guard` for automatic ones). */
  actor?: string;
  /** Why (revocations, retirements, expiries, rotations). */
  reason?: RevocationReason;
  /** `key.rotated`: the id of the successor key. */
  successorId?: string;
  /** `key.rotated`: when the old key stops working (end of grace, epoch ms). */
  sunsetAt?: number;
  /** `subject.revoked` by `revokeSubject(sub, { issuer })`: only this issuer's user of the subject. Absent: every issuer's. */
  issuer?: string;
}

/** Which lifecycle events to read back from a store. Every field narrows; none given: the latest events. */
export interface LifecycleQuery {
  /** Only events about this subject. */
  subject?: string;
  /** Only events about this key or token id. */
  tokenId?: string;
  /** Only events at or after this time (epoch ms). */
  since?: number;
  /** At most this many (the latest ones), a positive integer. Default: 100. */
  limit?: number;
}
