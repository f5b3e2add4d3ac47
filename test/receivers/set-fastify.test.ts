// The SET receiver mounted in Fastify as docs/security-events.md says (a pass-through content-type parser, then
// reply.hijack() and receiver.node on the raw request), next to the token-guard plugin on one MemoryStore; and a
// request stream a body parser already consumed, which the node handler answers instead of waiting for.
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { tokenGuard } from '../../src/adapters/fastify.js';
import { MemoryStore } from '../../src/index.js';
import { createSetReceiver, type SetReceiver } from '../../src/receivers/set.js';
import { accessToken, CT, IDP, idpKey, NOW, NOW_S, API, RECEIVER, securityEvent } from './set-fixtures.js';

const clock = () => NOW;
const apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

/** The documented app: the guard on every route, the events path public, the receiver in its own plugin. */
async function documentedApp(): Promise<FastifyInstance> {
  const { jwk } = await idpKey();
  const store = new MemoryStore();
  const receiver = createSetReceiver({ store, issuer: IDP, audience: RECEIVER, keys: [jwk], clock });
  const app = Fastify();
  apps.push(app);
  await app.register(tokenGuard, {
    jwt: { issuer: IDP, audience: API, algorithms: ['ES256'], keys: [jwk] },
    store,
    clock,
    rules: [
      { path: '/security-events', public: true },
      { path: '/orders/**', scopes: ['read'] },
    ],
  });
  await app.register(async (events) => {
    events.addContentTypeParser(CT, (_request, _payload, done) => done(null));
    events.post('/security-events', (req, reply) => {
      reply.hijack();
      receiver.node(req.raw, reply.raw);
    });
  });
  app.get('/orders/:id', async () => ({ ok: true }));
  return app;
}

/** Settles with the answer, or with 'hung' when none came within a second. */
function orHung<T>(p: Promise<T>): Promise<T | 'hung'> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((resolve) => {
    timer = setTimeout(() => resolve('hung'), 1000);
  });
  return Promise.race([p, hung]).finally(() => clearTimeout(timer));
}

describe('SET receiver in Fastify, as documented', () => {
  it('applies a pushed SET (inject): 202, and the guard then refuses the subject’s token', async () => {
    const app = await documentedApp();
    const token = await accessToken(NOW_S - 60, NOW_S + 3600);
    const orders = () => app.inject({ method: 'GET', url: '/orders/1', headers: { authorization: `Bearer ${token}` } });
    expect((await orders()).statusCode).toBe(200);
    const pushed = await app.inject({ method: 'POST', url: '/security-events', headers: { 'content-type': CT }, payload: await securityEvent() });
    expect(pushed.statusCode).toBe(202);
    const after = await orders();
    expect(after.statusCode).toBe(401);
    expect(after.json()).toMatchObject({ reason: 'token.revoked' });
  });

  it('applies a pushed SET over real HTTP, and answers a forged one 400 with the RFC 8935 body', async () => {
    const app = await documentedApp();
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as { port: number };
    const token = await accessToken(NOW_S - 60, NOW_S + 3600);
    const push = (body: string) => fetch(`http://127.0.0.1:${port}/security-events`, { method: 'POST', headers: { 'content-type': CT }, body });
    const forged = await push(`${(await securityEvent()).slice(0, -4)}AAAA`);
    expect(forged.status).toBe(400);
    expect(await forged.json()).toMatchObject({ err: 'invalid_key' });
    expect((await push(await securityEvent())).status).toBe(202);
    const after = await fetch(`http://127.0.0.1:${port}/orders/1`, { headers: { authorization: `Bearer ${token}` } });
    expect(after.status).toBe(401);
  });
});

describe('SET receiver: a body a parser already consumed is answered at once (500), never waited for', () => {
  const receiverOn = async (): Promise<SetReceiver> => createSetReceiver({ store: new MemoryStore(), issuer: IDP, audience: RECEIVER, keys: [(await idpKey()).jwk], clock });

  it('Fastify with a string parser (the body read into request.body, not the raw request)', async () => {
    const receiver = await receiverOn();
    const app = Fastify();
    apps.push(app);
    app.addContentTypeParser(CT, { parseAs: 'string' }, (_request, body, done) => done(null, body));
    app.post('/security-events', (req, reply) => {
      reply.hijack();
      receiver.node(req.raw, reply.raw);
    });
    const r = await orHung(app.inject({ method: 'POST', url: '/security-events', headers: { 'content-type': CT }, payload: await securityEvent() }));
    expect(r).not.toBe('hung');
    if (r === 'hung') return;
    expect(r.statusCode).toBe(500);
    expect(r.json()).toEqual({ err: 'invalid_request', description: expect.stringContaining('consumed by a body parser') });
  });

  it('Express with a form parser that takes every type (req.body is an object)', async () => {
    const receiver = await receiverOn();
    const app = express();
    app.post('/security-events', express.urlencoded({ type: () => true, extended: false }), receiver.node);
    const r = await orHung(
      request(app)
        .post('/security-events')
        .set('content-type', CT)
        .send(await securityEvent()),
    );
    expect(r).not.toBe('hung');
    if (r === 'hung') return;
    expect(r.status).toBe(500);
    expect(r.body).toMatchObject({ err: 'invalid_request' });
  });

  it('fetch handler given a Request whose body was read', async () => {
    const receiver = await receiverOn();
    const req = new Request('https://api.example/security-events', { method: 'POST', headers: { 'content-type': CT }, body: await securityEvent() });
    await req.text();
    const r = await receiver.fetch(req);
    expect(r.status).toBe(500);
    expect(await r.json()).toMatchObject({ err: 'invalid_request' });
  });
});
