// The `cnf` claim (RFC 7800): which proof of possession a token declares. Read by the JWT verifier, checked by the PoP check.

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
