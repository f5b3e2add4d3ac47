// Revocation: by token id, and by subject for every token issued before a cut-off.
import { isRevocationReason } from '../leaf/lifecycle.js';
import type { RevocationState } from '../leaf/store.js';

/**
 * Whether a token is revoked, given the store's state and when the token was issued. A subject-wide
 * revocation catches a token without an issue time too: nothing proves it came after the cut-off. Issue
 * times are read with the clock tolerance against the token: an issuer whose clock runs up to that much
 * fast must not mint tokens that look newer than a revocation they predate.
 */
export function isRevoked(state: RevocationState | undefined, issuedAtMs: number | undefined, toleranceMs = 0): boolean {
  if (!state) return false;
  if (state.revokedAt !== undefined) return true;
  if (state.subjectRevokedBefore !== undefined) return issuedAtMs === undefined || issuedAtMs - toleranceMs < state.subjectRevokedBefore;
  return false;
}

/**
 * The operator-facing detail of a revocation: which one (token or subject) and the reason it was given, when the
 * reason has the safe shape (a store may answer anything; a reason that is not a plain word is left out).
 */
export function revocationDetail(state: RevocationState | undefined): string {
  if (state?.revokedAt !== undefined) return isRevocationReason(state.reason) ? `revoked in store (reason: ${state.reason})` : 'revoked in store';
  return isRevocationReason(state?.subjectReason) ? `subject revoked in store (reason: ${state?.subjectReason})` : 'subject revoked in store';
}
