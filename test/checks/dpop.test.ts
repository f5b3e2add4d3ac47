import { describe, expect, it } from 'vitest';
import { createHash, randomUUID } from 'node:crypto';
import express from 'express';
import request from 'supertest';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK, type CryptoKey } from 'jose';
import { createGuard, MemoryStore, PolicyError, type GuardRequest, type TokenGuardPolicy } from '../../src/index.js';
import { tokenGuard } from '../../src/adapters/express.js';
import { basePolicy, signToken, storeApiKey, NOW, NOW_S } from '../helpers/tokens.js';

interface Holder {
  privateKey: CryptoKey;
  jwk: JWK;
  jkt: string;
}

async function holderKey(alg: 'ES256' | 'RS256' = 'ES256'): Promise<Holder> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(publicKey);
  return { privateKey, jwk, jkt: await calculateJwkThumbprint(jwk, 'sha256') };
}

interface ProofOptions {
  htm?: string;
  htu?: string;
  iat?: number;
  jti?: string | null;
  ath?: string | null;
  token?: string;
  typ?: string;
  alg?: 'ES256' | 'RS256';
  jwk?: JWK;
  key?: CryptoKey;
}

async function proof(holder: Holder, o: ProofOptions = {}): Promise<string> {
  const claims: Record<string, unknown> = { htm: o.htm ?? 'GET', htu: o.htu ?? 'https://api.example.test/orders/1', iat: o.iat ?? NOW_S };
  if (o.jti !== null) claims['jti'] = o.jti ?? randomUUID();
  if (o.ath !== null)
    claims['ath'] =
      o.ath ??
      createHash('sha256')
        .update(o.token ?? '')
        .digest('base64url');
  return new SignJWT(claims).setProtectedHeader({ alg: o.alg ?? 'ES256', typ: o.typ ?? 'dpop+jwt', jwk: o.jwk ?? holder.jwk }).sign(o.key ?? holder.privateKey);
}

const ORIGINS = ['https://api.example.test'];

async function setup(dpop: TokenGuardPolicy['dpop'] = { origins: ORIGINS }, store = new MemoryStore()) {
  const guard = createGuard(await basePolicy({ dpop, store, unmatched: 'authenticate' }));
  const holder = await holderKey();
  const token = await signToken({ scope: 'orders:read', cnf: { jkt: holder.jkt } });
  const ask = async (o: ProofOptions & { scheme?: string; proofHeader?: string | null; over?: Partial<GuardRequest> } = {}) => {
    const headers: GuardRequest['headers'] = { authorization: `${o.scheme ?? 'DPoP'} ${token}`, host: 'api.example.test' };
    if (o.proofHeader !== null) headers['dpop'] = o.proofHeader ?? (await proof(holder, { token, ...o }));
    return guard.evaluate({ method: 'GET', path: '/orders/1?page=2', headers, remoteAddress: '127.0.0.1', now: NOW, ...o.over });
  };
  return { guard, holder, token, ask };
}

describe('DPoP (RFC 9449)', () => {
  it('accepts a DPoP-bound token with a fresh proof from its key', async () => {
    const { ask } = await setup();
    const d = await ask();
    expect([d.reason, d.token?.subject]).toEqual(['ok', 'alice']);
  });

  it('a proof from a thief whose jwk header adds members (key_ops: [], ext) cannot lock the holder out of this process', async () => {
    const { ask, holder } = await setup();
    // Anyone holding the token can send its holder's public key with extra members, signed by any key: refused,
    // and what it adds must not shape the key cached under the holder's thumbprint.
    const thief = await holderKey();
    for (const jwk of [
      { ...holder.jwk, key_ops: [] },
      { ...holder.jwk, key_ops: ['encrypt'], ext: false },
    ]) {
      expect((await ask({ jwk, key: thief.privateKey })).reason).toBe('pop.invalid');
      expect((await ask()).reason).toBe('ok');
    }
  });

  it('accepts a proof whose htu carries a query string (compared without it)', async () => {
    const { ask } = await setup();
    expect((await ask({ htu: 'https://api.example.test/orders/1?page=2' })).reason).toBe('ok');
  });

  it.each<[string, ProofOptions & { proofHeader?: string | null }, RegExp]>([
    ['no proof', { proofHeader: null }, /missing/],
    ['a proof for another method', { htm: 'POST' }, /htm/],
    ['a proof for another path', { htu: 'https://api.example.test/admin' }, /path/],
    ['a proof for another host', { htu: 'https://evil.example.test/orders/1' }, /origin/],
    ['a proof for another access token', { ath: createHash('sha256').update('other').digest('base64url') }, /ath/],
    ['a proof without ath', { ath: null }, /ath/],
    ['a proof without jti', { jti: null }, /proof/],
    ['a proof older than maxAge', { iat: NOW_S - 120 }, /proof/],
    ['a proof from the future', { iat: NOW_S + 120 }, /proof/],
    ['a proof typed as a plain JWT', { typ: 'JWT' }, /proof/],
    ['garbage instead of a proof', { proofHeader: 'not.a.proof' }, /proof/],
  ])('refuses %s with invalid_dpop_proof in the DPoP scheme', async (_name, o, detail) => {
    const { ask } = await setup();
    const d = await ask(o);
    expect([d.status, d.reason]).toEqual([401, 'pop.invalid']);
    expect(d.detail).toMatch(detail);
    expect(d.headers['WWW-Authenticate']).toBe('DPoP error="invalid_dpop_proof", error_description="Proof of possession failed", algs="ES256 RS256 PS256 EdDSA"');
  });

  it('refuses a proof signed by a key other than the one the token is bound to', async () => {
    const { ask } = await setup();
    const thief = await holderKey();
    const d = await ask({ jwk: thief.jwk, key: thief.privateKey });
    expect([d.reason, d.detail]).toEqual(['pop.invalid', 'proof key is not the key the token is bound to']);
  });

  it('refuses a proof whose header carries a private key', async () => {
    const { ask, holder } = await setup();
    const privateJwk = await exportJWK(holder.privateKey);
    expect((await ask({ jwk: privateJwk })).reason).toBe('pop.invalid');
  });

  it('refuses a replayed proof, also on another instance sharing the store', async () => {
    const store = new MemoryStore();
    const a = await setup({ origins: ORIGINS }, store);
    const p = await proof(a.holder, { token: a.token });
    expect((await a.ask({ proofHeader: p })).reason).toBe('ok');
    const again = await a.ask({ proofHeader: p });
    // Known from the store's claim before anything is counted (the dpop-replay step), so the detail can say which.
    expect([again.reason, again.detail]).toEqual(['pop.invalid', 'DPoP proof replayed (its one use was already claimed)']);
    const b = createGuard(await basePolicy({ dpop: { origins: ORIGINS }, store, unmatched: 'authenticate' }));
    const onB = await b.evaluate({
      method: 'GET',
      path: '/orders/1',
      headers: { authorization: `DPoP ${a.token}`, dpop: p, host: 'api.example.test' },
      remoteAddress: '127.0.0.1',
      now: NOW,
    });
    expect(onB.reason).toBe('pop.invalid');
  });

  it('refuses a DPoP-bound token sent as a bearer token (no downgrade)', async () => {
    const { ask } = await setup();
    const d = await ask({ scheme: 'Bearer', proofHeader: null });
    expect([d.reason, d.detail, d.headers['WWW-Authenticate']]).toEqual([
      'pop.invalid',
      'DPoP-bound token presented as a bearer token',
      'Bearer error="invalid_token", error_description="Proof of possession failed"',
    ]);
  });

  it('refuses the DPoP scheme with a token that is not bound to a key', async () => {
    const { guard, holder } = await setup();
    const plain = await signToken({ scope: 'orders:read' });
    const d = await guard.evaluate({
      method: 'GET',
      path: '/orders/1',
      headers: { authorization: `DPoP ${plain}`, dpop: await proof(holder, { token: plain }), host: 'api.example.test' },
      remoteAddress: '127.0.0.1',
      now: NOW,
    });
    expect([d.reason, d.detail]).toEqual(['pop.invalid', 'DPoP scheme with a token not bound to a key']);
  });

  it('refuses DPoP altogether when the policy does not enable it', async () => {
    const guard = createGuard(await basePolicy({ unmatched: 'authenticate' }));
    const holder = await holderKey();
    const token = await signToken({ cnf: { jkt: holder.jkt } });
    const d = await guard.evaluate({
      method: 'GET',
      path: '/x',
      headers: { authorization: `DPoP ${token}`, dpop: await proof(holder, { token, htu: 'https://a.test/x' }), host: 'a.test' },
      remoteAddress: '127.0.0.1',
      now: NOW,
    });
    expect([d.reason, d.detail]).toEqual(['pop.invalid', 'DPoP is not enabled in this policy']);
  });

  it('refuses unbound bearer tokens when DPoP is required, but not API keys', async () => {
    const store = new MemoryStore();
    const { guard } = await setup({ required: true, origins: ORIGINS }, store);
    const d = await guard.evaluate({ method: 'GET', path: '/x', headers: { authorization: `Bearer ${await signToken({})}` }, remoteAddress: '127.0.0.1', now: NOW });
    expect([d.reason, d.detail]).toEqual(['pop.invalid', 'DPoP is required']);
    const { key } = await storeApiKey(store);
    const k = await guard.evaluate({ method: 'GET', path: '/x', headers: { authorization: `Bearer ${key}` }, remoteAddress: '127.0.0.1', now: NOW });
    expect([k.reason, k.token?.kind]).toEqual(['ok', 'api_key']);
  });

  it('pins htu to the configured origins, scheme included (regression: the client-chosen Host header was trusted)', async () => {
    const { ask } = await setup();
    expect((await ask()).reason).toBe('ok');
    expect((await ask({ htu: 'http://api.example.test/orders/1' })).detail).toBe('proof htu names another origin');
    expect((await ask({ htu: 'https://other.example.test/orders/1' })).detail).toBe('proof htu names another origin');
  });

  it('advertises DPoP on a request without a token and answers DPoP requests in the DPoP scheme', async () => {
    const { guard, holder } = await setup();
    const missing = await guard.evaluate({ method: 'GET', path: '/x', headers: {}, remoteAddress: '127.0.0.1', now: NOW });
    expect(missing.headers['WWW-Authenticate']).toBe('Bearer, DPoP algs="ES256 RS256 PS256 EdDSA"');
    const expired = await signToken({ cnf: { jkt: holder.jkt } }, { iat: NOW_S - 7200, exp: NOW_S - 3600 });
    const d = await guard.evaluate({
      method: 'GET',
      path: '/orders/1',
      headers: { authorization: `DPoP ${expired}`, dpop: await proof(holder, { token: expired }), host: 'api.example.test' },
      remoteAddress: '127.0.0.1',
      now: NOW,
    });
    expect([d.reason, d.headers['WWW-Authenticate']]).toEqual([
      'token.expired',
      'DPoP error="invalid_token", error_description="Access token expired", algs="ES256 RS256 PS256 EdDSA"',
    ]);
  });

  it('works end to end through Express, the proof naming the Host the client used', async () => {
    const holder = await holderKey();
    const token = await signToken({ scope: 'orders:read', cnf: { jkt: holder.jkt } });
    const app = express();
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      app.use(tokenGuard(await basePolicy({ dpop: { algorithms: ['ES256'], origins: [origin] }, unmatched: 'authenticate' })));
      app.get('/orders/:id', (req, res) => {
        res.json({ subject: req.auth?.token?.subject });
      });
      const ok = await request(origin)
        .get('/orders/1')
        .set('Authorization', `DPoP ${token}`)
        .set('DPoP', await proof(holder, { token, htu: `${origin}/orders/1` }));
      expect([ok.status, ok.body]).toEqual([200, { subject: 'alice' }]);
      const bad = await request(origin)
        .get('/orders/1')
        .set('Authorization', `DPoP ${token}`)
        .set('DPoP', await proof(holder, { token, htu: `${origin}/orders/2` }));
      expect([bad.status, bad.body.reason, bad.headers['www-authenticate']]).toEqual([
        401,
        'pop.invalid',
        'DPoP error="invalid_dpop_proof", error_description="Proof of possession failed", algs="ES256"',
      ]);
    } finally {
      server.close();
    }
  });

  it('rejects DPoP policies that cannot work at start-up', async () => {
    const policy = await basePolicy();
    expect(() => createGuard({ ...policy, dpop: { algorithms: ['HS256' as never], origins: ORIGINS } })).toThrow(PolicyError);
    expect(() => createGuard({ ...policy, dpop: { origins: ['https://api.example.test/v1'] } })).toThrow('dpop.origins[0]: expected an origin');
    expect(() => createGuard({ ...policy, dpop: {} as never })).toThrow('dpop.origins: required');
    expect(() => createGuard({ apiKeys: { prefix: 'tg_' }, dpop: { origins: ORIGINS } })).toThrow(
      'dpop: DPoP binds access tokens (JWTs or introspected ones): give jwt or introspection too',
    );
  });
});
