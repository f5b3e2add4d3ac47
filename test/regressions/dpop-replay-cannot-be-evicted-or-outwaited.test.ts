// Regression (security review): DPoP replay protection gaps (an evictable replay cache, a one-second window gap).
import { createHash, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { createGuard, MemoryStore, type GuardRequest } from '../../src/index.js';
import { basePolicy, signToken, NOW, NOW_S } from '../helpers/tokens.js';

async function setup(store: MemoryStore) {
  const guard = createGuard(await basePolicy({ dpop: { origins: ['https://api.example.test'] }, store, unmatched: 'authenticate', trackUsage: false }));
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(publicKey);
  const token = await signToken({ scope: 'orders:read', cnf: { jkt: await calculateJwkThumbprint(jwk, 'sha256') } }, { exp: NOW_S + 86_400 });
  const ath = createHash('sha256').update(token).digest('base64url');
  const proof = (iat: number, jti = randomUUID()) =>
    new SignJWT({ htm: 'GET', htu: 'https://api.example.test/orders/1', iat, jti, ath }).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk }).sign(privateKey);
  const send = (p: string, now: Date) =>
    guard.evaluate({
      method: 'GET',
      path: '/orders/1',
      headers: { authorization: `DPoP ${token}`, dpop: p, host: 'api.example.test' },
      remoteAddress: '127.0.0.1',
      now,
    } as GuardRequest);
  return { proof, send };
}

describe('regression: DPoP replay', () => {
  it("a used proof stays refused after other requests fill MemoryStore's counter LRU", async () => {
    const { proof, send } = await setup(new MemoryStore({ maxCounters: 50 })); // default 100 000: same effect, more requests
    const victim = await proof(NOW_S);
    expect((await send(victim, NOW)).reason).toBe('ok');
    expect((await send(victim, NOW)).reason).toBe('pop.invalid'); // replay refused...
    // ...until 50 fresh proofs (any DPoP client can mint them) push its replay entry out of the LRU.
    for (let i = 0; i < 50; i++) await send(await proof(NOW_S), NOW);
    expect((await send(victim, NOW)).reason).toBe('pop.invalid');
  });

  it('a proof cannot be used twice, whatever the timing inside its validity window', async () => {
    const { proof, send } = await setup(new MemoryStore());
    // Client clock 5 s ahead (within clockTolerance): the proof's iat is 5 s in the server's future.
    const p = await proof(NOW_S + 5);
    expect((await send(p, NOW)).reason).toBe('ok');
    // maxAge 60 s + 2 × 5 s tolerance later, the replay entry has just expired, but jose still accepts iat
    // (age − tolerance = 60 s is not > maxAge): a second use in that second.
    const later = new Date(NOW.getTime() + 70_000);
    expect((await send(p, later)).reason).toBe('pop.invalid');
  });
});
