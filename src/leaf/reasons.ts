// The one table that maps each reason code to its HTTP answer (RFC 6750 §3, RFC 9470, RFC 9457), and the one
// source of the ReasonCode type: the built-in rows below, plus the rows registered checks add.
import type { DecisionStatus, ReasonCode } from './types.js';
import { UsageError } from './errors.js';

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

// The built-in reasons: the engine's own (authentication, binding, revocation, store) and those of the
// checks that shipped with it. A check that brings a new code declares its row in its own file.
const BUILT_IN = {
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
  // The token's issuer could not be reached (or answered unusably) and no key set young enough is known.
  'idp.unavailable': { status: 503, challenge: false, title: 'Service temporarily unavailable' },
} as const satisfies Record<string, ReasonInfo>;

declare global {
  /**
   * Every token-guard reason code, as a type (the keys are the codes). A check that adds a code extends it by
   * declaration merging in its own file (`declare global { interface TokenGuardReasonCodes { 'x.y': true } }`)
   * and lists the row in its `reasons`; the engine registers the row at start-up. Global so that the merge
   * survives bundling of the type declarations; read it through `ReasonCode`.
   */
  interface TokenGuardReasonCodes extends Record<keyof typeof BUILT_IN, true> {}
}

const table: Record<string, ReasonInfo> = { ...BUILT_IN };

/** Reason code → status, challenge error and problem title. Complete once `token-guard` is loaded. */
export const REASONS: Readonly<Record<ReasonCode, ReasonInfo>> = table as Record<ReasonCode, ReasonInfo>;

/**
 * Adds the rows of a check's own reason codes. Called by the engine's registry when it loads; a code
 * may not be registered twice with another answer, nor replace a built-in one.
 */
export function registerReasons(rows: Readonly<Record<string, ReasonInfo>>): void {
  for (const [code, info] of Object.entries(rows)) {
    const known = table[code];
    if (known && known !== info) throw new UsageError(`reason code ${code} is already registered`, { code: 'usage.invalid_check', help: 'give the check its own reason code' });
    if (!/^[a-z_]+\.[a-z_]+$/.test(code))
      throw new UsageError(`reason code ${code} is not area.problem`, { code: 'usage.invalid_check', help: 'name reason codes area.problem in lower case' });
    table[code] = Object.freeze({ ...info });
  }
}
