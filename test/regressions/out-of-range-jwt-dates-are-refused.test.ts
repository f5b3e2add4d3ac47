// Regression (issue 7, item 5): a JWT with exp (or nbf, iat, auth_time) beyond what a JS Date holds, or
// with 1e400 (JSON for Infinity), was accepted; its TokenInfo then carried an Invalid Date and
// guard.revoke(decision.token) threw, so an allowed token could not be revoked.
import { describe, expect, it } from 'vitest';
import { createGuard, MemoryStore } from '../../src/index.js';
import { basePolicy, NOW_S, signToken, testKeys } from '../helpers/tokens.js';
import { bearer, expectAllowed, expectRefused, jwtGuard, signCompact, validClaims } from '../tokens/fixtures.js';

/** A token signed by the issuer's key whose payload is the given JSON text (so 1e400 can be written). */
async function rawToken(extraJson: string): Promise<string> {
  const claims = JSON.stringify(validClaims()).slice(0, -1) + `,${extraJson}}`;
  return signCompact({ alg: 'RS256', kid: 'rsa-1' }, Buffer.from(claims).toString('base64url'), (await testKeys()).rsaPrivate);
}

const MAX_S = 8.64e12;

describe('regression: JWT times a Date cannot hold are refused', () => {
  it.each([
    ['exp beyond the Date range', '"exp":9e12'],
    ['exp of 1e400 (Infinity)', '"exp":1e400'],
    ['exp of -1e400 (-Infinity)', '"exp":-1e400'],
    ['nbf of -1e400', '"nbf":-1e400'],
    ['nbf far before the Date range', '"nbf":-9e12'],
    ['iat far before the Date range', '"iat":-9e12'],
    ['iat of -1e400', '"iat":-1e400'],
    ['auth_time beyond the Date range', '"auth_time":9e12'],
    ['auth_time of 1e400', '"auth_time":1e400'],
    ['auth_time that is a string', '"auth_time":"yesterday"'],
  ])('refuses a token with %s as token.invalid', async (_name, json) => {
    const guard = await jwtGuard();
    expectRefused(await guard.evaluate(bearer(await rawToken(json))), 'token.invalid');
  });

  it('accepts times at the edge of the Date range', async () => {
    const guard = await jwtGuard();
    expectAllowed(await guard.evaluate(bearer(await rawToken(`"exp":${MAX_S},"nbf":${-MAX_S},"auth_time":${NOW_S - 60}`))));
  });

  it.each([
    ['an ordinary exp', NOW_S + 3600],
    ['the largest exp a Date holds', MAX_S],
  ])('revokes a token it allowed, with %s, through guard.revoke(decision.token)', async (_name, exp) => {
    const guard = createGuard(await basePolicy({ store: new MemoryStore() }));
    const token = await signToken({ scope: 'orders:read', jti: `rev-${exp}` }, { exp });
    const allowed = await guard.evaluate(bearer(token));
    expectAllowed(allowed);
    await expect(guard.revoke(allowed.token!)).resolves.toBeUndefined();
    expectRefused(await guard.evaluate(bearer(token)), 'token.revoked');
  });

  it('never allows a token it could not then revoke', async () => {
    const guard = createGuard(await basePolicy({ store: new MemoryStore() }));
    for (const exp of [NOW_S + 60, MAX_S, MAX_S + 1, 9e12, 1e15, Number.MAX_SAFE_INTEGER]) {
      const token = await signToken({ scope: 'orders:read', jti: `any-${exp}` }, { exp });
      const d = await guard.evaluate(bearer(token));
      if (d.effect !== 'allow') continue;
      await expect(guard.revoke(d.token!), `exp ${exp}`).resolves.toBeUndefined();
      expect((await guard.evaluate(bearer(token))).reason, `exp ${exp}`).toBe('token.revoked');
    }
  });
});
