import { describe, expect, it } from 'vitest';
import express, { type ErrorRequestHandler } from 'express';
import request from 'supertest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tokenGuard, requireScopes } from '../../src/adapters/express.js';
import { AccessDeniedError, MemoryStore, createGuard, type DecisionEvent, type TokenGuardPolicy } from '../../src/index.js';
import { basePolicy, signToken, storeApiKey, NOW_S } from '../helpers/tokens.js';

async function makeApp(over: Partial<TokenGuardPolicy> & { errors?: 'respond' | 'throw' } = {}) {
  const store = (over.store as MemoryStore | undefined) ?? new MemoryStore();
  const events: DecisionEvent[] = [];
  const guardMw = tokenGuard({
    ...(await basePolicy({
      store,
      onDecision: (e) => {
        events.push(e);
      },
    })),
    ...over,
  });
  const app = express();
  app.use(guardMw);
  app.get('/health', (_req, res) => {
    res.json({ ok: true });
  });
  app.get('/orders/:id', (req, res) => {
    res.json({ id: req.params.id, subject: req.auth?.token?.subject, reason: req.auth?.decision.reason });
  });
  app.post('/orders', (req, res) => {
    res.status(201).json({ by: req.auth?.token?.subject });
  });
  app.get('/reports/:id', requireScopes('reports:export'), (_req, res) => {
    res.json({ exported: true });
  });
  app.get('/admin/users', (_req, res) => {
    res.json({ users: [] });
  });
  app.get('/boom/:id', () => {
    throw new Error('handler failed');
  });
  return { app, store, events, guard: guardMw.guard };
}

const bearer = (t: string) => ({ Authorization: `Bearer ${t}` });

describe('Express adapter', () => {
  it('lets a valid request through with req.auth set', async () => {
    const { app } = await makeApp();
    const res = await request(app)
      .get('/orders/7')
      .set(bearer(await signToken({ scope: 'orders:read' })));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ id: '7', subject: 'alice', reason: 'ok' });
  });

  it('answers a refusal with status, WWW-Authenticate and a bare problem+json body', async () => {
    const { app } = await makeApp();
    const token = await signToken({ scope: 'orders:read' }, { exp: NOW_S - 10, iat: NOW_S - 100 });
    const res = await request(app).get('/orders/7').set(bearer(token));
    expect(res.status).toBe(401);
    expect(res.headers['content-type']).toBe('application/problem+json');
    expect(res.headers['www-authenticate']).toBe('Bearer error="invalid_token", error_description="Access token expired"');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toEqual({ type: 'urn:token-guard:problem:token.expired', title: 'Access token expired', status: 401, reason: 'token.expired' });
    expect(res.text).not.toContain(token.split('.')[1]);
  });

  it.each([
    ['no token', {}, '/orders/1', 401, 'token.missing'],
    ['a garbage token', { Authorization: 'Bearer abc.def.ghi' }, '/orders/1', 401, 'token.malformed'],
    ['two credentials in one header', { Authorization: 'Bearer a, Bearer b' }, '/orders/1', 400, 'request.malformed'],
    ['a dot-dot path', {}, '/orders/../admin/users', 400, 'request.malformed'],
  ])('refuses %s', async (_name, headers, path, status, reason) => {
    const { app } = await makeApp();
    const res = await request(app).get(path).set(headers);
    expect([res.status, res.body.reason]).toEqual([status, reason]);
  });

  it('sees two Authorization headers that Node would fold into the first', async () => {
    const { app } = await makeApp();
    const token = await signToken({ scope: 'orders:read' });
    const server = http.createServer(app).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const { port } = server.address() as AddressInfo;
      const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const r = http.request({ host: '127.0.0.1', port, path: '/orders/1', method: 'GET' }, (m) => {
          let body = '';
          m.on('data', (c: Buffer) => {
            body += c.toString();
          });
          m.on('end', () => resolve({ status: m.statusCode ?? 0, body }));
        });
        r.setHeader('Authorization', [`Bearer ${token}`, 'Bearer other']);
        r.on('error', reject);
        r.end();
      });
      expect(res.status).toBe(400);
      expect(JSON.parse(res.body).reason).toBe('request.malformed');
    } finally {
      server.close();
    }
  });

  it('answers the same request the same way through Express as the core decides', async () => {
    const { app, guard } = await makeApp();
    const token = await signToken({ scope: 'nothing' });
    const res = await request(app).get('/admin/users').set(bearer(token));
    const d = await guard.evaluate({ method: 'GET', path: '/admin/users', headers: { authorization: `Bearer ${token}` }, remoteAddress: '::ffff:127.0.0.1' });
    expect([res.status, res.body.reason]).toEqual([d.status, d.reason]);
  });

  it('enforces requireScopes per route with an insufficient_scope challenge', async () => {
    const { app, events } = await makeApp();
    const res = await request(app)
      .get('/reports/1')
      .set(bearer(await signToken({ scope: 'reports:read' })));
    expect(res.status).toBe(403);
    expect(res.headers['www-authenticate']).toBe('Bearer error="insufficient_scope", scope="reports:export"');
    expect(events.at(-1)).toMatchObject({ source: 'requireScopes', reason: 'scope.insufficient' });
    const ok = await request(app)
      .get('/reports/1')
      .set(bearer(await signToken({ scope: 'reports:read reports:export' })));
    expect(ok.status).toBe(200);
  });

  it('refuses requireScopes without a guard mounted, instead of allowing', async () => {
    const app = express();
    app.get('/x', requireScopes('a'), (_req, res) => {
      res.send('reached');
    });
    const res = await request(app).get('/x');
    expect(res.status).toBe(500);
    expect(res.text).not.toContain('reached');
  });

  it('rejects bad requireScopes arguments at start-up', () => {
    expect(() => requireScopes()).toThrow(TypeError);
    expect(() => requireScopes('has space')).toThrow(TypeError);
    expect(() => requireScopes({ any: [] })).toThrow(TypeError);
  });

  it('lets report-only traffic through with the refusal on req.auth', async () => {
    const { app, events } = await makeApp({ mode: 'report-only' });
    const res = await request(app).get('/orders/7');
    expect(res.status).toBe(200);
    expect(res.body.reason).toBe('token.missing');
    expect(events[0]).toMatchObject({ passed: true, reason: 'token.missing', mode: 'report-only' });
  });

  it('matches rules on the full path when mounted under a prefix', async () => {
    const store = new MemoryStore();
    const mw = tokenGuard(await basePolicy({ store, rules: [{ path: '/api/admin/**', scopes: ['admin'] }], unmatched: 'authenticate' }));
    const app = express();
    const api = express.Router();
    api.get('/admin/x', (_req, res) => {
      res.send('admin');
    });
    app.use('/api', mw, api);
    const res = await request(app)
      .get('/api/admin/x')
      .set(bearer(await signToken({ scope: 'orders:read' })));
    expect([res.status, res.body.reason]).toEqual([403, 'scope.insufficient']);
  });

  it('hands an AccessDeniedError to the app error handler with errors: "throw"', async () => {
    const { app } = await makeApp({ errors: 'throw' });
    const seen: unknown[] = [];
    const handler: ErrorRequestHandler = (err: AccessDeniedError, _req, res, _next) => {
      seen.push(err);
      res.status(err.status).set(err.headers).json({ custom: err.code });
    };
    app.use(handler);
    const res = await request(app).get('/orders/1');
    expect(res.status).toBe(401);
    expect(res.body).toEqual({ custom: 'token.missing' });
    expect(res.headers['www-authenticate']).toBe('Bearer');
    expect(seen[0]).toBeInstanceOf(AccessDeniedError);
    expect(seen[0]).toMatchObject({
      name: 'AccessDeniedError',
      code: 'token.missing',
      reason: 'token.missing',
      status: 401,
      expose: true,
      headers: { 'WWW-Authenticate': 'Bearer' },
    });
  });

  it('does not swallow or rewrite an error thrown by a handler after an allow', async () => {
    const { app } = await makeApp({ unmatched: 'authenticate' });
    app.use(((err: Error, _req, res, _next) => {
      res.status(418).json({ message: err.message });
    }) as ErrorRequestHandler);
    const res = await request(app)
      .get('/boom/1')
      .set(bearer(await signToken({})));
    expect([res.status, res.body.message]).toEqual([418, 'handler failed']);
  });

  it('answers 503 when the store fails, never letting the request through', async () => {
    const store = new MemoryStore();
    store.getRevocation = () => {
      throw new Error('down');
    };
    const { app } = await makeApp({ store });
    const res = await request(app)
      .get('/orders/1')
      .set(bearer(await signToken({ scope: 'orders:read' })));
    expect([res.status, res.body.reason]).toEqual([503, 'store.unavailable']);
    expect(res.text).not.toContain('down');
  });

  it('sets RateLimit headers on allowed responses and 429 with Retry-After past the limit', async () => {
    const { app } = await makeApp({ rateLimit: { limit: 2, window: '1m' } });
    const token = await signToken({ scope: 'orders:read' });
    const first = await request(app).get('/orders/1').set(bearer(token));
    expect([first.status, first.headers['ratelimit-limit'], first.headers['ratelimit-remaining']]).toEqual([200, '2', '1']);
    await request(app).get('/orders/1').set(bearer(token));
    const third = await request(app).get('/orders/1').set(bearer(token));
    expect([third.status, third.body.reason, third.headers['retry-after'], third.headers['ratelimit-remaining']]).toEqual([429, 'rate.limited', '30', '0']);
  });

  it('accepts an API key and an existing guard', async () => {
    const store = new MemoryStore();
    const { key } = await storeApiKey(store);
    const guard = createGuard(await basePolicy({ store }));
    const app = express();
    app.use(tokenGuard(guard));
    app.get('/orders/:id', (req, res) => {
      res.json({ kind: req.auth?.token?.kind });
    });
    const res = await request(app).get('/orders/1').set(bearer(key));
    expect(res.body).toEqual({ kind: 'api_key' });
  });

  it('throws a PolicyError at start-up for a bad policy and a TypeError for a bad errors option', async () => {
    expect(() => tokenGuard({ apiKeys: { prefix: 'tg_' }, rules: [{ path: '/x', scope: ['a'] }] } as unknown as TokenGuardPolicy)).toThrow(/rules\[0\]\.scope: unknown key/);
    expect(() => tokenGuard({ apiKeys: { prefix: 'tg_' }, errors: 'log' } as unknown as TokenGuardPolicy)).toThrow(TypeError);
  });
});
