// JWT signatures as the guard checks them (node:crypto, keys chosen by jose's key sets): every allowed algorithm, keys
// that do not fit, signatures of the wrong size, and the key remembered for a kid.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPairSync, sign } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';
import { createGuard, MemoryStore, type JwtAlgorithm } from '../../src/index.js';
import { AUDIENCE, HMAC_SECRET, ISSUER, NOW, NOW_S, signToken } from '../helpers/tokens.js';
import { ORDERS_RULES, bearer, expectAllowed, expectRefused, jwtGuard, validClaims } from './fixtures.js';

const claims = () => ({ scope: 'orders:read', jti: `sig-${Math.random()}` });
const signWith = (alg: string, key: Parameters<SignJWT['sign']>[0], kid = 'k1') =>
  new SignJWT(claims())
    .setProtectedHeader({ alg, kid })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject('alice')
    .setIssuedAt(NOW_S)
    .setExpirationTime(NOW_S + 3600)
    .sign(key);
const guardFor = (alg: JwtAlgorithm, keys: JWK[]) =>
  createGuard({ jwt: { issuer: ISSUER, audience: AUDIENCE, algorithms: [alg], keys }, store: new MemoryStore(), clock: () => NOW, rules: ORDERS_RULES });

describe('every allowed algorithm', () => {
  for (const alg of ['RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const) {
    it(`accepts ${alg} signed by the configured key and refuses ${alg} signed by another key`, async () => {
      const pair = await generateKeyPair(alg);
      const other = await generateKeyPair(alg);
      const guard = guardFor(alg, [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg }]);
      expectAllowed(await guard.evaluate(bearer(await signWith(alg, pair.privateKey))));
      expectRefused(await guard.evaluate(bearer(await signWith(alg, other.privateKey))), 'token.invalid');
    });
  }

  for (const alg of ['HS384', 'HS512'] as const) {
    it(`accepts ${alg} signed with the configured secret and refuses ${alg} signed with another`, async () => {
      const secret = `${HMAC_SECRET}${HMAC_SECRET}`;
      const guard = createGuard({ jwt: { issuer: ISSUER, audience: AUDIENCE, algorithms: [alg], secret }, store: new MemoryStore(), clock: () => NOW, rules: ORDERS_RULES });
      expectAllowed(await guard.evaluate(bearer(await signWith(alg, new TextEncoder().encode(secret)))));
      expectRefused(await guard.evaluate(bearer(await signWith(alg, new TextEncoder().encode(`${secret}!`)))), 'token.invalid');
    });
  }
});

describe('signature size', () => {
  for (const alg of ['RS256', 'ES256', 'HS256'] as const) {
    it(`refuses a ${alg} signature cut short or made longer`, async () => {
      const guard = await jwtGuard({ algorithms: [alg], ...(alg === 'HS256' && { secret: HMAC_SECRET }) });
      const token = await signToken({ scope: 'orders:read' }, { alg });
      expectAllowed(await guard.evaluate(bearer(token)));
      expectRefused(await guard.evaluate(bearer(token.slice(0, -4))), 'token.invalid');
      expectRefused(await guard.evaluate(bearer(`${token}AAAA`)), 'token.invalid');
    });
  }

  it('refuses a header or signature segment whose length no base64url encoding has (4n + 1 characters) as malformed', async () => {
    const guard = await jwtGuard({ algorithms: ['HS256'], secret: HMAC_SECRET });
    const token = await signToken({ scope: 'orders:read' }, { alg: 'HS256' });
    const [h, p, s] = token.split('.') as [string, string, string];
    const pad = (seg: string) => seg + 'A'.repeat((5 - (seg.length % 4)) % 4 || 4);
    expectRefused(await guard.evaluate(bearer(`${pad(h)}.${p}.${s}`)), 'token.malformed');
    expectRefused(await guard.evaluate(bearer(`${h}.${p}.${pad(s)}`)), 'token.malformed');
    // The payload is read only once the signature holds, and no signature covers a changed one (as with jose).
    expectRefused(await guard.evaluate(bearer(`${h}.${pad(p)}.${s}`)), 'token.invalid');
  });
});

describe('keys', () => {
  it('still checks the signature of a later token under a kid whose key was chosen before', async () => {
    const guard = await jwtGuard();
    const forger = await generateKeyPair('RS256');
    expectAllowed(await guard.evaluate(bearer(await signToken({ scope: 'orders:read', jti: 'first' }))));
    expectRefused(await guard.evaluate(bearer(await signToken({ scope: 'orders:read', jti: 'forged' }, { key: forger.privateKey }))), 'token.invalid');
    expectAllowed(await guard.evaluate(bearer(await signToken({ scope: 'orders:read', jti: 'second' }))));
  });

  const servers: { close(): void }[] = [];
  afterAll(() => {
    for (const s of servers) s.close();
  });

  it('refuses a token signed by an RSA key under 2048 bits served in a remote JWK Set', async () => {
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const jwk = { ...(weak.publicKey.export({ format: 'jwk' }) as JWK), kid: 'weak', alg: 'RS256' };
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    const jwksUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
    const guard = createGuard({ jwt: { issuer: ISSUER, audience: AUDIENCE, algorithms: ['RS256'], jwksUri }, store: new MemoryStore(), rules: ORDERS_RULES });
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    const input = `${b64({ alg: 'RS256', kid: 'weak' })}.${b64(validClaims({ iat: now, exp: now + 600 }))}`;
    const token = `${input}.${sign('sha256', Buffer.from(input), weak.privateKey).toString('base64url')}`;
    const d = await guard.evaluate(bearer(token, { now: undefined }));
    expectRefused(d, 'token.invalid');
    expect(d.detail).toBe('the key does not fit the algorithm');
  });
});
