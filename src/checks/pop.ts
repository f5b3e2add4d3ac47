// Proof of possession: a token bound to a key or certificate (`cnf`) must come with that proof.

import type { Confirmation } from '../leaf/confirmation.js';
import type { Decision, ReasonCode } from '../leaf/types.js';
import { defineCheck, isPromiseLike, setNote, type CheckContext, type CheckResult } from './check.js';
import { compileDpop, dpopSchema, verifyDpopProof, type DpopConfig, type DpopPolicy, type DpopProof } from './dpop.js';

export { parseConfirmation, type Confirmation } from '../leaf/confirmation.js';

/** Node's `fingerprint256` (colon-separated hex of the DER's SHA-256) as RFC 8705's `x5t#S256` (base64url). */
export function certificateThumbprint(fingerprint256: string): string | undefined {
  const hex = fingerprint256.replace(/:/g, '');
  if (!/^[0-9A-Fa-f]{64}$/.test(hex)) return undefined;
  return Buffer.from(hex, 'hex').toString('base64url');
}

/**
 * Why a token's binding is not proven, or undefined when it is (or the token is unbound). mTLS binding
 * (RFC 8705) is checked against the client certificate here; a DPoP proof (RFC 9449) is verified by
 * `verifyDpopProof` once this passes. A DPoP-bound token sent as a bearer token is refused: accepting it
 * would throw its binding away.
 */
export function popFailure(
  cnf: Confirmation | undefined,
  scheme: 'bearer' | 'dpop',
  connection: { readonly peerCertificate?: { fingerprint256?: string } | undefined },
  dpop: { enabled: boolean; required: boolean },
): string | undefined {
  if (cnf?.unverifiable !== undefined) return cnf.unverifiable;
  if (scheme === 'dpop') {
    if (!dpop.enabled) return 'DPoP is not enabled in this policy';
    if (cnf?.jkt === undefined) return 'DPoP scheme with a token not bound to a key';
  } else if (cnf?.jkt !== undefined) {
    return 'DPoP-bound token presented as a bearer token';
  } else if (dpop.required) {
    return 'DPoP is required';
  }
  const x5t = cnf?.['x5t#S256'];
  if (x5t !== undefined) {
    // Read only for a certificate-bound token: getting the peer certificate is not free (the adapters' GuardRequest
    // reads it in a getter). The request itself is passed, not a closure over it: no allocation per request.
    const fp = connection.peerCertificate?.fingerprint256;
    if (!fp) return 'certificate-bound token without a client certificate';
    if (certificateThumbprint(fp) !== x5t) return 'client certificate does not match the token';
  }
  return undefined;
}

/** The policy's `dpop` slice. */
export interface DpopPolicySlice {
  /** Accept DPoP-bound tokens with proofs (RFC 9449). Default: off (DPoP-bound tokens are refused). */
  dpop?: DpopPolicy;
}

/** Proof of possession, compiled: DPoP (when the policy accepts it) and what binding each token kind may have. */
export interface CompiledBinding {
  dpop: DpopConfig | undefined;
  forJwts: { enabled: boolean; required: boolean };
  /** dpop.required is about JWTs: an API key has no key to bind and is never DPoP-bound. */
  forKeys: { enabled: boolean; required: boolean };
  /** How long a proof's jti is remembered: as long as the proof could still be accepted. */
  replayMs: number;
  /** The store answers "not claimed" alike for a replay and for a key at its cap of live proofs. */
  claimRefused: string;
  /** A dry run's trace of a proof it did not claim: what a request would do, and what the run could not read. */
  dryUnclaimed: string;
  dryUnread: string;
  /** RFC 9449 §9: the challenge of a proof without a valid server nonce (`use_dpop_nonce`), realm included. */
  nonceChallenge: string;
}

function proofFailure(ctx: CheckContext, failure: string): ReasonCode {
  ctx.detail = failure;
  return 'pop.invalid';
}

function checkBinding(ctx: CheckContext, b: CompiledBinding): CheckResult {
  const token = ctx.token;
  const scheme = ctx.scheme;
  if (!token || !scheme) return undefined;
  const cnf = token.cnf;
  const failure = popFailure(cnf, scheme, ctx.request, token.record ? b.forKeys : b.forJwts);
  if (failure) return proofFailure(ctx, failure);
  if (scheme !== 'dpop' || !b.dpop || ctx.rawToken === undefined) return undefined;
  const header = ctx.headers['dpop'];
  const proof = Array.isArray(header) ? header[0] : header;
  if (!proof || proof.length > b.dpop.maxTokenBytes) return proofFailure(ctx, 'DPoP proof missing or too long');
  return verifyDpopProof(b.dpop, {
    proof,
    accessToken: ctx.rawToken,
    jkt: cnf?.jkt as string,
    method: ctx.method,
    target: typeof ctx.request.path === 'string' ? ctx.request.path : '',
    nowMs: ctx.nowMs,
    toleranceS: ctx.clockToleranceS,
  }).then((verified) => {
    if ('failure' in verified) {
      // The client is told which nonce to retry with (decorate sends it, in the use_dpop_nonce challenge).
      if (verified.useNonce !== undefined) setNote(ctx, 'dpop-nonce', verified.useNonce);
      return proofFailure(ctx, verified.failure);
    }
    // Claimed only once every other check has passed (commit): a refused request must not spend claims.
    setNote(ctx, 'pop', verified);
    return undefined;
  });
}

/**
 * RFC 9449 §7.1: a request made with the DPoP scheme is answered in that scheme, and a request without a token
 * learns that DPoP is accepted.
 */
function dpopChallenge(d: Decision, dpop: DpopConfig, scheme: 'bearer' | 'dpop' | undefined): void {
  const current = d.headers['WWW-Authenticate'];
  if (current === undefined) return;
  if (d.reason === 'token.missing') d.headers['WWW-Authenticate'] = `${current}, ${dpop.challenge}`;
  else if (scheme === 'dpop') {
    const params = current.replace(/^Bearer ?/, '').replace('error="invalid_token"', d.reason === 'pop.invalid' ? 'error="invalid_dpop_proof"' : 'error="invalid_token"');
    d.headers['WWW-Authenticate'] = `DPoP ${params ? `${params}, ` : ''}${dpop.challenge.slice('DPoP '.length)}`;
  }
}

/**
 * Proof of possession (`pop.invalid`): a token bound to a key (DPoP, RFC 9449) or a certificate (mTLS,
 * RFC 8705) must come with that proof. Runs for every token (a token's own `cnf` asks for it); a refusal ends
 * the evaluation. A DPoP proof is claimed (one use, on every instance sharing the store) only by a request
 * nothing else refused.
 */
export const popCheck = defineCheck<DpopPolicySlice, object, DpopPolicy | undefined, CompiledBinding>({
  name: 'pop',
  phase: 'bind',
  order: 10,
  always: true,
  policyKey: 'dpop',
  policySchema: dpopSchema,
  compile(value, env) {
    const dpop = value ? compileDpop(value, env.maxTokenBytes, env.clockToleranceS) : undefined;
    return {
      dpop,
      forJwts: { enabled: dpop !== undefined, required: dpop?.required ?? false },
      forKeys: { enabled: dpop !== undefined, required: false },
      // jose reads iat in whole seconds, hence the extra second (a proof iat-dated tolerance ahead stays acceptable until then).
      replayMs: dpop ? (dpop.maxAgeS + 2 * env.clockToleranceS + 1) * 1000 : 0,
      claimRefused: `DPoP proof replayed (or its key holds dpop.maxClaimsPerKey = ${dpop?.maxClaimsPerKey ?? 0} live proofs)`,
      dryUnclaimed: `not claimed (a dry run): no live claim holds this proof; a request claims it unless its key already holds dpop.maxClaimsPerKey = ${dpop?.maxClaimsPerKey ?? 0} live proofs`,
      dryUnread: 'not checked (a dry run): the store cannot read claims (no isClaimed), so a replayed proof is refused only by a request that claims it',
      nonceChallenge: dpop ? (env.realm === undefined ? dpop.nonceChallenge : dpop.nonceChallenge.replace(/^DPoP /, `DPoP realm="${env.realm}", `)) : '',
    };
  },
  check: checkBinding,
  // A bearer token bound to nothing passes or fails on its own and the policy's (dpop.required): no proof, no
  // certificate, nothing of the request. A bound token, or the DPoP scheme, is checked on every request.
  memo: (ctx) => ctx.scheme === 'bearer' && ctx.token !== undefined && ctx.token.cnf === undefined,
  commit(ctx, b) {
    const proof = ctx.notes?.['pop'] as DpopProof | undefined;
    if (!proof || !b.dpop) return undefined;
    // One use per proof, with a claim no cache pressure can evict; capped per proof key, so one client cannot
    // fill the store for every other.
    const answer = ctx.store.claimOnce(proof.replayKey, { now: ctx.nowMs, expiresAt: ctx.nowMs + b.replayMs, group: proof.replayGroup, maxPerGroup: b.dpop.maxClaimsPerKey });
    const first = (claimed: boolean): ReasonCode | undefined => {
      if (!claimed) return proofFailure(ctx, b.claimRefused);
      // A dry run took nothing: the trace says what it could not know, rather than a pass it did not earn.
      if (!ctx.store.spends) ctx.skipped = ctx.store.isClaimed === undefined ? b.dryUnread : b.dryUnclaimed;
      return undefined;
    };
    return isPromiseLike(answer) ? Promise.resolve(answer).then(first) : first(answer);
  },
  // Without a dpop policy there is no challenge or nonce to add.
  decorates: (b) => b.dpop !== undefined,
  decorate(ctx, b, decision) {
    if (!b.dpop) return;
    dpopChallenge(decision, b.dpop, ctx.scheme);
    const useNonce = ctx.notes?.['dpop-nonce'] as string | undefined;
    if (useNonce !== undefined && decision.reason === 'pop.invalid') {
      decision.headers['WWW-Authenticate'] = b.nonceChallenge;
      decision.headers['DPoP-Nonce'] = useNonce;
      return;
    }
    // A nonce that still passed but is no longer current: the client gets the current one for its next proof.
    const fresh = (ctx.notes?.['pop'] as DpopProof | undefined)?.freshNonce;
    if (fresh !== undefined) decision.headers['DPoP-Nonce'] = fresh;
  },
  policyIssues(policy) {
    const dpop = policy['dpop'] as DpopPolicy | undefined;
    if (!dpop) return [];
    const issues: [string[], string][] = [];
    if (!policy['jwt'] && !policy['introspection']) issues.push([['dpop'], 'DPoP binds access tokens (JWTs or introspected ones): give jwt or introspection too']);
    if (!dpop.origins) issues.push([['dpop', 'origins'], "required: the origins proofs may name in htu (the Host header is the client's to choose)"]);
    return issues;
  },
});
