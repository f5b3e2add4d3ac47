// Regression (security review, SET receiver): a SET's revocation was kept until iat + tokenLifetime, but a guard
// accepts a token until its exp plus its clock tolerance, and reads a token issued up to that tolerance after the
// cut-off as revoked: such tokens worked again in their last seconds. guard.revoke / revokeSubject add the
// tolerance; the receiver now keeps its revocations twice its clockTolerance longer.
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../src/index.js';
import { CAEP_EVENTS, createSetReceiver, type SetReceiverOptions } from '../../src/receivers/set.js';
import { accessToken, CT, DAY_S, guardOn, IDP, idpKey, NOW, NOW_S, RECEIVER, reasonAt, securityEvent } from '../receivers/set-fixtures.js';

async function setUp(guardTolerance?: '1m', receiver: Partial<SetReceiverOptions> = {}, giveGuard = false) {
  const store = new MemoryStore();
  const guard = await guardOn(store, guardTolerance);
  const r = createSetReceiver({ store, issuer: IDP, audience: RECEIVER, keys: [(await idpKey()).jwk], clock: () => NOW, ...(giveGuard && { guard }), ...receiver });
  return { guard, push: async (body: string) => (await r.receive({ body, contentType: CT })).status };
}

describe('regression: a revocation pushed by SET outlives the guards’ clock tolerance', () => {
  it('a token issued just before the cut-off, living tokenLifetime, stays refused until the guard stops accepting it', async () => {
    const { guard, push } = await setUp();
    const token = await accessToken(NOW_S - 1, NOW_S - 1 + DAY_S);
    expect(await push(await securityEvent())).toBe(202);
    // exp = NOW + 1d - 1s; the guard (tolerance 5s) accepts it until NOW + 1d + 4s.
    expect(await reasonAt(guard, token, NOW_S + DAY_S + 3)).toBe('token.revoked');
    expect(await reasonAt(guard, token, NOW_S + DAY_S + 5)).toBe('token.expired');
  });

  it('a token issued within the tolerance after the cut-off (read as revoked) stays refused to its end', async () => {
    const { guard, push } = await setUp();
    const token = await accessToken(NOW_S + 3, NOW_S + 3 + DAY_S);
    expect(await push(await securityEvent())).toBe(202);
    expect(await reasonAt(guard, token, NOW_S + 10)).toBe('token.revoked');
    expect(await reasonAt(guard, token, NOW_S + DAY_S + 7)).toBe('token.revoked');
  });

  it('with the guards’ tolerance of 1m given to the receiver, no minute-long window opens', async () => {
    const { guard, push } = await setUp('1m', { clockTolerance: '1m' });
    const token = await accessToken(NOW_S + 50, NOW_S + 50 + DAY_S);
    expect(await push(await securityEvent())).toBe(202);
    expect(await reasonAt(guard, token, NOW_S + 60)).toBe('token.revoked');
    for (const late of [1, 60, 100, 109]) expect(await reasonAt(guard, token, NOW_S + DAY_S + late)).toBe('token.revoked');
  });

  it('given the guard, the receiver keeps its revocations past the guard’s own tolerance (1m) without being told', async () => {
    const { guard, push } = await setUp('1m', {}, true);
    const token = await accessToken(NOW_S + 50, NOW_S + 50 + DAY_S);
    expect(await push(await securityEvent())).toBe(202);
    for (const late of [1, 60, 100, 109]) expect(await reasonAt(guard, token, NOW_S + DAY_S + late)).toBe('token.revoked');
  });

  it('a token revoked by jwt_id (token-claims-change) stays refused inside exp + tolerance', async () => {
    const { guard, push } = await setUp();
    const token = await accessToken(NOW_S - 1, NOW_S - 1 + DAY_S, 'tok-claims');
    const set = await securityEvent({ events: { [CAEP_EVENTS.tokenClaimsChange]: { subject: { format: 'jwt_id', iss: IDP, jti: 'tok-claims' } } } });
    expect(await push(set)).toBe(202);
    expect(await reasonAt(guard, token, NOW_S + DAY_S + 3)).toBe('token.revoked');
  });
});
