// One server under test in its own process (run.ts pins it to its own core): builds the app named by
// BENCH_SCENARIO, listens on loopback, and reports its own CPU time when the load generator asks.
// Frameworks are imported on demand so that each process loads only what it serves.
import { createHook } from 'node:async_hooks';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ErrorRequestHandler } from 'express';
import type { Decision, Guard, TokenGuardPolicy } from 'token-guard';
import { AUDIENCE, BODY, ISSUER, ROUTE, SCENARIOS, SCOPE, type BenchKeys, type FromServer, type Scenario, type ToServer } from './scenarios.js';

/**
 * One of Node's `process.nextTick` tick objects, kept for the life of the process. Node builds each tick object as a
 * literal with computed keys (`{ [async_id_symbol]: …, [trigger_async_id_symbol]: …, callback, args }`), and the
 * hidden classes that literal passes through live only as long as some tick object does. A full garbage collection
 * made while none is alive, after `nextTick` has gathered type feedback and before it is optimised, frees them: the
 * next tick object gets new ones, the literal's inline caches turn megamorphic, and from then on every `nextTick` in
 * the process builds its object in V8's runtime (about 2 µs more per Fastify request). Whether a process had such a
 * collection depends on its start-up (a plugin registered, a guard compiled) and the collector's timing, not on the
 * requests it serves: servers measured in the two states differed by more than a guard costs. Keeping one tick
 * object alive keeps those classes, so every server is measured in the same (intended) state. KEEP_TICK_CLASSES=0
 * measures without it.
 */
let keptTick: object | undefined;
if (process.env.KEEP_TICK_CLASSES !== '0') {
  const hook = createHook({
    init(_id, type, _trigger, resource) {
      if (type === 'TickObject' && !keptTick) keptTick = resource as object;
    },
  }).enable();
  process.nextTick(() => hook.disable());
}

const send = (message: FromServer): void => {
  process.send?.(message);
};

// The same policy for every adapter: local key, one rule with a scope, the guard's default store.
const policy = (keys: BenchKeys, fast: boolean): TokenGuardPolicy => ({
  jwt: { issuer: ISSUER, audience: AUDIENCE, algorithms: ['RS256'], keys: [keys.rsPublicJwk] },
  rules: [{ methods: ['GET'], path: '/orders/**', scopes: [SCOPE] }],
  ...(fast && { trackUsage: false }),
});

// One allow Decision, the shape the real guard returns for the bench's token (a rule, a verified JWT, no headers).
const FIXED_ALLOW: Decision = {
  effect: 'allow',
  status: 200,
  reason: 'ok',
  reasons: [],
  mode: 'enforce',
  rule: 'GET /orders/**',
  token: { id: 'bench-token', kind: 'jwt', subject: 'alice', scopes: [SCOPE, 'profile'], claims: { sub: 'alice', scope: `${SCOPE} profile` } },
  headers: {},
};

/**
 * A guard that decides nothing: `decide` returns FIXED_ALLOW synchronously, as the real guard does for a cached token.
 * What an adapter costs on top of it is the adapter's own work (reading the request, mapping the decision, req.auth).
 */
async function stubGuard(keys: BenchKeys): Promise<Guard> {
  const { createGuard } = await import('token-guard');
  const real = createGuard(policy(keys, false));
  return { ...real, decide: () => FIXED_ALLOW, evaluate: () => Promise.resolve(FIXED_ALLOW) };
}

/** The guard a scenario's adapter runs: the stub, or a policy the adapter compiles itself. */
const guardOf = async (scenario: Scenario, keys: BenchKeys, fast: boolean): Promise<TokenGuardPolicy | Guard> =>
  scenario.kind === 'stub' ? stubGuard(keys) : policy(keys, fast);

/** Serves `listener` on a loopback port. */
function listen(listener: http.RequestListener): Promise<http.Server> {
  const server = http.createServer(listener);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

async function express(scenario: Scenario, keys: BenchKeys): Promise<http.RequestListener> {
  const { default: createApp } = await import('express');
  const app = createApp();
  const handler = (_req: unknown, res: { json(body: unknown): void }): void => res.json(BODY);
  switch (scenario.id) {
    case 'express':
      app.get('/orders/:id', handler);
      break;
    case 'express-layer':
      app.use((_req, _res, next) => next());
      app.get('/orders/:id', handler);
      break;
    case 'express-guard':
    case 'express-guard-fast':
    case 'express-stub': {
      const { tokenGuard } = await import('token-guard/express');
      app.use(tokenGuard(await guardOf(scenario, keys, scenario.id === 'express-guard-fast')));
      app.get('/orders/:id', handler);
      break;
    }
    case 'express-guard-baseline': {
      const dist = process.env.BASELINE_DIST;
      if (!dist) throw new Error('express-guard-baseline needs BASELINE_DIST: the dist/ folder of the build to compare with');
      const { tokenGuard } = (await import(pathToFileURL(join(dist, 'express.js')).href)) as typeof import('token-guard/express');
      app.use(tokenGuard(policy(keys, false)));
      app.get('/orders/:id', handler);
      break;
    }
    case 'express-guard-route': {
      const { tokenGuard } = await import('token-guard/express');
      app.get('/orders/:id', tokenGuard(policy(keys, false)), handler);
      break;
    }
    case 'express-auth0': {
      const { auth, requiredScopes } = await import('express-oauth2-jwt-bearer');
      app.use(auth({ issuer: ISSUER, audience: AUDIENCE, publicKey: keys.rsPublicJwk, tokenSigningAlg: 'RS256' }));
      app.get('/orders/:id', requiredScopes(SCOPE), handler);
      // Its refusals arrive as errors; answer them the way its README shows, without Express logging each one.
      const refuse: ErrorRequestHandler = (err: { status?: number; headers?: Record<string, string> }, _req, res, _next) => {
        res
          .status(err.status ?? 500)
          .set(err.headers ?? {})
          .end();
      };
      app.use(refuse);
      break;
    }
    default:
      throw new Error(`no Express app for ${scenario.id}`);
  }
  return app;
}

async function koa(scenario: Scenario, keys: BenchKeys): Promise<http.RequestListener> {
  const [{ default: Koa }, { default: Router }] = await Promise.all([import('koa'), import('@koa/router')]);
  const app = new Koa();
  if (scenario.kind === 'guard' || scenario.kind === 'stub') {
    const { tokenGuard } = await import('token-guard/koa');
    app.use(tokenGuard(await guardOf(scenario, keys, scenario.id === 'koa-guard-fast')));
  } else if (scenario.kind === 'layer') {
    app.use((_ctx, next) => next());
  }
  const router = new Router();
  router.get('/orders/:id', (ctx) => {
    ctx.body = BODY;
  });
  app.use(router.routes());
  return app.callback();
}

async function fastify(scenario: Scenario, keys: BenchKeys): Promise<http.RequestListener> {
  const { default: Fastify } = await import('fastify');
  // Fastify's own request handler, served by our server (one server can then switch between several apps).
  let handler: http.RequestListener | undefined;
  const app = Fastify({
    serverFactory: (h) => {
      handler = h;
      return http.createServer(h);
    },
  });
  if (scenario.kind === 'stub') {
    const { tokenGuard } = await import('token-guard/fastify');
    await app.register(tokenGuard, { guard: await stubGuard(keys) });
  } else if (scenario.kind === 'guard') {
    const { tokenGuard } = await import('token-guard/fastify');
    await app.register(tokenGuard, policy(keys, scenario.id === 'fastify-guard-fast'));
  } else if (scenario.kind === 'layer') {
    app.addHook('onRequest', (_request, _reply, done) => done());
  } else if (scenario.kind === 'peer') {
    // @fastify/jwt's documented shape: jwtVerify in onRequest, plus the scope check token-guard also does.
    const { default: fastifyJwt } = await import('@fastify/jwt');
    const hs = scenario.alg === 'HS256';
    await app.register(fastifyJwt, {
      secret: hs ? keys.hsSecret : { public: keys.rsPublicPem },
      verify: { allowedIss: ISSUER, allowedAud: AUDIENCE, algorithms: [hs ? 'HS256' : 'RS256'] },
    });
    app.addHook('onRequest', async (request, reply) => {
      try {
        await request.jwtVerify();
      } catch (err) {
        return reply.send(err);
      }
      const scope = (request.user as { scope?: unknown }).scope;
      if (typeof scope !== 'string' || !scope.split(' ').includes(SCOPE)) return reply.code(403).send({ error: 'insufficient_scope' });
      return undefined;
    });
  }
  app.get('/orders/:id', async () => BODY);
  await app.ready();
  if (!handler) throw new Error('Fastify did not call serverFactory');
  return handler;
}

async function fetchOnNode(scenario: Scenario, keys: BenchKeys): Promise<http.RequestListener> {
  // The same bridge the fetch example uses: what "fetch on Node" costs a user of that example.
  const { toNodeListener } = await import('../../examples/fetch/bridge.js');
  const notFound = () => Response.json({ error: 'not found' }, { status: 404 });
  if (scenario.kind === 'bare') {
    return toNodeListener(async (request) => (new URL(request.url).pathname === ROUTE ? Response.json(BODY) : notFound()));
  }
  const { guardFetch } = await import('token-guard/fetch');
  const guard = guardFetch(await guardOf(scenario, keys, scenario.id === 'fetch-guard-fast'));
  return toNodeListener(async (request, info) => {
    const result = await guard(request, info);
    if (result instanceof Response) return result;
    return new URL(request.url).pathname === ROUTE ? Response.json(BODY, { headers: result.headers }) : notFound();
  });
}

const builders = { express, koa, fastify, fetch: fetchOnNode } as const;

/** The scenario with this id, or a clear error. */
const scenarioOf = (id: string | undefined): Scenario => {
  const scenario = SCENARIOS.find((s) => s.id === id);
  if (!scenario) throw new Error(`unknown scenario ${id ?? '(unset)'}`);
  return scenario;
};

try {
  // The point is to measure what users install: refuse to run against the TypeScript sources.
  const resolved = import.meta.resolve('token-guard');
  if (!resolved.includes('/dist/')) throw new Error(`token-guard resolves to ${resolved}, not the built dist/ (start it through run.ts)`);
  const keys = JSON.parse(process.env.BENCH_KEYS ?? '') as BenchKeys;
  // BENCH_ARMS (paired.ts): several apps of one framework behind one server, switched by message, so that two apps
  // are compared in one process, under the same load, a slice at a time. Otherwise the one app of BENCH_SCENARIO.
  const ids = process.env.BENCH_ARMS ? process.env.BENCH_ARMS.split(',') : [process.env.BENCH_SCENARIO];
  const arms: http.RequestListener[] = [];
  for (const id of ids) {
    const scenario = scenarioOf(id);
    arms.push(await builders[scenario.framework](scenario, keys));
  }
  let current = arms[0] as http.RequestListener;
  const server = await listen(arms.length === 1 ? current : (req, res) => current(req, res));
  // The load generator is the only client; its connections stay open for a whole measurement.
  server.keepAliveTimeout = 60_000;
  process.on('message', (message: ToServer) => {
    if (message.type === 'arm') {
      current = arms[message.index] ?? current;
      send({ type: 'armed', seq: message.seq });
      return;
    }
    const { user, system } = process.cpuUsage();
    send({ type: 'cpu', seq: message.seq, userUs: user, systemUs: system, rssBytes: process.memoryUsage.rss() });
  });
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready', port: (server.address() as AddressInfo).port });
} catch (err) {
  send({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  process.exitCode = 1;
  process.disconnect?.();
}
