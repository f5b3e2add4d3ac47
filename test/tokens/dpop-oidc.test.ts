// Issue 12 part 2 against a real authorization server: oidc-provider issues a DPoP-bound (cnf.jkt) RFC 9068
// access token to a client that proves its key with a DPoP proof (and the AS's nonce when it demands one), and an
// Express app guarded by token-guard with DPoP server nonces accepts it only with a fresh proof by that key.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT, calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { tokenGuard } from '../../src/adapters/express.js';
import { MemoryStore } from '../../src/index.js';
import { startOidcProvider, type OidcServer } from '../helpers/oidc.js';

interface Holder {
  key: CryptoKey;
  jwk: JWK;
  jkt: string;
}

async function holder(): Promise<Holder> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(publicKey);
  return { key: privateKey, jwk, jkt: await calculateJwkThumbprint(jwk, 'sha256') };
}

/** A DPoP proof (RFC 9449 §4.2) as a client makes it: fresh jti, iat now, ath when it goes with an access token. */
async function proof(h: Holder, o: { htm: string; htu: string; nonce?: string; token?: string; signer?: CryptoKey }): Promise<string> {
  const claims: Record<string, unknown> = { htm: o.htm, htu: o.htu, iat: Math.floor(Date.now() / 1000), jti: randomUUID() };
  if (o.nonce !== undefined) claims['nonce'] = o.nonce;
  if (o.token !== undefined) claims['ath'] = createHash('sha256').update(o.token).digest('base64url');
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: h.jwk }).sign(o.signer ?? h.key);
}

const NONCE_SECRET = 'resource-server-dpop-nonce-secret-0123456789';

let idp: OidcServer;
let server: Server;
let origin: string;
let client: Holder;
let token: string;
/** How the AS answered the first token request (no nonce in the proof). */
let asChallenge: { status: number; error: unknown; nonce: string | null };
let tokenType: unknown;

beforeAll(async () => {
  idp = await startOidcProvider({ dpop: { nonceSecret: randomBytes(32), requireNonce: true } });
  client = await holder();

  // The client credentials grant with a DPoP proof; the AS demands a nonce first, then issues the bound token.
  const tokenRequest = async (nonce?: string) =>
    fetch(`${idp.baseUrl}/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${idp.clientId}:${idp.clientSecret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
        dpop: await proof(client, { htm: 'POST', htu: `${idp.baseUrl}/token`, ...(nonce !== undefined && { nonce }) }),
      },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: idp.resource, scope: 'orders:read' }),
    });
  const first = await tokenRequest();
  asChallenge = { status: first.status, error: ((await first.json()) as { error?: unknown }).error, nonce: first.headers.get('dpop-nonce') };
  const second = await tokenRequest(asChallenge.nonce ?? undefined);
  const body = (await second.json()) as { access_token?: string; token_type?: unknown; error?: string; error_description?: string };
  if (!second.ok || typeof body.access_token !== 'string') throw new Error(`token request failed: ${second.status} ${body.error} ${body.error_description}`);
  token = body.access_token;
  tokenType = body.token_type;

  // The resource server listens first: proofs name its origin in htu, and the policy lists that origin.
  const app = express();
  server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  app.use(
    tokenGuard({
      jwt: { issuer: idp.issuer, audience: idp.resource, algorithms: ['ES256'], discovery: true, typ: 'at+jwt' },
      dpop: { algorithms: ['ES256'], origins: [origin], nonce: { secret: NONCE_SECRET, step: '5m' } },
      rules: [{ path: '/orders/**', scopes: ['orders:read'] }],
      store: new MemoryStore(),
    }),
  );
  app.get('/orders/:id', (req, res) => {
    res.json({ id: req.params.id, client: req.auth?.token?.claims?.['client_id'] });
  });
});

afterAll(async () => {
  await new Promise((r) => server?.close(r));
  await idp?.close();
});

/** A request to the guarded app with the token under `scheme` and, unless null, the DPoP header. */
const call = (dpop: string | null, scheme = 'DPoP', path = '/orders/1') => {
  const r = request(origin).get(path).set('authorization', `${scheme} ${token}`);
  return dpop === null ? r : r.set('dpop', dpop);
};

/** Asks the app for its current nonce with a nonce-less proof (a 401 use_dpop_nonce). */
async function resourceNonce(): Promise<string> {
  const r = await call(await proof(client, { htm: 'GET', htu: `${origin}/orders/1`, token }));
  expect(r.status).toBe(401);
  return r.headers['dpop-nonce'] as string;
}

describe('a DPoP-bound token from oidc-provider, through an Express app guarded by token-guard', () => {
  it('the AS demanded a nonce (use_dpop_nonce, DPoP-Nonce) and then issued a DPoP at+jwt bound to the client key', () => {
    expect(asChallenge.status).toBe(400);
    expect(asChallenge.error).toBe('use_dpop_nonce');
    expect(asChallenge.nonce).toEqual(expect.any(String));
    expect(tokenType).toBe('DPoP');
    expect(decodeProtectedHeader(token).typ).toBe('at+jwt');
    const claims = decodeJwt(token);
    expect(claims['cnf']).toEqual({ jkt: client.jkt });
    expect([claims.iss, claims.aud]).toEqual([idp.issuer, idp.resource]);
  });

  it('answers a proof without a nonce 401 use_dpop_nonce with a DPoP-Nonce, and the retry with it and ath passes', async () => {
    const first = await call(await proof(client, { htm: 'GET', htu: `${origin}/orders/1`, token }));
    expect(first.status).toBe(401);
    expect(first.headers['www-authenticate']).toContain('error="use_dpop_nonce"');
    expect(first.headers['www-authenticate']).toMatch(/^DPoP /);
    const nonce = first.headers['dpop-nonce'] as string;
    expect(nonce).toMatch(/^[A-Za-z0-9_-]{33}$/);
    // The resource server's nonce is its own, not the AS's.
    expect(nonce).not.toBe(asChallenge.nonce);

    const retry = await call(await proof(client, { htm: 'GET', htu: `${origin}/orders/1`, token, nonce }));
    expect([retry.status, retry.body]).toEqual([200, { id: '1', client: idp.clientId }]);
  });

  it('refuses the same token as a Bearer token (no downgrade); with a DPoP header too, as a malformed request', async () => {
    const bare = await call(null, 'Bearer');
    expect([bare.status, bare.body.reason]).toEqual([401, 'pop.invalid']);
    expect(bare.headers['www-authenticate']).toContain('error="invalid_token"');
    const nonce = await resourceNonce();
    const withProof = await call(await proof(client, { htm: 'GET', htu: `${origin}/orders/1`, token, nonce }), 'Bearer');
    // docs/reasons.md: a Bearer token with a DPoP header is 400 request.malformed (invalid_request).
    expect([withProof.status, withProof.body.reason]).toEqual([400, 'request.malformed']);
    expect(withProof.headers['www-authenticate']).toContain('error="invalid_request"');
  });

  it('refuses a proof signed by another key (its own jwk, or the client jwk with another signature)', async () => {
    const nonce = await resourceNonce();
    const attacker = await holder();
    const own = await call(await proof(attacker, { htm: 'GET', htu: `${origin}/orders/1`, token, nonce }));
    expect([own.status, own.body.reason]).toEqual([401, 'pop.invalid']);
    expect(own.headers['www-authenticate']).toContain('error="invalid_dpop_proof"');
    expect(own.headers['dpop-nonce']).toBeUndefined();
    const forged = await call(await proof(client, { htm: 'GET', htu: `${origin}/orders/1`, token, nonce, signer: attacker.key }));
    expect([forged.status, forged.body.reason]).toEqual([401, 'pop.invalid']);
    expect(forged.headers['www-authenticate']).toContain('error="invalid_dpop_proof"');
  });

  it('refuses a replayed proof', async () => {
    const nonce = await resourceNonce();
    const p = await proof(client, { htm: 'GET', htu: `${origin}/orders/1`, token, nonce });
    expect((await call(p)).status).toBe(200);
    const again = await call(p);
    expect([again.status, again.body.reason]).toEqual([401, 'pop.invalid']);
    expect(again.headers['www-authenticate']).toContain('error="invalid_dpop_proof"');
  });

  it('refuses a proof made for another path, and one without ath', async () => {
    const nonce = await resourceNonce();
    const other = await call(await proof(client, { htm: 'GET', htu: `${origin}/orders/2`, token, nonce }));
    expect([other.status, other.body.reason]).toEqual([401, 'pop.invalid']);
    const noAth = await call(await proof(client, { htm: 'GET', htu: `${origin}/orders/1`, nonce }));
    expect([noAth.status, noAth.body.reason]).toEqual([401, 'pop.invalid']);
  });
});
