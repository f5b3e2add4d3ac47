// A session-revoked event pushed to one app instance refuses the subject's very next request on another instance
// sharing the RedisStore. Real parts: oidc-provider issues the access tokens, Express serves both instances, Redis
// holds the state (near-cache on, so the revocation also has to reach the other instance's cache by pub/sub).
import express from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SignJWT, decodeJwt, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import type { Redis } from 'ioredis';
import { tokenGuard } from '../../src/adapters/express.js';
import { RedisStore } from '../../src/stores/redis.js';
import type { TokenGuardPolicy } from '../../src/index.js';
import { CAEP_EVENTS, createSetReceiver, type SecurityEventRecord } from '../../src/receivers/set.js';
import { deletePrefix, randomPrefix, redisClient, redisUp } from '../helpers/redis.js';
import { startOidcProvider, type OidcServer } from '../helpers/oidc.js';

const CT = 'application/secevent+jwt';
const RECEIVER = 'https://api.example.test/';
const TRANSMITTER = 'https://ssf.idp.example.test/';

describe.skipIf(!redisUp)('security events: a pushed session-revoked event on a shared RedisStore', () => {
  let idp: OidcServer;
  let client: Redis;
  const subscribers: Redis[] = [];
  const prefix = randomPrefix('set-receiver');
  let ssfKey: CryptoKey;
  let ssfJwk: JWK;
  let storeA: RedisStore;
  let storeB: RedisStore;
  const audit: SecurityEventRecord[] = [];

  beforeAll(async () => {
    idp = await startOidcProvider();
    client = redisClient();
    const sub = () => {
      const s = client.duplicate();
      s.on('error', () => undefined);
      subscribers.push(s);
      return s;
    };
    storeA = new RedisStore({ client, prefix, subscriber: sub() });
    storeB = new RedisStore({ client, prefix, subscriber: sub() });
    await vi.waitFor(() => expect(storeA.stats().nearCacheEnabled && storeB.stats().nearCacheEnabled).toBe(true), { timeout: 5000, interval: 5 });
    const k = await generateKeyPair('ES256', { extractable: true });
    ssfKey = k.privateKey;
    ssfJwk = { ...(await exportJWK(k.publicKey)), kid: 'ssf-1' };
  });

  afterAll(async () => {
    await storeA?.close();
    await storeB?.close();
    for (const s of subscribers) s.disconnect();
    if (client) {
      await deletePrefix(client, prefix);
      client.disconnect();
    }
    await idp?.close();
  });

  const policy = (store: RedisStore): TokenGuardPolicy => ({
    jwt: { issuer: idp.issuer, audience: idp.resource, algorithms: ['ES256'], jwksUri: idp.jwksUri, typ: 'at+jwt' },
    store,
    rules: [{ path: '/orders/**', scopes: ['orders:read'] }],
  });

  function instance(store: RedisStore) {
    const app = express();
    // The SSF transmitter is not the token issuer: it may name the token issuer's subjects only when told so.
    const receiver = createSetReceiver({ store, issuer: TRANSMITTER, subjectIssuers: [idp.issuer], audience: RECEIVER, keys: [ssfJwk], onEvent: (r) => void audit.push(r) });
    app.post('/security-events', express.text({ type: CT }), receiver.node);
    app.use(tokenGuard(policy(store)));
    app.get('/orders/:id', (_req, res) => res.json({ ok: true }));
    return app;
  }

  const sessionRevoked = (sub: string, jti: string) =>
    new SignJWT({ events: { [CAEP_EVENTS.sessionRevoked]: { subject: { format: 'iss_sub', iss: idp.issuer, sub }, event_timestamp: Math.floor(Date.now() / 1000) } } })
      .setProtectedHeader({ alg: 'ES256', kid: 'ssf-1', typ: 'secevent+jwt' })
      .setIssuer(TRANSMITTER)
      .setAudience(RECEIVER)
      .setIssuedAt()
      .setJti(jti)
      .sign(ssfKey);

  it("refuses the subject's next request on the other instance, and a replay of the event changes nothing", async () => {
    const a = instance(storeA);
    const b = instance(storeB);
    const token = await idp.accessToken({ scope: 'orders:read' });
    const subject = decodeJwt(token).sub as string;
    expect(subject).toBeTruthy();

    await request(b).get('/orders/1').set('authorization', `Bearer ${token}`).expect(200);
    await request(a).get('/orders/1').set('authorization', `Bearer ${token}`).expect(200);

    // The IdP's transmitter pushes the event to instance A.
    const set = await sessionRevoked(subject, `evt-${prefix}`);
    await request(a).post('/security-events').set('content-type', CT).send(set).expect(202);

    const refused = await request(b).get('/orders/1').set('authorization', `Bearer ${token}`);
    expect(refused.status).toBe(401);
    expect(refused.body).toMatchObject({ reason: 'token.revoked' });
    expect(refused.headers['www-authenticate']).toContain('invalid_token');
    await request(a).get('/orders/1').set('authorization', `Bearer ${token}`).expect(401);

    // Replayed to the other instance: the jti is claimed in the shared store.
    const replay = await request(b).post('/security-events').set('content-type', CT).send(set);
    expect(replay.status).toBe(400);
    expect(replay.body).toEqual({ err: 'invalid_request', description: 'SET jti already received' });
    expect(audit.map((r) => r.outcome)).toEqual(['applied', 'replayed']);
    expect(audit[0]?.actions).toEqual([{ type: CAEP_EVENTS.sessionRevoked, action: 'revoke_subject', subject }]);
  });

  it('refuses a forged event pushed to an instance, and revokes nothing in the shared store', async () => {
    const a = instance(storeA);
    const rogue = await generateKeyPair('ES256');
    const forged = await new SignJWT({ events: { [CAEP_EVENTS.sessionRevoked]: { subject: { format: 'opaque', id: 'victim' } } } })
      .setProtectedHeader({ alg: 'ES256', kid: 'ssf-1', typ: 'secevent+jwt' })
      .setIssuer(TRANSMITTER)
      .setAudience(RECEIVER)
      .setIssuedAt()
      .setJti(`forged-${prefix}`)
      .sign(rogue.privateKey);
    const r = await request(a).post('/security-events').set('content-type', CT).send(forged);
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ err: 'invalid_key' });
    expect(await storeB.getRevocation('x', 'victim', Date.now())).toBeUndefined();
  });
});
