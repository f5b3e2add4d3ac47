// Regression (security review, SET receiver): a SET answered 503 (store down) and retried more than `maxAge` (then
// 1h by default) after its iat was refused for good (400 "SET is expired"), so the revocation was lost although RFC
// 8935 transmitters retry and applying it late is as right as on time (its cut-off is its own iat). SETs are now
// accepted as old as `tokenLifetime`, the longest their revocation can matter.
import { beforeAll, describe, expect, it } from 'vitest';
import { MemoryStore, type Guard } from '../../src/index.js';
import { createSetReceiver } from '../../src/receivers/set.js';
import { accessToken, CT, DAY_S, guardOn, IDP, idpKey, NOW, NOW_S, RECEIVER, reasonAt, securityEvent, storeWith } from '../receivers/set-fixtures.js';

let jwk: Awaited<ReturnType<typeof idpKey>>['jwk'];
beforeAll(async () => {
  ({ jwk } = await idpKey());
});

describe('regression: a SET retried after a store outage is still applied', () => {
  it('503 while the store is down, then 202 on the retry 1h02m later, and the subject’s token is refused', async () => {
    const real = new MemoryStore();
    let down = true;
    const store = storeWith(real, {
      revokeSubject: (...args: unknown[]) => (down ? Promise.reject(new Error('down')) : real.revokeSubject(...(args as Parameters<MemoryStore['revokeSubject']>))),
    });
    let now = NOW;
    const receiver = createSetReceiver({ store, issuer: IDP, audience: RECEIVER, keys: [jwk], clock: () => now });
    const guard: Guard = await guardOn(real);
    const token = await accessToken(NOW_S - 60, NOW_S + 8 * 3600);
    const set = await securityEvent({ iat: NOW_S });
    expect((await receiver.receive({ body: set, contentType: CT })).status).toBe(503);
    down = false;
    now = new Date((NOW_S + 3720) * 1000);
    const retry = await receiver.receive({ body: set, contentType: CT });
    expect(retry.status).toBe(202);
    expect(await reasonAt(guard, token, NOW_S + 3720)).toBe('token.revoked');
  });

  it('accepts a SET as old as tokenLifetime plus the clock tolerance, no older; an explicit maxAge still caps it', async () => {
    const receiver = createSetReceiver({ store: new MemoryStore(), issuer: IDP, audience: RECEIVER, keys: [jwk], tokenLifetime: '12h', clock: () => NOW });
    const at = async (ageS: number) => (await receiver.receive({ body: await securityEvent({ iat: NOW_S - ageS }), contentType: CT })).status;
    expect(await at(12 * 3600 + 5)).toBe(202);
    expect(await at(12 * 3600 + 6)).toBe(400);
    expect(await at(DAY_S)).toBe(400);
    const capped = createSetReceiver({ store: new MemoryStore(), issuer: IDP, audience: RECEIVER, keys: [jwk], maxAge: '2h', clock: () => NOW });
    const cappedAt = async (ageS: number) => (await capped.receive({ body: await securityEvent({ iat: NOW_S - ageS }), contentType: CT })).status;
    expect(await cappedAt(2 * 3600)).toBe(202);
    expect(await cappedAt(2 * 3600 + 6)).toBe(400);
  });

  it('keeps the jti claimed as long as the SET is accepted: a replay a day later is still refused', async () => {
    const receiver = createSetReceiver({ store: new MemoryStore(), issuer: IDP, audience: RECEIVER, keys: [jwk], clock: () => NOW });
    const set = await securityEvent({ iat: NOW_S });
    expect((await receiver.receive({ body: set, contentType: CT })).status).toBe(202);
    const replay = await receiver.receive({ body: set, contentType: CT, now: new Date((NOW_S + DAY_S) * 1000) });
    expect(replay.status).toBe(400);
    expect(JSON.parse(replay.body)).toEqual({ err: 'invalid_request', description: 'SET jti already received' });
  });
});
