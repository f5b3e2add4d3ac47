// Regression (security review): guard.revoke(token) keeps the revocation until the token's `exp`, but the guard accepts a JWT until
// `exp + clockTolerance`. In that window the revoked token is valid again.
import { describe, expect, it } from 'vitest';
import { createGuard, MemoryStore, type GuardRequest } from '../../src/index.js';
import { basePolicy, jwtPolicy, signToken, NOW, NOW_S } from '../helpers/tokens.js';

const req = (token: string, now: Date): GuardRequest => ({
  method: 'GET',
  path: '/orders/1',
  headers: { authorization: `Bearer ${token}` },
  remoteAddress: '127.0.0.1',
  now,
});

describe('regression: revocation expires before the token does', () => {
  it('a token revoked through guard.revoke(req.auth.token) stays refused inside the exp + clockTolerance window', async () => {
    const store = new MemoryStore();
    const guard = createGuard(await basePolicy({ store, jwt: await jwtPolicy({ clockTolerance: '1m' }) }));
    const token = await signToken({ scope: 'orders:read', jti: 'tok-1' }, { exp: NOW_S + 600 });
    const first = await guard.evaluate(req(token, NOW));
    expect(first.reason).toBe('ok');
    await guard.revoke(first.token!, { now: NOW }); // the README's way: pass the verified token
    expect((await guard.evaluate(req(token, NOW))).reason).toBe('token.revoked');
    // 30 s after exp: still inside the 1 min tolerance, so the JWT itself is accepted...
    const later = new Date((NOW_S + 630) * 1000);
    const d = await guard.evaluate(req(token, later));
    expect(d.reason).toBe('token.revoked');
  });

  it('a subject revoked until its tokens expire stays refused inside the exp + clockTolerance window', async () => {
    const guard = createGuard(await basePolicy({ store: new MemoryStore(), jwt: await jwtPolicy({ clockTolerance: '1m' }) }));
    const exp = NOW_S + 600;
    const token = await signToken({ scope: 'orders:read', jti: 'tok-2' }, { exp });
    expect((await guard.evaluate(req(token, NOW))).reason).toBe('ok');
    // What the CLI docs advise for --expires-at: the tokens' own expiry.
    await guard.revokeSubject('alice', { now: NOW, expiresAt: new Date(exp * 1000) });
    expect((await guard.evaluate(req(token, new Date((exp - 1) * 1000)))).reason).toBe('token.revoked');
    expect((await guard.evaluate(req(token, new Date((exp + 30) * 1000)))).reason).toBe('token.revoked');
  });
});
