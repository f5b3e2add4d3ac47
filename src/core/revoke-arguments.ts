// The arguments of guard.revoke and guard.revokeSubject, checked before anything reaches the store: times, the
// reason and actor that end up in logs and events, and an id that is really a credential.
import { UsageError } from '../leaf/errors.js';
import { isRevocationReason, type RevocationReason } from '../leaf/lifecycle.js';
import { isApiKeyShaped } from '../tokens/api-key.js';
import { isJwtShaped } from '../tokens/introspection.js';

/** Epoch milliseconds of a Date or a number (`fallback` when undefined). Throws UsageError for an invalid one. */
export function toMs(value: Date | number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const ms = typeof value === 'number' ? value : value.getTime();
  if (!Number.isFinite(ms)) throw new UsageError('expected a valid Date or epoch milliseconds', { help: 'pass a Date or a finite number of milliseconds since the epoch' });
  return ms;
}

/** The reason and actor of a guard revocation, checked: both end up in logs and events. */
export function checkRevokeReason(where: string, options: { reason?: unknown; actor?: unknown }): { reason: RevocationReason | undefined; actor: string | undefined } {
  const { reason, actor } = options;
  if (reason !== undefined && !isRevocationReason(reason)) {
    throw new UsageError(`${where}: reason must be a lower-case word (a-z, 0-9, _ . -, at most 64 characters), e.g. 'compromised'`);
  }
  if (actor !== undefined && (typeof actor !== 'string' || actor === '')) throw new UsageError(`${where}: actor must be a non-empty string`);
  return { reason, actor };
}

/** Whether `id` is a credential itself (a compact JWT, or an API key of any prefix, not only this policy's) rather than an id. */
export const isRawCredential = (id: string): boolean => (id.startsWith('eyJ') && isJwtShaped(id)) || isApiKeyShaped(id);

/** Options of `guard.revoke`. */
export interface GuardRevokeOptions {
  /** Keep the revocation until then. Default: the token's own expiry (a TokenInfo's), else until deleted. */
  expiresAt?: Date | number;
  /** The time of the revocation. Default: now. */
  now?: Date;
  /** Why (`compromised`, `offboarded`, …): shown in later decisions' `detail` and in the lifecycle event. Default: none. */
  reason?: RevocationReason;
  /** Who revokes, for the lifecycle event. Default: none. */
  actor?: string;
}

/** Options of `guard.revokeSubject`. */
export interface GuardRevokeSubjectOptions {
  /** Tokens issued before this are revoked. Default: now. */
  before?: Date | number;
  /**
   * Only this issuer's user of that subject (a token `iss` the guard accepts), where the policy has several issuers.
   * Default: every issuer's (and API keys' and introspected tokens' of that subject).
   */
  issuer?: string;
  /** Keep the revocation until then (the policy's clock tolerance is added, as the verifier allows). Default: until deleted. */
  expiresAt?: Date | number;
  /** The time of the revocation. Default: now. */
  now?: Date;
  /** Why (`offboarded`, `compromised`, …): shown in later decisions' `detail` and in the lifecycle event. Default: none. */
  reason?: RevocationReason;
  /** Who revokes, for the lifecycle event. Default: none. */
  actor?: string;
}
