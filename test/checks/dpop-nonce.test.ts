// DPoP server nonces (RFC 9449 §8, §9) and the proof-key cache, at the level of the proof check.
import { createHash, randomUUID } from 'node:crypto';
import express from 'express';
import supertest from 'supertest';
import { describe, expect, it } from 'vitest';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { compileDpop, DpopNonces, jwkThumbprint, verifyDpopProof, type DpopConfig } from '../../src/checks/dpop.js';
import { tokenGuard } from '../../src/adapters/express.js';
import { createGuard } from '../../src/index.js';
import { basePolicy, signToken } from '../helpers/tokens.js';

const SECRET = 'nonce-secret-that-is-at-least-32-bytes!!';
const OTHER_SECRET = 'another-secret-that-is-32-bytes-or-more';
const STEP = 300_000;
// Mid-step, so "previous" and "next" are whole steps away.
const NOW_MS = Math.floor(Date.parse('2026-11-25T10:00:00Z') / STEP) * STEP + STEP / 2;
const TOKEN = 'access-token';

const config = (secret: string | string[] = SECRET): DpopConfig => compileDpop({ origins: ['https://api.example.test'], nonce: { secret, step: '5m' } }, 5);

async function holder(): Promise<{ key: CryptoKey; jwk: JWK; jkt: string }> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(publicKey);
  return { key: privateKey, jwk, jkt: await calculateJwkThumbprint(jwk, 'sha256') };
}

async function proof(h: { key: CryptoKey; jwk: JWK }, nonce: string | undefined, jwk: JWK = h.jwk): Promise<string> {
  const claims: Record<string, unknown> = {
    htm: 'GET',
    htu: 'https://api.example.test/orders/1',
    iat: Math.floor(NOW_MS / 1000),
    jti: randomUUID(),
    ath: createHash('sha256').update(TOKEN).digest('base64url'),
  };
  if (nonce !== undefined) claims['nonce'] = nonce;
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk }).sign(h.key);
}

const request = (p: string, jkt: string, nowMs = NOW_MS) => ({ proof: p, accessToken: TOKEN, jkt, method: 'GET', target: '/orders/1', nowMs, toleranceS: 5 });

describe('DPoP nonces: issued and checked without state', () => {
  const nonces = new DpopNonces([SECRET], STEP, 5000);

  it('accepts the current nonce and the previous step’s', () => {
    expect(nonces.check(nonces.current(NOW_MS), NOW_MS)).toBe('current');
    expect(nonces.check(nonces.current(NOW_MS - STEP), NOW_MS)).toBe('previous');
  });

  it('changes the nonce every step, and keeps it within one', () => {
    expect(nonces.current(NOW_MS)).toBe(nonces.current(NOW_MS + 1000));
    expect(nonces.current(NOW_MS)).not.toBe(nonces.current(NOW_MS + STEP));
  });

  it('refuses a nonce two steps old (expired)', () => {
    expect(nonces.check(nonces.current(NOW_MS - 2 * STEP), NOW_MS)).toBe('expired');
  });

  it('refuses a nonce from the future, but not one from a peer ahead by less than the clock tolerance', () => {
    expect(nonces.check(nonces.current(NOW_MS + STEP), NOW_MS)).toBe('future');
    const boundary = Math.ceil(NOW_MS / STEP) * STEP;
    expect(nonces.check(nonces.current(boundary), boundary - 4000)).toBe('current');
    expect(nonces.check(nonces.current(boundary), boundary - 6000)).toBe('future');
  });

  it('refuses a nonce made with another secret, and a made-up or malformed one', () => {
    const other = new DpopNonces([OTHER_SECRET], STEP, 5000);
    expect(nonces.check(other.current(NOW_MS), NOW_MS)).toBe('forged');
    const real = nonces.current(NOW_MS);
    expect(nonces.check(real.slice(0, 11) + 'A'.repeat(22), NOW_MS)).toBe('forged');
    expect(nonces.check('short', NOW_MS)).toBe('malformed');
    expect(nonces.check(7, NOW_MS)).toBe('malformed');
    expect(nonces.check(`${real.slice(0, 32)}!`, NOW_MS)).toBe('malformed');
    expect(nonces.check('_'.repeat(33), NOW_MS)).toBe('malformed');
    expect(nonces.check(undefined, NOW_MS)).toBe('missing');
  });

  it('is accepted by every instance with the secret, and during a secret rotation', () => {
    const peer = new DpopNonces([SECRET], STEP, 5000);
    expect(peer.check(nonces.current(NOW_MS), NOW_MS)).toBe('current');
    const rotated = new DpopNonces([OTHER_SECRET, SECRET], STEP, 5000);
    expect(rotated.check(nonces.current(NOW_MS), NOW_MS)).toBe('current');
    expect(nonces.check(rotated.current(NOW_MS), NOW_MS)).toBe('forged');
  });
});

describe('DPoP nonces: in the proof check', () => {
  it('accepts a proof with the current nonce', async () => {
    const h = await holder();
    const c = config();
    const r = await verifyDpopProof(c, request(await proof(h, c.nonces?.current(NOW_MS)), h.jkt));
    expect(r).toEqual({ replayKey: expect.any(String), replayGroup: `dpop:${h.jkt}` });
  });

  it('accepts the previous step’s nonce and hands back the current one to send', async () => {
    const h = await holder();
    const c = config();
    const r = await verifyDpopProof(c, request(await proof(h, c.nonces?.current(NOW_MS - STEP)), h.jkt));
    expect(r).toMatchObject({ freshNonce: c.nonces?.current(NOW_MS) });
  });

  it.each([
    ['no nonce', () => undefined, 'missing'],
    ['an expired nonce', (c: DpopConfig) => c.nonces?.current(NOW_MS - 2 * STEP), 'expired'],
    ['a nonce from the future', (c: DpopConfig) => c.nonces?.current(NOW_MS + STEP), 'future'],
    ['a nonce of another secret', () => config(OTHER_SECRET).nonces?.current(NOW_MS), 'forged'],
  ])('refuses a proof with %s, naming the nonce to retry with', async (_name, nonceOf, state) => {
    const h = await holder();
    const c = config();
    const r = await verifyDpopProof(c, request(await proof(h, nonceOf(c)), h.jkt));
    expect(r).toEqual({ failure: `proof nonce ${state}`, useNonce: c.nonces?.current(NOW_MS) });
  });

  it('asks for no nonce when the policy sets none', async () => {
    const h = await holder();
    const c = compileDpop({ origins: ['https://api.example.test'] });
    expect(await verifyDpopProof(c, request(await proof(h, undefined), h.jkt))).toHaveProperty('replayKey');
  });

  it('refuses any other fault before the nonce (a client is told to retry only with an otherwise good proof)', async () => {
    const h = await holder();
    const other = await holder();
    const c = config();
    expect(await verifyDpopProof(c, request(await proof(h, undefined), other.jkt))).toEqual({ failure: 'proof key is not the key the token is bound to' });
  });
});

describe('DPoP proof keys: imported once per key', () => {
  it('computes RFC 7638 thumbprints as jose does, and none for private or symmetric keys', async () => {
    const h = await holder();
    expect(jwkThumbprint(h.jwk)).toBe(h.jkt);
    const rsa = await exportJWK((await generateKeyPair('RS256', { extractable: true })).publicKey);
    expect(jwkThumbprint(rsa)).toBe(await calculateJwkThumbprint(rsa, 'sha256'));
    const ed = await exportJWK((await generateKeyPair('EdDSA', { extractable: true })).publicKey);
    expect(jwkThumbprint(ed)).toBe(await calculateJwkThumbprint(ed, 'sha256'));
    expect(jwkThumbprint({ ...h.jwk, d: 'secret' })).toBeUndefined();
    expect(jwkThumbprint({ kty: 'oct', k: 'c2VjcmV0' })).toBeUndefined();
    expect(jwkThumbprint({ kty: 'EC', crv: 'P-256', x: 1, y: 'y' })).toBeUndefined();
    expect(jwkThumbprint('EC')).toBeUndefined();
  });

  it('imports a proof key once, however many proofs it signs', async () => {
    const h = await holder();
    const c = compileDpop({ origins: ['https://api.example.test'] });
    await verifyDpopProof(c, request(await proof(h, undefined), h.jkt));
    const imported = c.keys.get(`ES256:${h.jkt}`);
    expect(imported).toBeDefined();
    await verifyDpopProof(c, request(await proof(h, undefined), h.jkt));
    expect(c.keys.size).toBe(1);
    expect(c.keys.get(`ES256:${h.jkt}`)).toBe(imported);
  });

  it('refuses a proof whose jwk header carries a private key, before importing anything', async () => {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const priv = await exportJWK(privateKey);
    const c = compileDpop({ origins: ['https://api.example.test'] });
    const r = await verifyDpopProof(c, request(await proof({ key: privateKey, jwk: priv }, undefined), 'x'));
    expect(r).toEqual({ failure: 'proof: jwk header is not a public key' });
    expect(c.keys.size).toBe(0);
  });

  it('imports nothing for a proof from a key the token is not bound to', async () => {
    const h = await holder();
    const c = compileDpop({ origins: ['https://api.example.test'] });
    await verifyDpopProof(c, request(await proof(h, undefined), 'another-thumbprint'));
    expect(c.keys.size).toBe(0);
  });
});

describe('DPoP nonces: through a guard in Express', () => {
  const ORIGIN = 'https://api.example.test';
  const at = (ms: number) => new Date(ms);

  async function setup(secret: string | string[] = SECRET, clockMs = NOW_MS) {
    const clock = { ms: clockMs };
    const policy = await basePolicy({ dpop: { origins: [ORIGIN], nonce: { secret, step: '5m' } }, clock: () => at(clock.ms), realm: 'orders' });
    const app = express();
    app.use(tokenGuard(policy));
    app.get('/orders/:id', (_req, res) => res.json({ ok: true }));
    const h = await holder();
    const token = await signToken({ scope: 'orders:read', cnf: { jkt: h.jkt } }, { iat: Math.floor(clockMs / 1000) });
    const proofAt = async (nonce: string | undefined, ms = clock.ms) => {
      const claims: Record<string, unknown> = {
        htm: 'GET',
        htu: `${ORIGIN}/orders/1`,
        iat: Math.floor(ms / 1000),
        jti: randomUUID(),
        ath: createHash('sha256').update(token).digest('base64url'),
      };
      if (nonce !== undefined) claims['nonce'] = nonce;
      return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: h.jwk }).sign(h.key);
    };
    const get = async (nonce: string | undefined) =>
      supertest(app)
        .get('/orders/1')
        .set('authorization', `DPoP ${token}`)
        .set('dpop', await proofAt(nonce));
    return { app, clock, get };
  }

  it('answers a proof without a nonce 401 use_dpop_nonce with a DPoP-Nonce, and the retry with it passes', async () => {
    const { get } = await setup();
    const first = await get(undefined);
    expect(first.status).toBe(401);
    expect(first.headers['www-authenticate']).toBe(
      'DPoP realm="orders", error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof", algs="ES256 RS256 PS256 EdDSA"',
    );
    const nonce = first.headers['dpop-nonce'] as string;
    expect(nonce).toMatch(/^[A-Za-z0-9_-]{33}$/);
    const retry = await get(nonce);
    expect(retry.status).toBe(200);
    expect(retry.headers['dpop-nonce']).toBeUndefined();
  });

  it('accepts a nonce issued by another instance with the same secret', async () => {
    const a = await setup();
    const b = await setup();
    const nonce = (await a.get(undefined)).headers['dpop-nonce'] as string;
    expect((await b.get(nonce)).status).toBe(200);
  });

  it('accepts the previous step’s nonce once it rotated, and sends the fresh one', async () => {
    const { get, clock } = await setup();
    const old = (await get(undefined)).headers['dpop-nonce'] as string;
    clock.ms += STEP;
    const r = await get(old);
    expect(r.status).toBe(200);
    expect(r.headers['dpop-nonce']).toBeDefined();
    expect(r.headers['dpop-nonce']).not.toBe(old);
    expect((await get(r.headers['dpop-nonce'] as string)).status).toBe(200);
  });

  it.each([
    ['expired (two steps old)', (n: DpopNonces) => n.current(NOW_MS - 2 * STEP)],
    ['from the future', (n: DpopNonces) => n.current(NOW_MS + STEP)],
    ['made with another secret', () => new DpopNonces([OTHER_SECRET], STEP, 5000).current(NOW_MS)],
    ['made up', () => 'A'.repeat(33)],
  ])('refuses a nonce %s with use_dpop_nonce and the current nonce', async (_name, make) => {
    const { get } = await setup();
    const nonces = new DpopNonces([SECRET], STEP, 5000);
    const r = await get(make(nonces));
    expect(r.status).toBe(401);
    expect(r.headers['www-authenticate']).toContain('error="use_dpop_nonce"');
    expect(r.headers['dpop-nonce']).toBe(nonces.current(NOW_MS));
    expect(r.body).toMatchObject({ reason: 'pop.invalid' });
  });

  it('refuses a nonce secret shorter than 32 bytes at start-up', async () => {
    await expect(async () => createGuard(await basePolicy({ dpop: { origins: [ORIGIN], nonce: { secret: 'short' } } }))).rejects.toThrow(/dpop\.nonce\.secret.*32 bytes/);
  });
});
