// One small app per framework (the same routes in each) and a transport to send it scenario requests.
import http, { type RequestListener } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import express from 'express';
import Koa from 'koa';
import Router from '@koa/router';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import request from 'supertest';
import * as expressAdapter from '../../src/adapters/express.js';
import * as koaAdapter from '../../src/adapters/koa.js';
import * as fastifyAdapter from '../../src/adapters/fastify.js';
import * as fetchAdapter from '../../src/adapters/fetch.js';
import type { Variant, World } from './world.js';

/** A request as the client puts it on the wire. An array header value is sent once per value. */
export interface WireRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[]>;
}

/** The answer, with header names in lower case. */
export interface WireResponse {
  status: number;
  headers: Record<string, string | undefined>;
  body: string;
}

/** A framework's apps behind one transport. */
export interface Harness {
  /** Whether the client side parses the target as a WHATWG URL before the app sees it (see ScenarioCase.whatwg). */
  whatwg: boolean;
  /** Whether the app routes case-sensitively, so the guard reads case too (see ScenarioCase.cased); `'mixed'` where the guard cannot see it (ScenarioCase.mixedCase). */
  caseSensitive: boolean | 'mixed';
  send(variant: Variant, req: WireRequest): Promise<WireResponse>;
  close(): Promise<void>;
}

/** Builds a harness for a world. */
export type HarnessFactory = (world: World) => Promise<Harness>;

/** The error every app's `/boom` route throws after the guard let the request in. */
export class HandlerFailure extends Error {
  override name = 'HandlerFailure';
}

/**
 * Makes the socket report the world's peer address, as if the client connected from there (or over a
 * unix socket when it is undefined). Test-only: the adapters read `socket.remoteAddress` unchanged.
 */
export function setPeer(socket: Socket | undefined, peer: string | undefined): void {
  if (socket) Object.defineProperty(socket, 'remoteAddress', { value: peer, configurable: true });
}

function withPeer(world: World, listener: RequestListener): RequestListener {
  return (req, res) => {
    setPeer(req.socket, world.peer);
    listener(req, res);
  };
}

function flatten(headers: Record<string, string | string[] | number | undefined>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(headers)) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v === undefined ? undefined : String(v);
  return out;
}

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function close(server: http.Server): Promise<void> {
  return new Promise((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
}

/** Serves a Node listener on a free loopback port, with the world's peer address on every socket. */
export async function serve(world: World, listener: RequestListener): Promise<{ base: string; close: () => Promise<void> }> {
  const server = http.createServer(withPeer(world, listener));
  return { base: await listen(server), close: () => close(server) };
}

/** Sends over a real socket with supertest; the target goes out verbatim (superagent keeps dot segments). */
export async function supertestSend(base: string, req: WireRequest): Promise<WireResponse> {
  const agent = request(base);
  const test =
    req.method === 'POST' ? agent.post(req.path) : req.method === 'DELETE' ? agent.delete(req.path) : req.method === 'OPTIONS' ? agent.options(req.path) : agent.get(req.path);
  const res = await test
    .set(req.headers)
    .buffer(true)
    .parse((r, done) => {
      let text = '';
      r.setEncoding('utf8');
      r.on('data', (chunk: string) => (text += chunk));
      r.on('end', () => done(null, text));
    });
  return { status: res.status, headers: flatten(res.headers as Record<string, string>), body: res.body as string };
}

/** Lazily builds one app per variant and serves each on its own port. */
function nodeHarness(build: (variant: Variant) => RequestListener, world: World, caseSensitive: boolean | 'mixed' = false): Harness {
  const servers = new Map<Variant, Promise<{ base: string; close: () => Promise<void> }>>();
  const server = (variant: Variant) => {
    let s = servers.get(variant);
    if (!s) servers.set(variant, (s = serve(world, build(variant))));
    return s;
  };
  return {
    whatwg: false,
    caseSensitive,
    send: async (variant, req) => supertestSend((await server(variant)).base, req),
    close: async () => {
      for (const s of servers.values()) await (await s).close();
    },
  };
}

/** How the test apps differ from one test to the next. */
export interface AppOptions {
  errors?: 'respond' | 'throw';
  /** Koa only: middleware placed before the guard (an error-catching one, typically). */
  koaOuter?: Koa.Middleware;
}

/** Express 5: the guard in front, a requireScopes route, a throwing route, a catch-all echo. */
export function expressApp(world: World, variant: Variant, options: AppOptions = {}): express.Express {
  const app = express();
  app.use(expressAdapter.tokenGuard(world.policy(variant), { errors: options.errors }));
  const echo: express.RequestHandler = (req, res) => {
    res.json({ reason: req.auth?.decision.reason ?? null });
  };
  app.get('/things/:id', expressAdapter.requireScopes('things:read'), echo);
  app.all('/boom', () => {
    throw new HandlerFailure('boom');
  });
  app.use(echo);
  return app;
}

/** Koa 3 + @koa/router: the same routes. */
export function koaApp(world: World, variant: Variant, options: AppOptions = {}): Koa {
  const app = new Koa();
  app.silent = true;
  if (options.koaOuter) app.use(options.koaOuter);
  app.use(koaAdapter.tokenGuard(world.policy(variant), { errors: options.errors }));
  const echo: Koa.Middleware = (ctx) => {
    ctx.body = { reason: ctx.state.auth?.decision.reason ?? null };
  };
  const router = new Router();
  router.get('/things/:id', koaAdapter.requireScopes('things:read'), echo);
  router.all('/boom', () => {
    throw new HandlerFailure('boom');
  });
  app.use(router.routes());
  app.use(echo);
  return app;
}

/** Fastify 5: the same routes; a test hook ahead of the plugin sets the peer address for inject and sockets alike. */
export function fastifyApp(world: World, variant: Variant, options: AppOptions = {}): FastifyInstance {
  const app = Fastify();
  app.addHook('onRequest', async (req) => {
    setPeer(req.raw.socket, world.peer);
  });
  void app.register(fastifyAdapter.tokenGuard, { ...world.policy(variant), ...(options.errors && { errors: options.errors }) });
  const echo = async (req: FastifyRequest) => ({ reason: req.auth?.decision.reason ?? null });
  app.get('/things/:id', { preHandler: fastifyAdapter.requireScopes('things:read') }, echo);
  app.all('/boom', async () => {
    throw new HandlerFailure('boom');
  });
  app.all('/*', echo);
  return app;
}

/** The fetch adapter in a plain Request → Response app, copying the decision's headers as its docs say. */
export function fetchApp(world: World, variant: Variant, options: AppOptions = {}): (request: Request) => Promise<Response> {
  const guard = fetchAdapter.guardFetch(world.policy(variant), { errors: options.errors });
  const things = fetchAdapter.requireScopes('things:read');
  return async (request) => {
    const result = await guard(request, { remoteAddress: world.peer });
    if (result instanceof Response) return result;
    let passed = result;
    const path = new URL(request.url).pathname;
    if (request.method === 'GET' && /^\/things\/[^/]+$/.test(path)) {
      const scoped = things(request);
      if (scoped instanceof Response) return scoped;
      passed = scoped;
    }
    if (path === '/boom') throw new HandlerFailure('boom');
    return Response.json({ reason: passed.auth.decision.reason }, { headers: passed.headers });
  };
}

/** Express over real sockets (supertest). */
export const expressHarness: HarnessFactory = async (world) => nodeHarness((v) => expressApp(world, v), world);

/** Koa over real sockets (supertest). */
// The guard cannot see @koa/router's `sensitive`: public rules read case, restricting rules match any.
export const koaHarness: HarnessFactory = async (world) => nodeHarness((v) => koaApp(world, v).callback(), world, 'mixed');

/** Fastify through `inject` (light-my-request: no socket, the target parsed as a URL). */
export const fastifyInjectHarness: HarnessFactory = async (world) => {
  const apps = new Map<Variant, FastifyInstance>();
  const app = async (variant: Variant) => {
    let a = apps.get(variant);
    if (!a) {
      a = fastifyApp(world, variant);
      apps.set(variant, a);
      await a.ready();
    }
    return a;
  };
  return {
    whatwg: true,
    caseSensitive: true,
    send: async (variant, req) => {
      const res = await (await app(variant)).inject({
        method: req.method as 'GET',
        url: req.path,
        headers: req.headers,
        ...(world.peer !== undefined && { remoteAddress: world.peer }),
      });
      return { status: res.statusCode, headers: flatten(res.headers), body: res.body };
    },
    close: async () => {
      for (const a of apps.values()) await a.close();
    },
  };
};

/** Fastify listening on a real port (supertest), targets sent verbatim. */
export const fastifyListenHarness: HarnessFactory = async (world) => {
  const apps = new Map<Variant, Promise<{ app: FastifyInstance; base: string }>>();
  const serve = (variant: Variant) => {
    let s = apps.get(variant);
    if (!s) {
      s = (async () => {
        const app = fastifyApp(world, variant);
        const base = await app.listen({ port: 0, host: '127.0.0.1' });
        return { app, base };
      })();
      apps.set(variant, s);
    }
    return s;
  };
  return {
    whatwg: false,
    caseSensitive: true,
    send: async (variant, req) => supertestSend((await serve(variant)).base, req),
    close: async () => {
      for (const s of apps.values()) await (await s).app.close();
    },
  };
};

/** The fetch adapter called with web-standard Requests (the URL parsed by `new Request`). */
export const fetchHarness: HarnessFactory = async (world) => {
  const apps = new Map<Variant, (request: Request) => Promise<Response>>();
  return {
    whatwg: true,
    caseSensitive: true,
    send: async (variant, req) => {
      let app = apps.get(variant);
      if (!app) apps.set(variant, (app = fetchApp(world, variant)));
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers)) for (const v of [value].flat()) headers.append(name, v);
      const res = await app(new Request(`http://api.example.test${req.path}`, { method: req.method, headers }));
      const out: Record<string, string> = {};
      res.headers.forEach((v, k) => (out[k] = v));
      return { status: res.status, headers: out, body: await res.text() };
    },
    close: async () => undefined,
  };
};
