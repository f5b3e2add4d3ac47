// Regression (issue 7, item 2): jwt.secret set to the issuer's public key (PEM, JWK or JWKS text) was
// accepted. Anyone holding that public key could then sign HS256 tokens the guard accepts: the
// RS256→HS256 key confusion, set up by configuration. It is now a PolicyError at start-up.
import { randomBytes, createPublicKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import { createGuard, PolicyError, type TokenGuardPolicy } from '../../src/index.js';
import { AUDIENCE, HMAC_SECRET, ISSUER, NOW_S, testKeys } from '../helpers/tokens.js';
import { bearer, expectAllowed, ORDERS_RULES } from '../tokens/fixtures.js';

const policyWith = (secret: string | Uint8Array): TokenGuardPolicy => ({
  jwt: { issuer: ISSUER, audience: AUDIENCE, algorithms: ['HS256'], secret },
  rules: ORDERS_RULES,
});

function secretProblems(secret: string | Uint8Array): string[] {
  try {
    createGuard(policyWith(secret));
  } catch (err) {
    expect(err).toBeInstanceOf(PolicyError);
    return (err as PolicyError).issues.filter((i) => i.path === 'jwt.secret').map((i) => i.message);
  }
  return [];
}

const text = (s: string) => new TextEncoder().encode(s);

describe('regression: key material given as the HMAC secret is refused at start-up', () => {
  it('refuses the issuer public key as PEM text, as a string or as bytes', async () => {
    const { rsaPublicPem } = await testKeys();
    expect(secretProblems(rsaPublicPem)[0]).toMatch(/PEM/);
    expect(secretProblems(text(rsaPublicPem))[0]).toMatch(/PEM/);
    expect(secretProblems(`  \n${rsaPublicPem}`)[0]).toMatch(/PEM/);
  });

  it('refuses a certificate or any other -----BEGIN block', () => {
    const cert = `-----BEGIN CERTIFICATE-----\n${'A'.repeat(64)}\n-----END CERTIFICATE-----\n`;
    expect(secretProblems(cert)[0]).toMatch(/PEM/);
  });

  it('refuses a JWK, a JWK Set and an array of JWKs as JSON text, as a string or as bytes', async () => {
    const { rsaPublicJwk, ecPublicJwk } = await testKeys();
    for (const json of [
      JSON.stringify(rsaPublicJwk),
      JSON.stringify({ keys: [rsaPublicJwk, ecPublicJwk] }),
      JSON.stringify([ecPublicJwk]),
      JSON.stringify(rsaPublicJwk, null, 2),
    ]) {
      expect(secretProblems(json)[0]).toMatch(/JWK/);
      expect(secretProblems(text(json))[0]).toMatch(/JWK/);
    }
  });

  it('refuses a public key as bare DER bytes or base64 DER text', async () => {
    const { rsaPublicPem } = await testKeys();
    const der = createPublicKey(rsaPublicPem).export({ format: 'der', type: 'spki' });
    expect(secretProblems(new Uint8Array(der))[0]).toMatch(/DER/);
    expect(secretProblems(der.toString('base64'))[0]).toMatch(/DER/);
  });

  it('refuses a secret shorter than 32 bytes', () => {
    expect(secretProblems('short-secret')[0]).toMatch(/at least 32 bytes/);
    expect(secretProblems(randomBytes(31))[0]).toMatch(/at least 32 bytes/);
  });

  it('would otherwise let anyone with the public key mint HS256 tokens (the attack the refusal closes)', async () => {
    const { rsaPublicPem } = await testKeys();
    const forged = await new SignJWT({ scope: 'orders:read', sub: 'mallory' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt(NOW_S)
      .setExpirationTime(NOW_S + 600)
      .sign(text(rsaPublicPem));
    expect(forged.split('.')).toHaveLength(3);
    expect(() => createGuard(policyWith(rsaPublicPem))).toThrow(/jwt\.secret/);
  });

  it('accepts random secrets of 32 bytes or more, as text or bytes', async () => {
    expect(secretProblems(HMAC_SECRET)).toEqual([]);
    expect(secretProblems(randomBytes(32))).toEqual([]);
    expect(secretProblems(randomBytes(64).toString('base64'))).toEqual([]);
    const guard = createGuard(policyWith(HMAC_SECRET));
    const token = await new SignJWT({ scope: 'orders:read', sub: 'alice' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt(NOW_S)
      .setExpirationTime(NOW_S + 600)
      .sign(text(HMAC_SECRET));
    expectAllowed(await guard.evaluate(bearer(token)));
  });
});
