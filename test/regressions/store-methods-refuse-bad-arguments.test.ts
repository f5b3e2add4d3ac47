// Regression (issue 7 item 10): store methods took whatever they were given. `store.revoke(id, { expiresAt })` (no
// `now`) recorded `revokedAt: undefined` and the token stayed valid; a Date where epoch ms belong or NaN made entries
// that never match. An admin script that "revoked" a leaked token learned nothing. Both built-in stores now refuse
// such calls with StoreArgumentError (a TypeError with code `store.invalid_argument`), from one shared validator,
// and the conformance kit holds custom stores to the same (see its "bad arguments" cases).
import { describe, expect, it } from 'vitest';
import { createGuard, MemoryStore, StoreArgumentError, type GuardRequest, type TokenStore } from '../../src/index.js';
import { thrown } from '../helpers/stores.js';
import { RedisStore, StoreArgumentError as RedisStoreArgumentError } from '../../src/stores/redis.js';
import { basePolicy, NOW, signToken } from '../helpers/tokens.js';
import { redisUp, useSharedRedis } from '../helpers/redis.js';

const T0 = NOW.getTime();
const req = (token: string): GuardRequest => ({ method: 'GET', path: '/orders/1', headers: { authorization: `Bearer ${token}` }, remoteAddress: '127.0.0.1', now: NOW });

function cases(name: string, makeStore: () => TokenStore) {
  describe(name, () => {
    it('revoke(id, { expiresAt }) without now is refused, and the token is not left "revoked" with no time', async () => {
      const store = makeStore();
      const e = await thrown(() => store.revoke('tok-1', { expiresAt: T0 + 60_000 } as never));
      expect(e).toBeInstanceOf(StoreArgumentError);
      expect(e).toBeInstanceOf(TypeError);
      expect(e).toMatchObject({
        name: 'StoreArgumentError',
        code: 'store.invalid_argument',
        message: 'revoke: options.now must be epoch milliseconds (a finite number) (got undefined)',
      });
      expect(await store.getRevocation('tok-1', undefined, T0)).toBeUndefined();
    });

    it('revoke(id) with no options is refused', async () => {
      expect(await thrown(() => makeStore().revoke('tok-1', undefined as never))).toMatchObject({
        code: 'store.invalid_argument',
        message: 'revoke: options ({ now, expiresAt? }) must be an object (got undefined)',
      });
    });

    it('a Date where epoch milliseconds belong is refused with a hint', async () => {
      const e = await thrown(() => makeStore().revoke('tok-1', { now: NOW } as never));
      expect((e as Error).message).toBe('revoke: options.now must be epoch milliseconds (a finite number) (got a Date (pass epoch milliseconds: date.getTime()))');
    });

    it('NaN and Infinity are refused wherever a time or a limit goes', async () => {
      const store = makeStore();
      for (const call of [
        () => store.revoke('tok-1', { now: Number.NaN }),
        () => store.revoke('tok-1', { now: T0, expiresAt: Number.POSITIVE_INFINITY }),
        () => store.revokeSubject('alice', { now: T0, before: Number.NaN }),
        () => store.getRevocation('tok-1', 'alice', Number.NaN),
        () => store.consume('tok-1', [{ name: 'policy', limit: Number.NaN, windowMs: 60_000 }], T0),
        () => store.consume('tok-1', [{ name: 'policy', limit: 5, windowMs: Number.POSITIVE_INFINITY }], T0),
        () => store.recordUsage('tok-1', { at: Number.NaN }),
      ]) {
        expect(await thrown(call)).toBeInstanceOf(StoreArgumentError);
      }
    });

    it('an empty id or a subject that is not a string is refused', async () => {
      const store = makeStore();
      expect(await thrown(() => store.revoke('', { now: T0 }))).toBeInstanceOf(StoreArgumentError);
      expect(await thrown(() => store.revokeSubject(42 as never, { now: T0, before: T0 }))).toBeInstanceOf(StoreArgumentError);
      expect(await thrown(() => store.getApiKey(''))).toBeInstanceOf(StoreArgumentError);
    });

    it('claimOnce with a non-finite time or an unusable group is refused with a coded StoreArgumentError', async () => {
      const store = makeStore();
      for (const call of [
        () => store.claimOnce('dpop:p1', { now: Number.NaN, expiresAt: T0 + 60_000 }),
        () => store.claimOnce('dpop:p1', { now: T0, expiresAt: Number.POSITIVE_INFINITY }),
        () => store.claimOnce('dpop:p1', { now: T0, expiresAt: T0 + 60_000, group: 42 as never }),
        () => store.claimOnce('dpop:p1', { now: T0, expiresAt: T0 + 60_000, maxPerGroup: 3 }),
        () => store.claimOnce('dpop:p1', { now: T0, expiresAt: T0 + 60_000, group: 'jkt', maxPerGroup: 0 }),
      ]) {
        const e = await thrown(call);
        expect(e).toBeInstanceOf(StoreArgumentError);
        expect(e).toMatchObject({ name: 'StoreArgumentError', code: 'store.invalid_argument' });
      }
      expect(await store.claimOnce('dpop:p1', { now: T0, expiresAt: T0 + 60_000 })).toBe(true);
    });

    it('two limits of one name in one consume call are refused (they would share a counter, charged once)', async () => {
      const store = makeStore();
      const check = { name: 'policy', limit: 5, windowMs: 60_000 };
      expect(await thrown(() => store.consume('tok-1', [check, { ...check, limit: 1 }], T0))).toMatchObject({
        message: 'consume: checks[1].name must be unique within the call (got the string "policy")',
      });
    });

    it('an expiry at or before now is valid: long past, it stores nothing; just past, it reads as not revoked from expiresAt on', async () => {
      const store = makeStore();
      await store.revoke('tok-1', { now: T0, expiresAt: T0 - 86_400_000 });
      expect(await store.getRevocation('tok-1', undefined, T0 - 2 * 86_400_000)).toBeUndefined();
      // A shared store may keep it for readers whose clock is behind the revoker's (docs/stores.md).
      await store.revoke('tok-2', { now: T0, expiresAt: T0 - 1 });
      expect(await store.getRevocation('tok-2', undefined, T0 - 1)).toBeUndefined();
    });

    it('through a guard, the store still refuses a revoked token once revoke was called right', async () => {
      const store = makeStore();
      const guard = createGuard(await basePolicy({ store }));
      const token = await signToken({ scope: 'orders:read', jti: 'tok-7' });
      await expect(Promise.resolve().then(() => store.revoke('tok-7', { expiresAt: T0 + 60_000 } as never))).rejects.toThrow(TypeError);
      expect((await guard.evaluate(req(token))).reason).toBe('ok');
      await store.revoke('tok-7', { now: T0, expiresAt: T0 + 60_000 });
      expect((await guard.evaluate(req(token))).reason).toBe('token.revoked');
    });
  });
}

cases('MemoryStore', () => new MemoryStore());

describe.skipIf(!redisUp)('RedisStore', () => {
  const shared = useSharedRedis('bad-arguments');
  it('exports the same StoreArgumentError class from token-guard/redis', () => {
    expect(RedisStoreArgumentError).toBe(StoreArgumentError);
  });
  let n = 0;
  cases('on the shared Redis', () => new RedisStore({ client: shared.client, prefix: `${shared.prefix}${n++}:`, commandTimeout: 5000 }));
});
