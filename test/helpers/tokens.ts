// Test fixtures: local signing keys, a token factory, and a policy most tests start from.
import { SignJWT, exportJWK, exportSPKI, generateKeyPair, type JWK, type JWTPayload, type CryptoKey } from 'jose';
import { MemoryStore, issueApiKey, type JwtPolicy, type TokenGuardPolicy, type IssueApiKeyOptions } from '../../src/index.js';

export const ISSUER = 'https://id.example.test/';
export const AUDIENCE = 'api://orders';
export const HMAC_SECRET = 'test-secret-that-is-at-least-32-bytes-long!!';
/** A fixed instant (Wednesday 2026-11-25 10:00:00 UTC) that tests evaluate at. */
export const NOW = new Date('2026-11-25T10:00:00Z');
export const NOW_S = Math.floor(NOW.getTime() / 1000);

export interface TestKeys {
  rsaPrivate: CryptoKey;
  rsaPublicJwk: JWK;
  rsaPublicPem: string;
  ecPrivate: CryptoKey;
  ecPublicJwk: JWK;
  /** A second RSA key the policy does not know. */
  otherRsaPrivate: CryptoKey;
}

let keys: Promise<TestKeys> | undefined;

/** Generates the test keys once per test file (RS256 and ES256). */
export function testKeys(): Promise<TestKeys> {
  keys ??= (async () => {
    const rsa = await generateKeyPair('RS256', { extractable: true });
    const ec = await generateKeyPair('ES256', { extractable: true });
    const other = await generateKeyPair('RS256', { extractable: true });
    return {
      rsaPrivate: rsa.privateKey,
      rsaPublicJwk: { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
      rsaPublicPem: await exportSPKI(rsa.publicKey),
      ecPrivate: ec.privateKey,
      ecPublicJwk: { ...(await exportJWK(ec.publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' },
      otherRsaPrivate: other.privateKey,
    };
  })();
  return keys;
}

export interface SignOptions {
  alg?: 'RS256' | 'ES256' | 'HS256';
  kid?: string;
  key?: CryptoKey | Uint8Array;
  /** Extra protected header fields. */
  header?: Record<string, unknown>;
  /** Issued-at, seconds. Default: NOW_S. `null` omits iat. */
  iat?: number | null;
  /** Expiry, seconds. Default: iat + 3600. `null` omits exp. */
  exp?: number | null;
  iss?: string | null;
  aud?: string | string[] | null;
  sub?: string | null;
}

/** Signs a JWT with the test keys; defaults make a valid RS256 access token for alice at NOW. */
export async function signToken(claims: JWTPayload = {}, opts: SignOptions = {}): Promise<string> {
  const k = await testKeys();
  const alg = opts.alg ?? 'RS256';
  const key = opts.key ?? (alg === 'RS256' ? k.rsaPrivate : alg === 'ES256' ? k.ecPrivate : new TextEncoder().encode(HMAC_SECRET));
  const kid = opts.kid ?? (alg === 'RS256' ? 'rsa-1' : alg === 'ES256' ? 'ec-1' : undefined);
  const iat = opts.iat === undefined ? NOW_S : opts.iat;
  const payload: JWTPayload = { ...claims };
  if (iat !== null) payload.iat = iat;
  const exp = opts.exp === undefined ? (iat ?? NOW_S) + 3600 : opts.exp;
  if (exp !== null) payload.exp = exp;
  const iss = opts.iss === undefined ? ISSUER : opts.iss;
  if (iss !== null) payload.iss = iss;
  const aud = opts.aud === undefined ? AUDIENCE : opts.aud;
  if (aud !== null) payload.aud = aud;
  const sub = opts.sub === undefined ? 'alice' : opts.sub;
  if (sub !== null) payload.sub = sub;
  return new SignJWT(payload).setProtectedHeader({ alg, ...(kid && { kid }), ...opts.header }).sign(key);
}

/** A token with another payload under the same signature: its last characters (the JWT cache's index) are the token's. */
export function sameTail(token: string, payload: JWTPayload = { sub: 'mallory', scope: 'admin', exp: NOW_S + 3600 }): string {
  const [h, , s] = token.split('.') as [string, string, string];
  return `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
}

/** A hand-made unsigned token (`alg: none`), for attack tests. */
export function unsignedToken(payload: JWTPayload, header: Record<string, unknown> = { alg: 'none' }): string {
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${enc(header)}.${enc(payload)}.`;
}

/** The JWT part of a policy accepting the test keys (RS256 and ES256 by JWK, HS256 by secret). */
export async function jwtPolicy(overrides: Partial<JwtPolicy> = {}): Promise<JwtPolicy> {
  const k = await testKeys();
  return {
    issuer: ISSUER,
    audience: AUDIENCE,
    algorithms: ['RS256', 'ES256'],
    keys: [k.rsaPublicJwk, k.ecPublicJwk],
    ...overrides,
  };
}

/** Issues an API key into a store and returns the plaintext key and record. */
export async function storeApiKey(store: MemoryStore, options: Partial<IssueApiKeyOptions> = {}) {
  const issued = issueApiKey({ prefix: 'tg_', subject: 'svc-billing', scopes: ['orders:read'], expiresIn: '30d', now: new Date(NOW.getTime() - 86_400_000), ...options });
  await store.putApiKey(issued.record);
  return issued;
}

/** The policy used across HTTP tests: JWT + API keys, a few rules, frozen clock at NOW. */
export async function basePolicy(overrides: Partial<TokenGuardPolicy> = {}): Promise<TokenGuardPolicy> {
  return {
    jwt: await jwtPolicy(),
    apiKeys: { prefix: 'tg_' },
    store: new MemoryStore(),
    clock: () => NOW,
    rules: [
      { path: '/health', public: true },
      { methods: ['GET'], path: '/orders/**', scopes: ['orders:read'] },
      { methods: ['POST', 'PUT', 'PATCH', 'DELETE'], path: '/orders/**', scopes: ['orders:write'], stepUp: { maxAge: '10m', amr: ['mfa'] } },
      { path: '/reports/**', scopes: { any: ['reports:read', 'admin'] } },
      { path: '/admin/**', scopes: ['admin'], ip: { allow: ['10.0.0.0/8'] } },
    ],
    ...overrides,
  };
}
