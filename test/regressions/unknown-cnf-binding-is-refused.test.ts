// Regression (issue 7, item 3): a token bound by a confirmation method the guard does not verify
// (cnf.jwk, cnf.kid, cnf.jku) was accepted as an unbound bearer token, throwing its binding away; a
// `cnf` that was not an object was refused as token.invalid. Both are now pop.invalid.
import { describe, expect, it } from 'vitest';
import type { Decision } from '../../src/index.js';
import { signToken, testKeys } from '../helpers/tokens.js';
import { bearer, expectAllowed, jwtGuard, requestWith } from '../tokens/fixtures.js';

let n = 0;
const boundBy = (cnf: unknown) => signToken({ scope: 'orders:read', jti: `cnf-${++n}`, cnf });

function expectPopInvalid(d: Decision): void {
  expect({ effect: d.effect, reason: d.reason, status: d.status }).toEqual({ effect: 'deny', reason: 'pop.invalid', status: 401 });
}

const JKT = 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs';

describe('regression: a binding the guard cannot verify is refused, never treated as a bearer token', () => {
  it.each([
    ['jwk', async () => ({ jwk: (await testKeys()).ecPublicJwk })],
    ['kid', async () => ({ kid: 'holder-key-1' })],
    ['jku', async () => ({ jku: 'https://holder.example/jwks.json' })],
    ['x5t (SHA-1, not x5t#S256)', async () => ({ x5t: 'dGhpcyBpcyBhIFNIQTEgdGh1bWI' })],
    ['an unknown member next to x5t#S256', async () => ({ 'x5t#S256': 'bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2', kid: 'k' })],
    ['an unknown member next to jkt', async () => ({ jkt: JKT, jwe: 'x' })],
  ])('refuses cnf binding by %s', async (_name, cnf) => {
    const guard = await jwtGuard();
    expectPopInvalid(await guard.evaluate(bearer(await boundBy(await cnf()))));
  });

  it.each([
    ['null', null],
    ['an array', [{ jkt: JKT }]],
    ['a string', JKT],
    ['a number', 1],
    ['true', true],
    ['an empty object', {}],
    ['jkt that is not a string', { jkt: 42 }],
    ['an empty x5t#S256', { 'x5t#S256': '' }],
  ])('refuses cnf that is %s', async (_name, cnf) => {
    const guard = await jwtGuard();
    expectPopInvalid(await guard.evaluate(bearer(await boundBy(cnf))));
  });

  it('refuses the unknown binding under the DPoP scheme too', async () => {
    const guard = await jwtGuard({}, { dpop: { origins: ['https://api.example.test'] } });
    const token = await boundBy({ jwk: (await testKeys()).ecPublicJwk });
    expectPopInvalid(await guard.evaluate(requestWith({ authorization: `DPoP ${token}`, dpop: 'x.y.z' })));
  });

  it('still accepts a token without cnf as a bearer token', async () => {
    const guard = await jwtGuard();
    expectAllowed(await guard.evaluate(bearer(await signToken({ scope: 'orders:read' }))));
  });
});
