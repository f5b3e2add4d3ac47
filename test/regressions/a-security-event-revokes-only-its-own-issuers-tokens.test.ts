// Regression (security review, SET receiver vs several issuers): a token-claims-change naming a token by jwt_id was
// filed under the bare jti while a multi-issuer guard looks revocations up under `<name>:<jti>`, so the SET was
// answered 202 and audited `applied` but the token kept working; and the receiver ignored the `iss` of iss_sub and
// jwt_id subjects, so one tenant's transmitter could log out another issuer's user of the same `sub`.
import { describe, expect, it } from 'vitest';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { createGuard, MemoryStore, type GuardRequest } from '../../src/index.js';
import { CAEP_EVENTS, createSetReceiver } from '../../src/receivers/set.js';

const ACME = 'https://acme.id.example/';
const GLOBEX = 'https://globex.id.example/';
const API = 'https://api.example/';
const RECEIVER = 'https://api.example/set';
const NOW = new Date();
const NOW_S = Math.floor(NOW.getTime() / 1000);

describe('regression: a security event revokes only its own issuer’s tokens, under the id the guard uses', () => {
  it('revokes acme’s token by jwt_id through the guard, and nothing of globex’s when acme’s transmitter names it', async () => {
    const [ka, kb, ks] = await Promise.all([1, 2, 3].map(() => generateKeyPair('ES256', { extractable: true })));
    if (!ka || !kb || !ks) throw new Error('keys');
    const jwk = async (k: CryptoKeyPair, kid: string) => ({ ...(await exportJWK(k.publicKey)), kid });
    const store = new MemoryStore();
    const guard = createGuard({
      jwt: [
        { name: 'acme', issuer: ACME, audience: API, algorithms: ['ES256'], keys: [await jwk(ka, 'a')] },
        { name: 'globex', issuer: GLOBEX, audience: API, algorithms: ['ES256'], keys: [await jwk(kb, 'b')] },
      ],
      store,
      rules: [{ path: '/orders/**', scopes: ['orders:read'] }],
    });
    const token = (k: CryptoKeyPair, kid: string, iss: string, jti: string) =>
      new SignJWT({ scope: 'orders:read' })
        .setProtectedHeader({ alg: 'ES256', kid })
        .setIssuer(iss)
        .setAudience(API)
        .setSubject('alice')
        .setJti(jti)
        .setIssuedAt(NOW_S - 60)
        .setExpirationTime(NOW_S + 3600)
        .sign(k.privateKey);
    const reason = async (t: string) => {
      const req: GuardRequest = { method: 'GET', path: '/orders/1', headers: { authorization: `Bearer ${t}` }, remoteAddress: '127.0.0.1', now: NOW };
      return (await guard.evaluate(req)).reason;
    };
    const acmeToken = await token(ka, 'a', ACME, 'tok-1');
    const globexToken = await token(kb, 'b', GLOBEX, 'tok-9');
    const receiver = createSetReceiver({ store, guard, issuer: ACME, audience: RECEIVER, keys: [await jwk(ks, 's')] });
    const push = async (jti: string, type: string, subject: Record<string, unknown>) =>
      receiver.receive({
        body: await new SignJWT({ events: { [type]: { subject } } })
          .setProtectedHeader({ alg: 'ES256', kid: 's', typ: 'secevent+jwt' })
          .setIssuer(ACME)
          .setAudience(RECEIVER)
          .setIssuedAt(NOW_S)
          .setJti(jti)
          .sign(ks.privateKey),
        contentType: 'application/secevent+jwt',
        now: NOW,
      });

    expect((await push('s1', CAEP_EVENTS.tokenClaimsChange, { format: 'jwt_id', iss: ACME, jti: 'tok-1' })).status).toBe(202);
    expect(await reason(acmeToken)).toBe('token.revoked');

    expect((await push('s2', CAEP_EVENTS.sessionRevoked, { format: 'iss_sub', iss: GLOBEX, sub: 'alice' })).status).toBe(202);
    expect((await push('s3', CAEP_EVENTS.tokenClaimsChange, { format: 'jwt_id', iss: GLOBEX, jti: 'tok-9' })).status).toBe(202);
    expect(await reason(globexToken)).toBe('ok');
  });
});
