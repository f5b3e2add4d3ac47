// The adapters' hot path: no property added to a framework's request (Express gives every request its own
// hidden class, so each one costs a map copy and slow reads), no WeakMap write per Express request, and a decision that needed no store call
// continues in the same tick (no microtask). Behaviour stays what the rest of the suite pins.
import { inspect } from 'node:util';
import { describe, expect, it, vi } from 'vitest';
import express from 'express';
import request from 'supertest';
import type { Context } from 'koa';
import type { FastifyInstance } from 'fastify';
import * as ex from '../../src/adapters/express.js';
import * as koa from '../../src/adapters/koa.js';
import * as fy from '../../src/adapters/fastify.js';
import { createGuard, type Decision, type Guard, type GuardRequest } from '../../src/index.js';
import { basePolicy, signToken } from '../helpers/tokens.js';

const GUARD_SYMBOL = Symbol.for('token-guard.guard');

/** A real guard whose `decide` answers synchronously with the decision `evaluate` gave for the same request. */
async function syncGuard(probe: GuardRequest): Promise<{ guard: Guard; decision: Decision }> {
  const real = createGuard(await basePolicy());
  const decision = await real.evaluate(probe);
  return { guard: { ...real, decide: () => decision }, decision };
}

const probe = async (scope: string): Promise<GuardRequest> => ({
  method: 'GET',
  path: '/orders/1',
  headers: { authorization: `Bearer ${await signToken({ scope })}` },
  remoteAddress: '127.0.0.1',
});

/** A bare Node-like request, as the adapters read it. */
function nodeRequest(r: GuardRequest) {
  return {
    method: r.method,
    url: r.path,
    originalUrl: r.path,
    headers: r.headers,
    rawHeaders: ['Authorization', r.headers['authorization']],
    socket: { remoteAddress: r.remoteAddress },
  };
}

/** An Express app whose responses all get one `res.locals` object (an app bug the adapter must survive). */
function appSharingLocals(): express.Express {
  const shared = {};
  const app = express();
  app.use((_req, res, next) => {
    res.locals = shared;
    next();
  });
  return app;
}

describe('Express', () => {
  it('sets req.auth without adding an own property to req', async () => {
    const app = express();
    app.use(ex.tokenGuard(await basePolicy()));
    app.get('/orders/:id', (req, res) => {
      res.json({
        subject: req.auth?.token?.subject,
        own: Object.getOwnPropertyNames(req).includes('auth'),
        guardSymbol: Object.getOwnPropertySymbols(req).includes(GUARD_SYMBOL),
      });
    });
    const res = await request(app)
      .get('/orders/1')
      .set('Authorization', `Bearer ${await signToken({ scope: 'orders:read' })}`);
    expect(res.body).toEqual({ subject: 'alice', own: false, guardSymbol: false });
  });

  it('reads back what a handler assigns to req.auth, per request', async () => {
    const app = express();
    app.use(ex.tokenGuard(await basePolicy()));
    app.get(
      '/orders/:id',
      (req, _res, next) => {
        req.auth = { decision: req.auth!.decision, token: { ...req.auth!.token!, subject: `edited-${req.params.id}` } };
        next();
      },
      (req, res) => res.json({ subject: req.auth?.token?.subject }),
    );
    const token = await signToken({ scope: 'orders:read' });
    const [a, b] = await Promise.all([1, 2].map((id) => request(app).get(`/orders/${id}`).set('Authorization', `Bearer ${token}`)));
    expect([a?.body, b?.body]).toEqual([{ subject: 'edited-1' }, { subject: 'edited-2' }]);
  });

  // The state lives in res.locals under a symbol (no WeakMap write per request): invisible to what apps read there,
  // kept through what apps do to res.locals, and never read by a request it does not belong to.
  describe('keeps its state in res.locals', () => {
    it('out of sight of templates, Object.keys, JSON and logs, with no WeakMap entry for the request', async () => {
      const app = express();
      app.use(ex.tokenGuard(await basePolicy()));
      const token = `Bearer ${await signToken({ scope: 'orders:read' })}`;
      const requests: unknown[] = [];
      app.get('/orders/:id', (req, res) => {
        requests.push(req);
        res.json({
          subject: req.auth?.token?.subject,
          keys: Object.keys(res.locals),
          json: JSON.stringify(res.locals),
          logged: inspect(res.locals, { breakLength: Number.POSITIVE_INFINITY }),
        });
      });
      const set = vi.spyOn(WeakMap.prototype, 'set');
      try {
        const res = await request(app).get('/orders/1').set('Authorization', token);
        // Logged, it is one line: neither the request nor the token's claims.
        expect(res.body).toEqual({ subject: 'alice', keys: [], json: '{}', logged: '[Object: null prototype] { [Symbol(token-guard.state)]: [token-guard request state] }' });
        expect(set.mock.calls.filter(([key]) => requests.includes(key))).toEqual([]);
      } finally {
        set.mockRestore();
      }
    });

    it('through a middleware that replaces res.locals with a copy', async () => {
      const app = express();
      app.use(ex.tokenGuard(await basePolicy()));
      app.use((_req, res, next) => {
        res.locals = { ...res.locals, page: 'orders' };
        next();
      });
      app.get('/orders/:id', ex.requireScopes('orders:read'), (req, res) => res.json({ subject: req.auth?.token?.subject, page: res.locals['page'] }));
      const res = await request(app)
        .get('/orders/1')
        .set('Authorization', `Bearer ${await signToken({ scope: 'orders:read' })}`);
      expect(res.body).toEqual({ subject: 'alice', page: 'orders' });
    });

    it('fails closed when a middleware replaces res.locals with a new object: requireScopes answers 500, req.auth is unset', async () => {
      const app = express();
      app.use(ex.tokenGuard(await basePolicy()));
      const seen: unknown[] = [];
      app.use((req, res, next) => {
        res.locals = {};
        seen.push(req.auth);
        next();
      });
      app.get('/orders/:id', ex.requireScopes('orders:read'), (_req, res) => res.send('reached'));
      const errors: unknown[] = [];
      app.use((err: { code?: string; message?: string }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
        errors.push([err.code, err.message?.includes('res.locals = {…} drops the state')]);
        res.status(500).send('failed');
      });
      const res = await request(app)
        .get('/orders/1')
        .set('Authorization', `Bearer ${await signToken({ scope: 'orders:read' })}`);
      expect([res.status, res.text.includes('reached'), seen]).toEqual([500, false, [undefined]]);
      // The error says what the app did, not only that the guard is missing.
      expect(errors).toEqual([['guard.not_mounted', true]]);
    });

    it('for each of two requests in flight at once through one res.locals the app shares', async () => {
      const app = appSharingLocals();
      app.use(ex.tokenGuard(await basePolicy()));
      // /orders/1 waits in its handler until /orders/2 has been through the guard and its own handler.
      let arrived!: () => void;
      const firstArrived = new Promise<void>((r) => (arrived = r));
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      app.get(
        '/orders/:id',
        async (req, _res, next) => {
          if (req.params.id === '1') {
            arrived();
            await gate;
          } else release();
          next();
        },
        ex.requireScopes('orders:read'),
        (req, res) => res.json({ subject: req.auth?.token?.subject ?? null }),
      );
      const alice = request(app)
        .get('/orders/1')
        .set('Authorization', `Bearer ${await signToken({ scope: 'orders:read' })}`)
        .then((r) => r);
      await firstArrived;
      const bob = await request(app)
        .get('/orders/2')
        .set('Authorization', `Bearer ${await signToken({ scope: 'orders:read' }, { sub: 'bob' })}`);
      const first = await alice;
      expect([first.status, first.body, bob.status, bob.body]).toEqual([200, { subject: 'alice' }, 200, { subject: 'bob' }]);
    });

    it('beside a frozen res.locals (in the WeakMap then), instead of failing every request', async () => {
      const app = express();
      app.use((_req, res, next) => {
        res.locals = Object.freeze({ page: 'orders' });
        next();
      });
      app.use(ex.tokenGuard(await basePolicy()));
      app.get('/orders/:id', ex.requireScopes('orders:read'), (req, res) => res.json({ subject: req.auth?.token?.subject ?? null }));
      const res = await request(app)
        .get('/orders/1')
        .set('Authorization', `Bearer ${await signToken({ scope: 'orders:read' })}`);
      expect([res.status, res.body]).toEqual([200, { subject: 'alice' }]);
    });

    it("for a harness's request with the app's prototype but no req.res", async () => {
      const app = express();
      const guard = ex.tokenGuard(await basePolicy());
      const req = Object.assign(Object.create(app.request) as express.Request, {
        method: 'GET',
        url: '/orders/1',
        originalUrl: '/orders/1',
        headers: { authorization: `Bearer ${await signToken({ scope: 'orders:read' })}` },
        socket: { remoteAddress: '127.0.0.1' },
      });
      const res = { locals: {}, statusCode: 200, setHeader() {}, end() {} } as never as express.Response;
      const errors: unknown[] = [];
      const run = (mw: express.RequestHandler) =>
        new Promise<void>((done) =>
          mw(req, res, (e?: unknown) => {
            if (e) errors.push(e);
            done();
          }),
        );
      await run(guard);
      const subject = req.auth?.token?.subject;
      await run(ex.requireScopes('orders:read'));
      expect([subject, errors]).toEqual(['alice', []]);
    });

    it("never as another request's, when the app shares one res.locals between responses", async () => {
      const app = appSharingLocals();
      // The guard runs on /orders only; /reports has requireScopes without it, so it must answer 500 whatever
      // the shared locals hold from an /orders request before it.
      app.use('/orders', ex.tokenGuard(await basePolicy()));
      app.get('/orders/:id', (_req, res) => res.send('order'));
      app.get('/reports/:id', ex.requireScopes('orders:read'), (req, res) => res.json({ auth: req.auth ?? null }));
      const token = await signToken({ scope: 'orders:read' });
      const order = await request(app).get('/orders/1').set('Authorization', `Bearer ${token}`);
      const report = await request(app).get('/reports/1').set('Authorization', `Bearer ${token}`);
      expect([order.status, report.status]).toEqual([200, 500]);
    });
  });

  it('keeps req.auth after a mounted sub-app that ran the guard hands the request back', async () => {
    const sub = express();
    sub.use(ex.tokenGuard(await basePolicy()));
    const app = express();
    app.use(sub);
    app.get('/orders/:id', (req, res) => res.json({ subject: req.auth?.token?.subject }));
    const res = await request(app)
      .get('/orders/1')
      .set('Authorization', `Bearer ${await signToken({ scope: 'orders:read' })}`);
    expect(res.body).toEqual({ subject: 'alice' });
  });

  // The adapter reads `app` from the request's prototype and calls Node's `headers` getter itself (faster on Express's
  // per-request hidden classes): what it reads must stay what `req.app` and `req.headers` say.
  describe('reads what req.headers and req.app say', () => {
    const who = (req: express.Request, res: express.Response) => res.json({ subject: req.auth?.token?.subject ?? null });

    it('headers a middleware before it replaced, by assignment or as an own property', async () => {
      const bob = await signToken({ scope: 'orders:read' }, { sub: 'bob' });
      for (const replace of [
        (req: express.Request) => {
          req.headers = { ...req.headers, authorization: `Bearer ${bob}` };
        },
        (req: express.Request) => {
          Object.defineProperty(req, 'headers', { value: { ...req.headers, authorization: `Bearer ${bob}` } });
        },
      ]) {
        const app = express();
        app.use((req, _res, next) => {
          replace(req);
          next();
        });
        app.use(ex.tokenGuard(await basePolicy()));
        app.get('/orders/:id', who);
        const res = await request(app)
          .get('/orders/1')
          .set('Authorization', `Bearer ${await signToken({ scope: 'orders:read' })}`);
        expect(res.body).toEqual({ subject: 'bob' });
      }
    });

    it("headers an app's request prototype defines", async () => {
      const carol = await signToken({ scope: 'orders:read' }, { sub: 'carol' });
      const app = express();
      Object.defineProperty(app.request, 'headers', {
        configurable: true,
        get(this: { rawHeaders: string[] }) {
          return { authorization: `Bearer ${carol}` };
        },
      });
      app.use(ex.tokenGuard(await basePolicy()));
      app.get('/orders/:id', who);
      const res = await request(app).get('/orders/1').set('Authorization', 'Bearer not-a-token');
      expect(res.body).toEqual({ subject: 'carol' });
    });

    it('the app of each request when two apps with different letter-case routing share one guard, in turn', async () => {
      const guard = createGuard({
        ...(await basePolicy()),
        rules: [
          { path: '/health', public: true },
          { path: '/**', scopes: ['orders:read'] },
        ],
      });
      const apps = [true, false].map((cased) => {
        const app = express();
        app.set('case sensitive routing', cased);
        app.use(ex.tokenGuard(guard));
        app.get('/health', (_req, res) => res.send('ok'));
        app.get('/HEALTH', (_req, res) => res.send('ok'));
        return app;
      });
      const statuses: number[] = [];
      for (const app of [...apps, ...apps]) statuses.push((await request(app as express.Express).get('/HEALTH')).status);
      // Case-sensitive: /HEALTH is not /health's public rule, so it needs a token. Case-insensitive: it is public.
      expect(statuses).toEqual([401, 200, 401, 200]);
    });

    it('a hand-made request that is no Express request, with its own app and headers', async () => {
      const r = await probe('orders:read');
      const { guard, decision } = await syncGuard(r);
      const cased = express();
      cased.set('case sensitive routing', true);
      const seen: GuardRequest[] = [];
      const spy: Guard = {
        ...guard,
        decide: (req) => {
          seen.push(req);
          return decision;
        },
      };
      const req = { ...nodeRequest(r), app: cased } as never as express.Request;
      ex.tokenGuard(spy)(req, { setHeader() {} } as never, vi.fn());
      expect(seen[0]).toMatchObject({ caseSensitive: true, headers: r.headers });
      // Without Express's router there is no originalUrl: the path is req.url.
      const { originalUrl: _, ...withoutOriginal } = nodeRequest(r);
      ex.tokenGuard(spy)({ ...withoutOriginal, url: '/orders/7?x=1' } as never, { setHeader() {} } as never, vi.fn());
      expect(seen[1]).toMatchObject({ path: '/orders/7?x=1' });
    });
  });

  it('calls next() in the same tick when the decision is synchronous', async () => {
    const r = await probe('orders:read');
    const { guard, decision } = await syncGuard(r);
    const req = nodeRequest(r) as never as express.Request;
    const next = vi.fn();
    ex.tokenGuard(guard)(req, { setHeader() {} } as never, next);
    expect(next).toHaveBeenCalledWith();
    expect(req.auth).toEqual({ token: decision.token, decision });
  });
});

describe('Koa', () => {
  it('goes on to next() in the same tick when the decision is synchronous, adding nothing to ctx', async () => {
    const r = await probe('orders:read');
    const { guard } = await syncGuard(r);
    const ctx = { req: nodeRequest(r), originalUrl: r.path, state: {}, set() {} } as unknown as Context;
    const next = vi.fn(() => Promise.resolve());
    await Promise.race([koa.tokenGuard(guard)(ctx, next), Promise.resolve()]);
    expect(next).toHaveBeenCalledTimes(1);
    expect(ctx.state.auth?.token?.subject).toBe('alice');
    expect(Object.getOwnPropertySymbols(ctx)).not.toContain(GUARD_SYMBOL);
  });

  it('still refuses synchronously decided requests, through the error path with errors: throw', async () => {
    const r = await probe('profile');
    const { guard } = await syncGuard(r);
    const ctx = { req: nodeRequest(r), originalUrl: r.path, state: {}, set() {} } as unknown as Context;
    const next = vi.fn(() => Promise.resolve());
    // Koa runs middleware through koa-compose, which turns a synchronous throw into a rejection.
    expect(() => koa.tokenGuard(guard, { errors: 'throw' })(ctx, next)).toThrow(expect.objectContaining({ code: 'scope.insufficient' }));
    expect(next).not.toHaveBeenCalled();
  });
});

describe('Fastify', () => {
  it('calls the onRequest done() in the same tick when the decision is synchronous', async () => {
    const r = await probe('orders:read');
    const { guard } = await syncGuard(r);
    let hook: ((request: unknown, reply: unknown, done: (err?: Error) => void) => void) | undefined;
    const app = {
      initialConfig: {},
      // The root context's name: the plugin refuses any other context.
      pluginName: 'fastify',
      decorateRequest() {},
      addHook: (_name: string, fn: typeof hook) => {
        hook = fn;
      },
    } as unknown as FastifyInstance;
    await fy.tokenGuard(app, { guard });
    const request = { raw: nodeRequest(r), auth: null } as { raw: unknown; auth: unknown };
    const done = vi.fn();
    hook!(request, { headers() {} }, done);
    expect(done).toHaveBeenCalledWith();
    expect((request.auth as { token?: { subject?: string } }).token?.subject).toBe('alice');
  });
});
