// Regression (security review): guard.revoke(rawJwt) filed the revocation under the token text itself, which is never the
// token's id (its jti, or the hash of a token without one): the call resolved, the token stayed valid, and the store held
// a live credential. A raw API key the same, of any prefix: the CLI's revoker guard knew only `tg_`, so
// `token-guard revoke token sk_live_…` exited 0, stored the plaintext key and revoked nothing.
import { describe, expect, it } from 'vitest';
import { createGuard, issueApiKey, MemoryStore, UsageError, type GuardRequest } from '../../src/index.js';
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

  it("refuses a raw API key of any prefix or checksum secret, not only the policy's, and still takes record ids", async () => {
    const store = new MemoryStore();
    const guard = createGuard(await basePolicy({ store }));
    const foreign = [
      issueApiKey({ prefix: 'sk_live_', subject: 'x', scopes: [], expiresIn: '1h' }).key,
      issueApiKey({ prefix: 'tg_', subject: 'x', scopes: [], expiresIn: '1h', checksumSecret: 's'.repeat(32) }).key,
    ];
    for (const raw of foreign) {
      const error = await guard.revoke(raw, { now: NOW }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UsageError);
      expect((error as UsageError).message).not.toContain(raw);
      expect(await store.getRevocation(raw, undefined, NOW.getTime())).toBeUndefined();
    }
    const { key, record } = await storeApiKey(store, { scopes: ['orders:read'] });
    await guard.revoke(record.id, { now: NOW });
    expect((await guard.evaluate(req(key))).reason).toBe('token.revoked');
  });
});
