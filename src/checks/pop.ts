// Proof of possession: a token bound to a key or certificate (`cnf`) must come with that proof.

/** The binding a token declares in its `cnf` claim. */
export interface Confirmation {
  jkt?: string;
  'x5t#S256'?: string;
}

/** Node's `fingerprint256` (colon-separated hex of the DER's SHA-256) as RFC 8705's `x5t#S256` (base64url). */
export function certificateThumbprint(fingerprint256: string): string | undefined {
  const hex = fingerprint256.replace(/:/g, '');
  if (!/^[0-9A-Fa-f]{64}$/.test(hex)) return undefined;
  return Buffer.from(hex, 'hex').toString('base64url');
}

/**
 * Why a token's binding is not proven, or undefined when it is (or the token is unbound).
 * mTLS binding (RFC 8705) is checked against the client certificate. A DPoP-bound token (`cnf.jkt`)
 * or the DPoP scheme is refused: DPoP proofs are not verified by this version, and accepting such a
 * token as a plain bearer token would throw its binding away.
 */
export function popFailure(
  cnf: Confirmation | undefined,
  scheme: 'bearer' | 'dpop',
  peerCertificate: { fingerprint256?: string } | undefined,
): string | undefined {
  if (scheme === 'dpop') return 'DPoP proofs are not supported';
  if (!cnf) return undefined;
  if (cnf.jkt !== undefined) return 'DPoP-bound token presented without DPoP support';
  const x5t = cnf['x5t#S256'];
  if (x5t !== undefined) {
    const fp = peerCertificate?.fingerprint256;
    if (!fp) return 'certificate-bound token without a client certificate';
    if (certificateThumbprint(fp) !== x5t) return 'client certificate does not match the token';
  }
  return undefined;
}
