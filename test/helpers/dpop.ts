// A DPoP client for tests (RFC 9449): its own key, an access token bound to it, fresh proofs on demand; and a store
// without the optional `isClaimed`, as an app's own adapter may be.
import { createHash, randomUUID } from 'node:crypto';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import type { GuardRequest, MemoryStore, TokenStore } from '../../src/index.js';
import { signToken, NOW, NOW_S } from './tokens.js';

/** The origin the proofs name (`htu`) unless a test gives another. */
export const DPOP_ORIGIN = 'https://api.example.test';

/** A DPoP client: a key, a token bound to it (scope `orders:read`, a random jti), fresh proofs for GET /orders/1. */
export async function dpopClient(origin = DPOP_ORIGIN) {
  const pair = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(pair.publicKey);
  const token = await signToken({ scope: 'orders:read', jti: randomUUID(), cnf: { jkt: await calculateJwkThumbprint(jwk, 'sha256') } }, { exp: NOW_S + 86_400 });
  const ath = createHash('sha256').update(token).digest('base64url');
  const proof = () =>
    new SignJWT({ htm: 'GET', htu: `${origin}/orders/1`, iat: NOW_S, jti: randomUUID(), ath }).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk }).sign(pair.privateKey);
  const req = (p: string): GuardRequest => ({ method: 'GET', path: '/orders/1', headers: { authorization: `DPoP ${token}`, dpop: p }, remoteAddress: '127.0.0.1', now: NOW });
  return { token, proof, req };
}

/** A store that has every method but the optional `isClaimed`, as an app's own adapter may. */
export function withoutIsClaimed(inner: MemoryStore): TokenStore {
  return {
    getApiKey: (h) => inner.getApiKey(h),
    putApiKey: (r) => inner.putApiKey(r),
    updateApiKey: (h, p, c) => inner.updateApiKey(h, p, c),
    deleteApiKey: (h) => inner.deleteApiKey(h),
    useApiKey: (h) => inner.useApiKey(h),
    revoke: (id, o) => inner.revoke(id, o),
    revokeSubject: (s, o) => inner.revokeSubject(s, o),
    getRevocation: (id, s, now) => inner.getRevocation(id, s, now),
    consume: (id, c, now) => inner.consume(id, c, now),
    claimOnce: (k, o) => inner.claimOnce(k, o),
    recordUsage: (id, u) => inner.recordUsage(id, u),
    getUsage: (id) => inner.getUsage(id),
  };
}
