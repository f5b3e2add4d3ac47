// Proof of possession: a token bound to a key or certificate (`cnf`) must come with that proof.

import type { Confirmation } from '../leaf/confirmation.js';

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
  peerCertificate: () => { fingerprint256?: string } | undefined,
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
    // Read only for a certificate-bound token: getting the peer certificate is not free.
    const fp = peerCertificate()?.fingerprint256;
    if (!fp) return 'certificate-bound token without a client certificate';
    if (certificateThumbprint(fp) !== x5t) return 'client certificate does not match the token';
  }
  return undefined;
}
