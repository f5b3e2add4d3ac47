// Proof of possession: a token bound to a key or certificate (`cnf`) must come with that proof.

/** The binding a token declares in its `cnf` claim. */
export interface Confirmation {
  jkt?: string;
  'x5t#S256'?: string;
  /**
   * Why the binding cannot be verified here (a method other than `jkt` / `x5t#S256`, or a `cnf` of the
   * wrong shape). Such a token is refused: accepting it as a bearer token would throw its binding away.
   */
  unverifiable?: string;
}

const METHODS = new Set(['jkt', 'x5t#S256']);

/**
 * The binding a JWT's `cnf` claim declares (RFC 7800), or undefined when the claim is absent. A `cnf` that
 * is not a plain object, is empty, or names a method this guard does not verify (`jwk`, `kid`, `jku`, …)
 * comes back with `unverifiable` set, never as "unbound".
 */
export function parseConfirmation(cnf: unknown): Confirmation | undefined {
  if (cnf === undefined) return undefined;
  if (cnf === null || typeof cnf !== 'object' || Array.isArray(cnf)) return { unverifiable: 'cnf is not an object' };
  const members = Object.keys(cnf);
  if (members.length === 0) return { unverifiable: 'cnf names no confirmation method' };
  const unknown = members.find((m) => !METHODS.has(m));
  if (unknown !== undefined) {
    return { unverifiable: `cnf binds the token by ${JSON.stringify(unknown.slice(0, 32))}, which this guard does not verify` };
  }
  const out: Confirmation = {};
  for (const m of members as ('jkt' | 'x5t#S256')[]) {
    const v = (cnf as Record<string, unknown>)[m];
    if (typeof v !== 'string' || v === '') return { unverifiable: `cnf.${m} is not a non-empty string` };
    out[m] = v;
  }
  return Object.freeze(out);
}

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
