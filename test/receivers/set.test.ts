// Security Event Tokens pushed by the identity provider (RFC 8417, RFC 8935, CAEP): every attack on the receiver.
import { createServer } from 'node:http';
import express from 'express';
import request from 'supertest';
import { beforeAll, describe, expect, it } from 'vitest';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { MemoryStore, UsageError } from '../../src/index.js';
import { CAEP_EVENTS, createSetReceiver, type SecurityEventRecord, type SetReceiverOptions } from '../../src/receivers/set.js';
import { wrapStore } from '../helpers/stores.js';

const NOW = new Date('2026-11-25T10:00:00Z');
const NOW_S = NOW.getTime() / 1000;
const IDP = 'https://idp.example/';
const RECEIVER = 'https://api.example/';
const CT = 'application/secevent+jwt';

let idpKey: CryptoKey;
let idpJwk: JWK;
let rogueKey: CryptoKey;
beforeAll(async () => {
  const k = await generateKeyPair('ES256', { extractable: true });
  idpKey = k.privateKey;
  idpJwk = { ...(await exportJWK(k.publicKey)), kid: 'idp-1' };
  rogueKey = (await generateKeyPair('ES256')).privateKey;
});

let seq = 0;
interface SetOptions {
  key?: CryptoKey;
  typ?: string | null;
  iss?: string;
  aud?: string;
  iat?: number;
  jti?: string;
  events?: Record<string, unknown>;
  extra?: Record<string, unknown>;
}
const aliceSubject = { format: 'iss_sub', iss: IDP, sub: 'alice' };

function makeSet(o: SetOptions = {}): Promise<string> {
  const header: Record<string, unknown> = { alg: 'ES256', kid: 'idp-1' };
  if (o.typ !== null) header['typ'] = o.typ ?? 'secevent+jwt';
  return new SignJWT({ events: o.events ?? { [CAEP_EVENTS.sessionRevoked]: { subject: aliceSubject, event_timestamp: NOW_S - 5 } }, ...o.extra })
    .setProtectedHeader(header as { alg: string })
    .setIssuer(o.iss ?? IDP)
    .setAudience(o.aud ?? RECEIVER)
    .setIssuedAt(o.iat ?? NOW_S)
    .setJti(o.jti ?? `set-${++seq}`)
    .sign(o.key ?? idpKey);
}

function setup(extra: Partial<SetReceiverOptions> = {}) {
  const store = extra.store ?? new MemoryStore();
  const records: SecurityEventRecord[] = [];
  const receiver = createSetReceiver({ store, issuer: IDP, audience: RECEIVER, keys: [idpJwk], clock: () => NOW, onEvent: (r) => void records.push(r), ...extra });
  return { store, receiver, records };
}

const deliver = (receiver: ReturnType<typeof setup>['receiver'], body: string, contentType = CT, authorization?: string) =>
  receiver.receive({ body, contentType, authorization, now: NOW });
const errorOf = (body: string) => (JSON.parse(body) as { err: string }).err;

describe('SET receiver: events become revocations', () => {
  it('session-revoked revokes every token of the subject issued before the SET, and is audited', async () => {
    const { store, receiver, records } = setup();
    const r = await deliver(receiver, await makeSet({ jti: 'evt-1' }));
    expect(r).toEqual({ status: 202, headers: {}, body: '' });
    expect(await store.getRevocation('any-token', 'alice', NOW.getTime())).toEqual({ subjectRevokedBefore: NOW.getTime() });
    expect(await store.getRevocation('any-token', 'bob', NOW.getTime())).toBeUndefined();
    expect(records).toEqual([
      { time: NOW, outcome: 'applied', jti: 'evt-1', issuer: IDP, actions: [{ type: CAEP_EVENTS.sessionRevoked, action: 'revoke_subject', subject: 'alice' }] },
    ]);
  });

  it('reads the SSF top-level sub_id when the event names no subject', async () => {
    const { store, receiver } = setup();
    const set = await makeSet({ events: { [CAEP_EVENTS.sessionRevoked]: {} }, extra: { sub_id: { format: 'opaque', id: 'carol' } } });
    expect((await deliver(receiver, set)).status).toBe(202);
    expect(await store.getRevocation('t', 'carol', NOW.getTime())).toMatchObject({ subjectRevokedBefore: NOW.getTime() });
  });

  it('credential-change revokes the subject, except for a credential created', async () => {
    const { store, receiver, records } = setup();
    await deliver(receiver, await makeSet({ events: { [CAEP_EVENTS.credentialChange]: { subject: aliceSubject, change_type: 'revoke', credential_type: 'password' } } }));
    expect(await store.getRevocation('t', 'alice', NOW.getTime())).toBeDefined();
    const complexBob = { format: 'complex', user: { format: 'iss_sub', iss: IDP, sub: 'bob' } };
    await deliver(receiver, await makeSet({ events: { [CAEP_EVENTS.credentialChange]: { subject: complexBob, change_type: 'create' } } }));
    expect(await store.getRevocation('t', 'bob', NOW.getTime())).toBeUndefined();
    expect(records[1]?.actions[0]).toMatchObject({ action: 'ignored' });
  });

  it('token-claims-change revokes the one token it names by jti', async () => {
    const { store, receiver } = setup();
    const set = await makeSet({ events: { [CAEP_EVENTS.tokenClaimsChange]: { subject: { format: 'jwt_id', iss: IDP, jti: 'tok-42' }, claims: { role: 'reader' } } } });
    expect((await deliver(receiver, set)).status).toBe(202);
    expect(await store.getRevocation('tok-42', undefined, NOW.getTime())).toMatchObject({ revokedAt: NOW.getTime() });
    expect(await store.getRevocation('tok-43', 'alice', NOW.getTime())).toBeUndefined();
  });

  it('accepts but ignores event types and subject formats it cannot act on (audited)', async () => {
    const { receiver, records } = setup();
    const set = await makeSet({
      events: {
        'https://schemas.openid.net/secevent/caep/event-type/device-compliance-change': { subject: aliceSubject },
        [CAEP_EVENTS.sessionRevoked]: { subject: { format: 'email', email: 'a@example.com' } },
      },
    });
    expect((await deliver(receiver, set)).status).toBe(202);
    expect(records[0]?.actions.map((a) => a.action)).toEqual(['ignored', 'ignored']);
  });

  it('maps subjects with subjectOf', async () => {
    const { store, receiver } = setup({ subjectOf: (s) => (s.format === 'email' ? `user:${String(s['email'])}` : undefined) });
    await deliver(receiver, await makeSet({ events: { [CAEP_EVENTS.sessionRevoked]: { subject: { format: 'email', email: 'a@example.com' } } } }));
    expect(await store.getRevocation('t', 'user:a@example.com', NOW.getTime())).toBeDefined();
  });
});

describe('SET receiver: attacks are refused (RFC 8935 §2.4 errors) and change nothing', () => {
  const cases: [string, () => Promise<string>, string][] = [
    ['a SET signed with a key the issuer does not have (forged)', () => makeSet({ key: rogueKey }), 'invalid_key'],
    ['a SET from another issuer', () => makeSet({ iss: 'https://evil.example/' }), 'invalid_issuer'],
    ['a SET for another receiver', () => makeSet({ aud: 'https://other-api.example/' }), 'invalid_audience'],
    ['an access token of the same issuer posted as a SET (typ at+jwt)', () => makeSet({ typ: 'at+jwt' }), 'invalid_request'],
    ['a JWT without typ', () => makeSet({ typ: null }), 'invalid_request'],
    ['a SET older than tokenLifetime (the default maxAge)', () => makeSet({ iat: NOW_S - 86_400 - 60 }), 'invalid_request'],
    ['a SET from the future', () => makeSet({ iat: NOW_S + 600 }), 'invalid_request'],
    ['a SET without events', () => makeSet({ events: {} }), 'invalid_request'],
    ['a CAEP event without a subject', () => makeSet({ events: { [CAEP_EVENTS.sessionRevoked]: { event_timestamp: NOW_S } } }), 'invalid_request'],
    ['a body that is not a JWT', async () => 'hello', 'invalid_request'],
    [
      'an unsigned JWT (alg none)',
      async () =>
        `${Buffer.from('{"alg":"none","typ":"secevent+jwt"}').toString('base64url')}.${Buffer.from(JSON.stringify({ iss: IDP, aud: RECEIVER, iat: NOW_S, jti: 'x', events: { [CAEP_EVENTS.sessionRevoked]: { subject: aliceSubject } } })).toString('base64url')}.`,
      'invalid_key',
    ],
  ];
  for (const [name, make, err] of cases) {
    it(`refuses ${name} with ${err}`, async () => {
      const { store, receiver, records } = setup();
      const r = await deliver(receiver, await make());
      expect(r.status).toBe(400);
      expect(r.headers['Content-Type']).toBe('application/json');
      expect(JSON.parse(r.body)).toEqual({ err, description: expect.any(String) });
      expect(await store.getRevocation('t', 'alice', NOW.getTime())).toBeUndefined();
      expect(records).toMatchObject([{ outcome: 'refused', error: err }]);
    });
  }

  it('refuses a replayed SET (same jti): applied once, audited as a replay', async () => {
    const { receiver, records } = setup();
    const set = await makeSet({ jti: 'once' });
    expect((await deliver(receiver, set)).status).toBe(202);
    const again = await deliver(receiver, set);
    expect(again.status).toBe(400);
    expect(JSON.parse(again.body)).toEqual({ err: 'invalid_request', description: 'SET jti already received' });
    expect(records.map((r) => r.outcome)).toEqual(['applied', 'replayed']);
  });

  it('refuses another content type', async () => {
    const { receiver } = setup();
    const r = await deliver(receiver, await makeSet(), 'application/json');
    expect(errorOf(r.body)).toBe('invalid_request');
  });

  it('refuses a transmitter without the configured Authorization (authentication_failed), compared in constant time', async () => {
    const { store, receiver } = setup({ authorization: 'Bearer stream-secret' });
    const set = await makeSet();
    for (const auth of [undefined, 'Bearer stream-secreT', 'Bearer stream-secret-longer']) {
      const r = await deliver(receiver, set, CT, auth);
      expect(errorOf(r.body)).toBe('authentication_failed');
    }
    expect(await store.getRevocation('t', 'alice', NOW.getTime())).toBeUndefined();
    expect((await deliver(receiver, set, CT, 'Bearer stream-secret')).status).toBe(202);
  });

  it('answers 413 for a body over maxBodyBytes, unread', async () => {
    const { receiver } = setup({ maxBodyBytes: 2048 });
    const r = await deliver(receiver, 'x'.repeat(2049));
    expect(r.status).toBe(413);
  });

  it('answers 503 when the store fails, and a retry of the same SET then succeeds (nothing was claimed half-way)', async () => {
    const real = new MemoryStore();
    let failing = true;
    const flaky = wrapStore(real, (method, call) => (method === 'revokeSubject' && failing ? Promise.reject(new Error('down')) : call()));
    const { receiver, records } = setup({ store: flaky });
    const set = await makeSet({ jti: 'retry-me' });
    const first = await deliver(receiver, set);
    expect(first.status).toBe(503);
    expect(first.headers['Retry-After']).toBeDefined();
    failing = false;
    expect((await deliver(receiver, set)).status).toBe(202);
    expect(await real.getRevocation('t', 'alice', NOW.getTime())).toBeDefined();
    expect(records.map((r) => r.outcome)).toEqual(['failed', 'applied']);
  });

  it('refuses bad options at creation with a UsageError', () => {
    const store = new MemoryStore();
    expect(() => createSetReceiver({ store, issuer: IDP, audience: RECEIVER } as SetReceiverOptions)).toThrow(UsageError);
    expect(() => createSetReceiver({ store, issuer: IDP, audience: RECEIVER, jwksUri: 'http://idp.example/jwks' })).toThrow(/https/);
    expect(() => createSetReceiver({ store, issuer: IDP, audience: RECEIVER, keys: [{ ...idpJwk, d: 'private' }] })).toThrow(UsageError);
    expect(() => createSetReceiver({ store, issuer: IDP, audience: RECEIVER, keys: [idpJwk], algorithms: ['HS256'] })).toThrow(UsageError);
  });
});

describe('SET receiver: push delivery over HTTP', () => {
  it('node handler: 202 for a SET, 400 with the RFC 8935 body, 405 for GET', async () => {
    const { receiver, store } = setup();
    const server = createServer(receiver.node);
    await request(server)
      .post('/events')
      .set('content-type', CT)
      .send(await makeSet())
      .expect(202, '');
    expect(await store.getRevocation('t', 'alice', NOW.getTime())).toBeDefined();
    const bad = await request(server)
      .post('/events')
      .set('content-type', CT)
      .send(await makeSet({ aud: 'x' }));
    expect(bad.status).toBe(400);
    expect(bad.body).toEqual({ err: 'invalid_audience', description: expect.any(String) });
    await request(server).get('/events').expect(405).expect('allow', 'POST');
  });

  it('node handler: answers 413 for an oversized body, declared or streamed, without reading it all', async () => {
    const { receiver } = setup({ maxBodyBytes: 4096 });
    const server = createServer(receiver.node);
    const declared = await request(server).post('/events').set('content-type', CT).send('x'.repeat(10_000));
    expect(declared.status).toBe(413);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    // Chunked: no Content-Length, so the limit is enforced while reading.
    const res = await fetch(`http://127.0.0.1:${port}/events`, {
      method: 'POST',
      headers: { 'content-type': CT },
      body: new ReadableStream({
        start(c) {
          c.enqueue(new Uint8Array(3000).fill(120));
          c.enqueue(new Uint8Array(3000).fill(120));
          c.close();
        },
      }),
      duplex: 'half',
    } as RequestInit).catch(() => undefined);
    // The server answers 413 and closes; a client still writing may see the reset instead.
    if (res) expect(res.status).toBe(413);
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('node handler mounted in Express after a text body parser', async () => {
    const { receiver, store } = setup();
    const app = express();
    app.post('/events', express.text({ type: CT }), receiver.node);
    await request(app)
      .post('/events')
      .set('content-type', CT)
      .send(await makeSet())
      .expect(202);
    expect(await store.getRevocation('t', 'alice', NOW.getTime())).toBeDefined();
  });

  it('fetch handler: 202, 400, 413 and 405', async () => {
    const { receiver, store } = setup({ maxBodyBytes: 4096 });
    const post = (body: string, type = CT) => receiver.fetch(new Request('https://api.example/events', { method: 'POST', headers: { 'content-type': type }, body }));
    expect((await post(await makeSet())).status).toBe(202);
    expect(await store.getRevocation('t', 'alice', NOW.getTime())).toBeDefined();
    const forged = await post(await makeSet({ key: rogueKey }));
    expect(forged.status).toBe(400);
    expect(await forged.json()).toMatchObject({ err: 'invalid_key' });
    expect((await post('x'.repeat(5000))).status).toBe(413);
    expect((await receiver.fetch(new Request('https://api.example/events'))).status).toBe(405);
  });
});
