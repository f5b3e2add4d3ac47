// The JWS algorithms token-guard knows: shared by JWT verification and DPoP proofs, and (asymmetric only) by
// signed introspection answers, private_key_jwt and Security Event Tokens.

/** JWS algorithms token-guard accepts in `jwt.algorithms`. `none` is never accepted. */
export type JwtAlgorithm = 'HS256' | 'HS384' | 'HS512' | 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512' | 'ES256' | 'ES384' | 'ES512' | 'EdDSA' | 'Ed25519';

/** Every algorithm allowed in `jwt.algorithms`. */
export const JWT_ALGORITHMS: readonly JwtAlgorithm[] = [
  'HS256',
  'HS384',
  'HS512',
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
];

/** The asymmetric subset of JWT_ALGORITHMS: for keys a third party holds, where a shared secret has no place. */
export const ASYMMETRIC: readonly JwtAlgorithm[] = JWT_ALGORITHMS.filter((a) => !a.startsWith('HS'));
