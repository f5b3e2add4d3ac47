// The one table that maps each reason code to its HTTP answer (RFC 6750 §3, RFC 9470, RFC 9457).
import type { DecisionStatus, ReasonCode } from './types.js';

/** How a reason code is answered over HTTP. */
export interface ReasonInfo {
  status: DecisionStatus;
  /** RFC 6750 `error` attribute of the WWW-Authenticate challenge; absent when none is sent. */
  error?: 'invalid_request' | 'invalid_token' | 'insufficient_scope' | 'insufficient_user_authentication' | 'invalid_dpop_proof';
  /** Whether the answer carries a Bearer challenge at all (every 401 does). */
  challenge: boolean;
  /** Short, generic, safe to show to anyone. */
  title: string;
}

/** Reason code → status, challenge error and problem title. */
export const REASONS: Readonly<Record<ReasonCode, ReasonInfo>> = Object.freeze({
  ok: { status: 200, challenge: false, title: 'OK' },
  'token.missing': { status: 401, challenge: true, title: 'Authentication required' },
  'request.malformed': { status: 400, error: 'invalid_request', challenge: true, title: 'Malformed request' },
  'token.malformed': { status: 401, error: 'invalid_token', challenge: true, title: 'Malformed access token' },
  'token.invalid': { status: 401, error: 'invalid_token', challenge: true, title: 'Invalid access token' },
  'token.expired': { status: 401, error: 'invalid_token', challenge: true, title: 'Access token expired' },
  'token.revoked': { status: 401, error: 'invalid_token', challenge: true, title: 'Access token revoked' },
  'scope.insufficient': { status: 403, error: 'insufficient_scope', challenge: true, title: 'Insufficient scope' },
  'ip.denied': { status: 403, challenge: false, title: 'Client address not allowed' },
  'ip.unknown': { status: 403, challenge: false, title: 'Client address unknown' },
  'hours.outside': { status: 403, challenge: false, title: 'Outside allowed hours' },
  'step_up.required': {
    status: 401,
    error: 'insufficient_user_authentication',
    challenge: true,
    title: 'Stronger or more recent authentication required',
  },
  'pop.invalid': { status: 401, error: 'invalid_token', challenge: true, title: 'Proof of possession failed' },
  'risk.denied': { status: 403, challenge: false, title: 'Request refused' },
  'rate.limited': { status: 429, challenge: false, title: 'Too many requests' },
  'rule.unmatched': { status: 403, challenge: false, title: 'No access rule for this route' },
  'store.unavailable': { status: 503, challenge: false, title: 'Service temporarily unavailable' },
});

/** Every reason code, in table order. */
export const REASON_CODES = Object.freeze(Object.keys(REASONS) as ReasonCode[]);
