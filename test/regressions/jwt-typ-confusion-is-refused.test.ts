// Regression (issue 7, item 1): a JWT of another kind (a DPoP proof, a security event, a logout token),
// signed by the issuer's own key and carrying valid iss, aud and exp, was accepted as an access token.
// RFC 8725 §3.11 / RFC 9068: only access-token types pass by default; `jwt.typ` narrows the list.
import { describe, expect, it } from 'vitest';
import { createGuard, PolicyError } from '../../src/index.js';
import { jwtPolicy, signToken } from '../helpers/tokens.js';
import { bearer, expectAllowed, expectRefused, jwtGuard } from '../tokens/fixtures.js';

let n = 0;
/** A valid access token for orders:read signed by the issuer's key, with the given typ header (omitted when undefined). */
const typed = (typ: unknown) => signToken({ scope: 'orders:read', jti: `typ-${++n}` }, { header: typ === undefined ? {} : { typ } });

describe('regression: a JWT typed as something other than an access token is refused', () => {
  it.each(['dpop+jwt', 'secevent+jwt', 'logout+jwt', 'application/secevent+jwt', 'JOSE', 'id_token+jwt', 'at+jwt2', 'application/', ''])(
    'refuses typ %j by default even though the issuer signed it',
    async (typ) => {
      const guard = await jwtGuard();
      expectRefused(await guard.evaluate(bearer(await typed(typ))), 'token.invalid');
    },
  );

  it('refuses a typ header that is not a string', async () => {
    const guard = await jwtGuard();
    expectRefused(await guard.evaluate(bearer(await typed(['at+jwt']))), 'token.invalid');
  });

  it.each([undefined, 'JWT', 'jwt', 'at+jwt', 'AT+JWT', 'application/at+jwt', 'Application/AT+JWT'])('accepts typ %j by default', async (typ) => {
    const guard = await jwtGuard();
    expectAllowed(await guard.evaluate(bearer(await typed(typ))));
  });

  it('narrows the accepted types to jwt.typ given as an array, without the application/ prefix or case mattering', async () => {
    const guard = await jwtGuard({ typ: ['application/AT+JWT', 'jwt'] });
    expectAllowed(await guard.evaluate(bearer(await typed('at+jwt'))));
    expectAllowed(await guard.evaluate(bearer(await typed('JWT'))));
    expectRefused(await guard.evaluate(bearer(await typed(undefined))), 'token.invalid');
    expectRefused(await guard.evaluate(bearer(await typed('dpop+jwt'))), 'token.invalid');
  });

  it('with jwt.typ as a single string, refuses tokens without typ and of other types', async () => {
    const guard = await jwtGuard({ typ: 'at+jwt' });
    expectAllowed(await guard.evaluate(bearer(await typed('application/at+jwt'))));
    expectRefused(await guard.evaluate(bearer(await typed(undefined))), 'token.invalid');
    expectRefused(await guard.evaluate(bearer(await typed('JWT'))), 'token.invalid');
  });

  it('refuses an empty jwt.typ list at start-up', async () => {
    const jwt = await jwtPolicy({ typ: [] });
    expect(() => createGuard({ jwt })).toThrow(PolicyError);
    expect(() => createGuard({ jwt })).toThrow(/jwt\.typ/);
  });
});
