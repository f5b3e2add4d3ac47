// Regression (security review): guard.revoke(rawJwt) filed the revocation under the token text itself, which is never the
// token's id (its jti, or the hash of a token without one): the call resolved, the token stayed valid, and the store held
// a live credential. A raw API key the same.
import { describe, expect, it } from 'vitest';
import { createGuard, MemoryStore, UsageError, type GuardRequest } from '../../src/index.js';
import { basePolicy, signToken, storeApiKey, NOW } from '../helpers/tokens.js';

const req = (credential: string): GuardRequest => ({
  method: 'GET',
  path: '/orders/1',
  headers: { authorization: `Bearer ${credential}` },
  remoteAddress: '127.0.0.1',
  now: NOW,
});

describe('regression: revoking a raw token', () => {
  it('guard.revoke refuses a raw JWT or API key with a UsageError, and revokes by id or by the verified token', async () => {
    const store = new MemoryStore();
    const guard = createGuard(await basePolicy({ store }));
    const jwt = await signToken({ scope: 'orders:read', jti: 'tok-raw' });
    const { key } = await storeApiKey(store, { scopes: ['orders:read'] });
    for (const raw of [jwt, key]) {
      const error = await guard.revoke(raw, { now: NOW }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UsageError);
      expect((error as UsageError).message).not.toContain(raw);
      expect((await guard.evaluate(req(raw))).reason).toBe('ok');
    }
    // The ways the docs show still work.
    await guard.revoke('tok-raw', { now: NOW });
    expect((await guard.evaluate(req(jwt))).reason).toBe('token.revoked');
    const allowed = await guard.evaluate(req(key));
    await guard.revoke(allowed.token!, { now: NOW });
    expect((await guard.evaluate(req(key))).reason).toBe('token.revoked');
  });
});
