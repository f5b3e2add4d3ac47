// Two tenants for the multi-issuer tests: each an issuer with its own ES256 key, the guard's two issuer configurations
// (named `acme` and `globex`), and access tokens of either on a fixed clock.
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import type { JwtPolicy } from '../../src/index.js';

export const ACME = 'https://acme.id.example/';
export const GLOBEX = 'https://globex.id.example/';
export const API = 'https://api.example/';
/** The tests' clock. */
export const NOW = new Date('2026-11-25T10:00:00Z');
const NOW_S = Math.floor(NOW.getTime() / 1000);

/** An issuer's signing key, and its public JWK (with `kid`). */
export interface Signer {
  key: CryptoKey;
  jwk: JWK;
}

/** A fresh ES256 signer. */
export async function signer(kid: string): Promise<Signer> {
  const k = await generateKeyPair('ES256', { extractable: true });
  return { key: k.privateKey, jwk: { ...(await exportJWK(k.publicKey)), kid } };
}

/** An access token of `iss` for `sub`, with scope orders:read, issued a minute before NOW and good for an hour. */
export function accessToken(s: Signer, iss: string, sub: string, jti: string): Promise<string> {
  return new SignJWT({ scope: 'orders:read' })
    .setProtectedHeader({ alg: 'ES256', kid: s.jwk.kid as string })
    .setIssuer(iss)
    .setAudience(API)
    .setSubject(sub)
    .setJti(jti)
    .setIssuedAt(NOW_S - 60)
    .setExpirationTime(NOW_S + 3600)
    .sign(s.key);
}

/** The guard's two issuer configurations, `acme` and `globex`. */
export function tenantIssuers(acme: Signer, globex: Signer): JwtPolicy[] {
  return [
    { name: 'acme', issuer: ACME, audience: API, algorithms: ['ES256'], keys: [acme.jwk] },
    { name: 'globex', issuer: GLOBEX, audience: API, algorithms: ['ES256'], keys: [globex.jwk] },
  ];
}
