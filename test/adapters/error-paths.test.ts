// Error paths in all four adapters: handler errors stay the framework's, and errors: 'throw' reaches
// each framework's error handler (custom and default) with code, status and headers intact.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ErrorRequestHandler } from 'express';
import type Koa from 'koa';
import { AccessDeniedError } from '../../src/index.js';
import { NOW } from '../helpers/tokens.js';
import { createWorld, OUTSIDE, type Variant, type World } from '../scenarios/world.js';
import { expressApp, fastifyApp, fetchApp, HandlerFailure, koaApp, serve, supertestSend, type AppOptions, type WireResponse } from '../scenarios/harness.js';

type Framework = 'Express' | 'Koa' | 'Fastify' | 'fetch';
const FRAMEWORKS: Framework[] = ['Express', 'Koa', 'Fastify', 'fetch'];

interface HasStatus {
  name?: string;
  status?: number;
  headers?: Record<string, string>;
}

/** A running app plus every error its error path saw. */
interface Rig {
  get(path: string, headers?: Record<string, string>): Promise<WireResponse>;
  caught: unknown[];
  close(): Promise<void>;
}

let world: World;
const open: Rig[] = [];

/**
 * Builds the framework's test app. `custom`: the app formats errors itself (status and headers from the
 * error, JSON body naming the error and the auth reason). Otherwise the framework's default handler answers.
 */
async function rig(fw: Framework, options: AppOptions & { custom: boolean; variant?: Variant }): Promise<Rig> {
  const caught: unknown[] = [];
  const variant = options.variant ?? 'main';
  const format = (err: unknown, reason: string | undefined) => ({
    status: (err as HasStatus).status ?? 500,
    headers: (err as HasStatus).headers ?? {},
    body: { name: (err as HasStatus).name, reason },
  });
  let r: Rig;
  if (fw === 'Express') {
    const app = expressApp(world, variant, options);
    const handler: ErrorRequestHandler = (err, req, res, _next) => {
      caught.push(err);
      const f = format(err, req.auth?.decision.reason);
      res.status(f.status).set(f.headers).json(f.body);
    };
    if (options.custom) app.use(handler);
    const s = await serve(world, app);
    r = { get: (path, headers = {}) => supertestSend(s.base, { method: 'GET', path, headers }), caught, close: s.close };
  } else if (fw === 'Koa') {
    const outer: Koa.Middleware = async (ctx, next) => {
      try {
        await next();
      } catch (err) {
        caught.push(err);
        const f = format(err, ctx.state.auth?.decision.reason);
        ctx.status = f.status;
        ctx.set(f.headers);
        ctx.body = f.body;
      }
    };
    const app = koaApp(world, variant, { ...options, ...(options.custom && { koaOuter: outer }) });
    // Koa's own error path: ctx.onerror answers, and the app emits 'error'.
    if (!options.custom) app.on('error', (err: unknown) => caught.push(err));
    const s = await serve(world, app.callback());
    r = { get: (path, headers = {}) => supertestSend(s.base, { method: 'GET', path, headers }), caught, close: s.close };
  } else if (fw === 'Fastify') {
    const app = fastifyApp(world, variant, options);
    if (options.custom) {
      app.setErrorHandler((err, req, reply) => {
        caught.push(err);
        const f = format(err, req.auth?.decision.reason);
        return reply.code(f.status).headers(f.headers).send(f.body);
      });
    } else {
      app.addHook('onError', async (_req, _reply, err) => {
        caught.push(err);
      });
    }
    await app.ready();
    r = {
      get: async (path, headers = {}) => {
        const res = await app.inject({ method: 'GET', url: path, headers, remoteAddress: OUTSIDE });
        return { status: res.statusCode, headers: res.headers as Record<string, string>, body: res.body };
      },
      caught,
      close: () => app.close(),
    };
  } else {
    const app = fetchApp(world, variant, options);
    // What a fetch framework's onError (Hono, a Node bridge) does; without it the rejection is the answer.
    const handle = async (request: Request): Promise<Response> => {
      try {
        return await app(request);
      } catch (err) {
        caught.push(err);
        if (!options.custom) throw err;
        const f = format(err, undefined);
        return Response.json(f.body, { status: f.status, headers: f.headers });
      }
    };
    r = {
      get: async (path, headers = {}) => {
        const res = await handle(new Request(`http://api.example.test${path}`, { headers }));
        const out: Record<string, string> = {};
        res.headers.forEach((v, k) => (out[k] = v));
        return { status: res.status, headers: out, body: await res.text() };
      },
      caught,
      close: async () => undefined,
    };
  }
  open.push(r);
  return r;
}

beforeAll(async () => {
  world = await createWorld();
});
beforeEach(() => {
  world.now = NOW;
  world.peer = OUTSIDE;
});
afterAll(async () => {
  for (const r of open) await r.close();
});

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe('a handler that throws after the guard allowed the request', () => {
  it.each(FRAMEWORKS.filter((f) => f !== 'fetch'))("%s: the very error reaches the app's error handler, with auth still set", async (fw) => {
    const app = await rig(fw, { custom: true });
    const res = await app.get('/boom', bearer(world.fixtures.read));
    expect(res.status).toBe(500);
    expect(JSON.parse(res.body)).toEqual({ name: 'HandlerFailure', reason: 'ok' });
    expect(app.caught).toHaveLength(1);
    expect(app.caught[0]).toBeInstanceOf(HandlerFailure);
    expect(app.caught[0]).toMatchObject({ message: 'boom' });
  });

  it.each(FRAMEWORKS.filter((f) => f !== 'fetch'))("%s: the framework's default handler answers 500, not a token-guard problem", async (fw) => {
    const app = await rig(fw, { custom: false });
    const res = await app.get('/boom', bearer(world.fixtures.read));
    expect(res.status).toBe(500);
    expect(res.headers['content-type']).not.toMatch(/problem\+json/);
    expect(res.headers['www-authenticate']).toBeUndefined();
    // Express's final handler reports to no listener; Koa and Fastify hand the error to theirs.
    if (fw !== 'Express') expect(app.caught[0]).toBeInstanceOf(HandlerFailure);
  });

  it("fetch: the handler's rejection comes out unchanged", async () => {
    const app = await rig('fetch', { custom: false });
    await expect(app.get('/boom', bearer(world.fixtures.read))).rejects.toBeInstanceOf(HandlerFailure);
    expect(app.caught).toHaveLength(1);
  });
});

describe("errors: 'throw'", () => {
  it.each(FRAMEWORKS)('%s: a refusal reaches the error handler as an AccessDeniedError with code, status and headers', async (fw) => {
    const app = await rig(fw, { custom: true, errors: 'throw' });
    const res = await app.get('/orders/1');
    expect(app.caught).toHaveLength(1);
    expect(app.caught[0]).toBeInstanceOf(AccessDeniedError);
    expect(app.caught[0]).toMatchObject({
      name: 'AccessDeniedError',
      code: 'token.missing',
      reason: 'token.missing',
      status: 401,
      expose: true,
      headers: { 'WWW-Authenticate': 'Bearer' },
    });
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer');
    expect(JSON.parse(res.body)).toMatchObject({ name: 'AccessDeniedError' });
  });

  it.each(FRAMEWORKS)('%s: requireScopes throws its refusal the same way', async (fw) => {
    const app = await rig(fw, { custom: true, errors: 'throw' });
    const res = await app.get('/things/1', bearer(world.fixtures.read));
    expect(app.caught[0]).toBeInstanceOf(AccessDeniedError);
    expect(app.caught[0]).toMatchObject({ code: 'scope.insufficient', status: 403 });
    expect(res.status).toBe(403);
    expect(res.headers['www-authenticate']).toMatch(/error="insufficient_scope", scope="things:read"/);
  });

  it.each(FRAMEWORKS)('%s: a store failure is thrown as a 503', async (fw) => {
    const app = await rig(fw, { custom: true, errors: 'throw', variant: 'broken-store' });
    const res = await app.get('/orders/1', bearer(world.fixtures.apiKey));
    expect(app.caught[0]).toMatchObject({ code: 'store.unavailable', status: 503 });
    expect(res.status).toBe(503);
  });

  it.each(FRAMEWORKS.filter((f) => f !== 'fetch'))("%s: the framework's default error handler answers with the status and WWW-Authenticate", async (fw) => {
    const app = await rig(fw, { custom: false, errors: 'throw' });
    const res = await app.get('/orders/1', bearer('not-a-jwt'));
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer error="invalid_token", error_description="Malformed access token"');
    if (fw !== 'Express') expect(app.caught[0]).toMatchObject({ code: 'token.malformed' });
  });

  it('fetch: without an error handler the promise rejects with the AccessDeniedError', async () => {
    const app = await rig('fetch', { custom: false, errors: 'throw' });
    await expect(app.get('/orders/1')).rejects.toMatchObject({ code: 'token.missing', status: 401, headers: { 'WWW-Authenticate': 'Bearer' } });
  });
});
