// Fixtures of the SET receiver's tests: one identity provider key that signs both its SETs and its access tokens, a
// guard reading the store the receiver writes, and a store whose methods a test can replace one by one.
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { createGuard, type Guard, type MemoryStore, type TokenStore } from '../../src/index.js';
import { CAEP_EVENTS } from '../../src/receivers/set.js';

export const NOW = new Date('2026-11-25T10:00:00Z');
export const NOW_S = NOW.getTime() / 1000;
export const IDP = 'https://idp.example/';
/** The audience of the access tokens (the API the guard protects). */
export const API = 'https://api.example/';
/** The audience of the SETs (this receiver). */
export const RECEIVER = 'https://api.example/security-events';
export const CT = 'application/secevent+jwt';
export const DAY_S = 86_400;

let idp: Promise<{ key: CryptoKey; jwk: JWK }> | undefined;

/** The identity provider's ES256 key pair, made once per test file. */
export function idpKey(): Promise<{ key: CryptoKey; jwk: JWK }> {
  idp ??= (async () => {
    const k = await generateKeyPair('ES256', { extractable: true });
    return { key: k.privateKey, jwk: { ...(await exportJWK(k.publicKey)), kid: 'idp-1' } };
  })();
  return idp;
}

let seq = 0;

/** A SET from the identity provider; by default a session-revoked for alice issued at `iat` (default NOW). */
export async function securityEvent(o: { iat?: number; jti?: unknown; events?: Record<string, unknown> } = {}): Promise<string> {
  const { key } = await idpKey();
  const payload = {
    iss: IDP,
    aud: RECEIVER,
    iat: o.iat ?? NOW_S,
    jti: 'jti' in o ? o.jti : `set-${++seq}`,
    events: o.events ?? { [CAEP_EVENTS.sessionRevoked]: { subject: { format: 'iss_sub', iss: IDP, sub: 'alice' } } },
  };
  return new SignJWT(payload as Record<string, unknown>).setProtectedHeader({ alg: 'ES256', kid: 'idp-1', typ: 'secevent+jwt' }).sign(key);
}

/** An access token of alice's from the identity provider, issued at `iat` and expiring at `exp` (seconds). */
export async function accessToken(iat: number, exp: number, jti = `tok-${iat}`): Promise<string> {
  const { key } = await idpKey();
  return new SignJWT({ scope: 'read' })
    .setProtectedHeader({ alg: 'ES256', kid: 'idp-1' })
    .setIssuer(IDP)
    .setAudience(API)
    .setSubject('alice')
    .setIssuedAt(iat)
    .setExpirationTime(exp)
    .setJti(jti)
    .sign(key);
}

/** A guard of the identity provider's tokens and `sk_` API keys on `store`, one issuer configuration. */
export async function guardOn(store: TokenStore, clockTolerance?: `${number}${'s' | 'm'}`): Promise<Guard> {
  const { jwk } = await idpKey();
  return createGuard({
    jwt: { issuer: IDP, audience: API, algorithms: ['ES256'], keys: [jwk], ...(clockTolerance && { clockTolerance }) },
    apiKeys: { prefix: 'sk_' },
    store,
    unmatched: 'authenticate',
  });
}

/** The reason the guard gives a request carrying `credential` at `atS` (seconds). */
export async function reasonAt(guard: Guard, credential: string, atS: number): Promise<string> {
  const d = await guard.evaluate({ method: 'GET', path: '/x', headers: { authorization: `Bearer ${credential}` }, remoteAddress: '127.0.0.1', now: new Date(atS * 1000) });
  return d.reason;
}

/** `real` with the methods named in `overrides` replaced (looked up on every call, so a test can swap them). */
export function storeWith(real: MemoryStore, overrides: Partial<Record<keyof TokenStore, (...args: unknown[]) => unknown>>): TokenStore {
  return new Proxy(real, {
    get(target, prop, receiver) {
      const over = overrides[prop as keyof TokenStore];
      if (over) return over;
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as TokenStore;
}
