// Regression (issue 7 item 8): the DPoP replay claim was taken right after the proof verified, before revocation and
// the rate limit, and without a cap per proof key. A flood of throttled or revoked DPoP requests from one token filled
// the store's claims, and every other token's DPoP request then failed with 503.
import { createHash, randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import type { Redis } from 'ioredis';
import { createGuard, MemoryStore, type GuardRequest, type TokenGuardPolicy, type TokenStore } from '../../src/index.js';
import { RedisStore } from '../../src/stores/redis.js';
import { basePolicy, signToken, NOW, NOW_S } from '../helpers/tokens.js';
import { deletePrefix, keysWithPrefix, randomPrefix, redisClient, redisUp } from '../helpers/redis.js';

const ORIGIN = 'https://api.example.test';

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;

/** A DPoP client: a key (its own, or one shared with another client), a token bound to it, and fresh proofs on demand. */
async function client(claims: Record<string, unknown> = {}, keys?: KeyPair) {
  const pair = keys ?? (await generateKeyPair('ES256', { extractable: true }));
  const jwk = await exportJWK(pair.publicKey);
  const token = await signToken({ scope: 'orders:read', cnf: { jkt: await calculateJwkThumbprint(jwk, 'sha256') }, ...claims }, { exp: NOW_S + 86_400 });
  const ath = createHash('sha256').update(token).digest('base64url');
  const proof = (iat = NOW_S, jti = randomUUID()) =>
    new SignJWT({ htm: 'GET', htu: `${ORIGIN}/orders/1`, iat, jti, ath }).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk }).sign(pair.privateKey);
  const request = (p: string, now = NOW): GuardRequest => ({
    method: 'GET',
    path: '/orders/1',
    headers: { authorization: `DPoP ${token}`, dpop: p },
    remoteAddress: '127.0.0.1',
    now,
  });
  return { keys: pair, proof, request };
}

async function guardOn(store: TokenStore, overrides: Partial<TokenGuardPolicy> = {}) {
  return createGuard(await basePolicy({ store, trackUsage: false, ...overrides, dpop: { origins: [ORIGIN], ...overrides.dpop } }));
}

/** Claims a store holds, where the test can see them (RedisStore's keys); undefined where it cannot. */
type ClaimCounter = (store: TokenStore) => Promise<number | undefined>;

function suite(name: string, makeStore: (maxClaims: number) => TokenStore, limits: { claims: boolean }, liveClaims: ClaimCounter) {
  describe(name, () => {
    it("a flood of throttled requests from one token spends no claims, and another token's request still passes", async () => {
      const store = makeStore(20);
      // Each client's own rate limit: one request, then 429.
      const guard = await guardOn(store, { rateLimit: { limit: 1, window: '1h' } });
      const flooder = await client({ jti: 'flooder' });
      expect((await guard.evaluate(flooder.request(await flooder.proof()))).reason).toBe('ok');
      for (let i = 0; i < 40; i++) expect((await guard.evaluate(flooder.request(await flooder.proof()))).reason).toBe('rate.limited');
      expect(await liveClaims(store)).toBeOneOf([undefined, 1]);
      const other = await client({ jti: 'other' });
      const d = await guard.evaluate(other.request(await other.proof()));
      expect([d.status, d.reason]).toEqual([200, 'ok']);
    });

    it("a flood of requests with a revoked token spends no claims, and another token's request still passes", async () => {
      const store = makeStore(20);
      const guard = await guardOn(store);
      const revoked = await client({ jti: 'revoked-1' });
      await guard.revoke('revoked-1', { now: NOW });
      for (let i = 0; i < 40; i++) expect((await guard.evaluate(revoked.request(await revoked.proof()))).reason).toBe('token.revoked');
      expect(await liveClaims(store)).toBeOneOf([undefined, 0]);
      const other = await client({ jti: 'other' });
      const d = await guard.evaluate(other.request(await other.proof()));
      expect([d.status, d.reason]).toEqual([200, 'ok']);
    });

    it('a proof refused by another check can still be used once, and only once, when the request may go through', async () => {
      const store = makeStore(20);
      const guard = await guardOn(store, { rules: [{ path: '/orders/**', scopes: ['orders:read'], ip: { allow: ['10.0.0.0/8'] } }] });
      const c = await client();
      const p = await c.proof();
      const outside = await guard.evaluate(c.request(p));
      expect(outside.reason).toBe('ip.denied');
      const inside = { ...c.request(p), remoteAddress: '10.1.2.3' };
      expect((await guard.evaluate(inside)).reason).toBe('ok');
      const replay = await guard.evaluate(inside);
      expect([replay.status, replay.reason]).toEqual([401, 'pop.invalid']);
    });

    it('caps the live claims of one proof key, refusing its fresh proofs beyond it, without touching other keys', async () => {
      const store = makeStore(limits.claims ? 30 : 1_000_000);
      const guard = await guardOn(store, { dpop: { origins: [ORIGIN], maxClaimsPerKey: 5 } });
      const greedy = await client({ jti: 'greedy' });
      const answers: string[] = [];
      for (let i = 0; i < 40; i++) answers.push((await guard.evaluate(greedy.request(await greedy.proof()))).reason);
      expect(answers).toEqual([...Array(5).fill('ok'), ...Array(35).fill('pop.invalid')]);
      // The cap is per proof key, not per token: another token bound to the same key shares it.
      const sameKey = await client({ jti: 'greedy-2' }, greedy.keys);
      expect((await guard.evaluate(sameKey.request(await sameKey.proof()))).reason).toBe('pop.invalid');
      const other = await client({ jti: 'other' });
      const d = await guard.evaluate(other.request(await other.proof()));
      expect([d.status, d.reason]).toEqual([200, 'ok']);
      // Once its proofs age out of the replay window (maxAge 60 s + 2 × 5 s tolerance + 1 s), the key has room again.
      const later = new Date(NOW.getTime() + 71_000);
      expect((await guard.evaluate(greedy.request(await greedy.proof(NOW_S + 71), later))).reason).toBe('ok');
    });

    it('a replayed proof is still refused with pop.invalid', async () => {
      const store = makeStore(20);
      const guard = await guardOn(store);
      const c = await client();
      const p = await c.proof();
      expect((await guard.evaluate(c.request(p))).reason).toBe('ok');
      const again = await guard.evaluate(c.request(p));
      expect([again.status, again.reason, again.headers['WWW-Authenticate']]).toEqual([401, 'pop.invalid', expect.stringContaining('error="invalid_dpop_proof"')]);
    });
  });
}

suite(
  'MemoryStore',
  (maxClaims) => new MemoryStore({ maxClaims }),
  { claims: true },
  async () => undefined,
);

let redis: Redis | undefined;
const RUN = randomPrefix('dpop-claims');
const prefixes = new WeakMap<TokenStore, string>();
let n = 0;
if (redisUp) {
  const r = redisClient();
  redis = r;
  const makeStore = () => {
    const prefix = `${RUN}${n++}:`;
    const store = new RedisStore({ client: r, prefix });
    prefixes.set(store, prefix);
    return store;
  };
  // Every claim the store holds: one-time keys without a group, and the members of each group's sorted set.
  const liveClaims: ClaimCounter = async (store) => {
    let count = 0;
    for (const key of await keysWithPrefix(r, prefixes.get(store) as string)) {
      if (key.includes('{o:')) count++;
      else if (key.includes('{g:')) count += await r.zcard(key);
    }
    return count;
  };
  suite('RedisStore', makeStore, { claims: false }, liveClaims);
}
afterAll(async () => {
  if (redis) {
    await deletePrefix(redis, RUN);
    redis.disconnect();
  }
});
