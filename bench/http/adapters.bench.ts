// `npm run bench:adapters`: what each adapter itself costs per request, apart from the guard and from the network.
// Every framework handles in-memory requests (a Node IncomingMessage and ServerResponse with no socket I/O, the same
// objects its HTTP server would hand it), one after another, in one process: bare, with the adapter around a stub
// guard whose `decide` returns one fixed allow Decision ("adapter"), and with the real guard on the bench's cached
// token ("guard"). Variants are interleaved round by round (every other round in reverse); the table shows the median
// over rounds of each round's CPU µs per request above the bare app of the same round. No kernel, no load generator:
// the differences are small enough to read at the µs level even on a busy machine, which `bench:http` cannot.
// Runs on the built package (dist/): `npm run build` first.
//
// Env: ROUNDS (7), REQUESTS per measurement (5000), ONLY=express,koa (frameworks). Kept modest: an ad-hoc run of some
// 800,000 in-memory Express requests in one process ran out of heap, while runs of up to about 200,000 per framework
// finished. Over real HTTP the guarded Express app does not grow: 360,000 requests (50 tokens, 20 connections) left
// its heap at 16.4 MiB after GC, flat from the first 60,000 on (bare Express: 7.9), so the growth points at these
// in-memory requests (their shared socket), not at the adapter.
import http from 'node:http';
import { Socket } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import type { Decision, Guard, TokenGuardPolicy } from 'token-guard';
import { AUDIENCE, BODY, ISSUER, ROUTE, SCOPE } from './scenarios.js';

const int = (name: string, fallback: number): number => {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer`);
  return v;
};
const ROUNDS = int('ROUNDS', 7);
const REQUESTS = int('REQUESTS', 5_000);
const ONLY = (process.env.ONLY ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);

const rs = await generateKeyPair('RS256', { extractable: true });
const jwk = { ...(await exportJWK(rs.publicKey)), kid: 'bench-rs', alg: 'RS256', use: 'sig' };
const token = await new SignJWT({ scope: `${SCOPE} profile` })
  .setProtectedHeader({ alg: 'RS256', kid: 'bench-rs' })
  .setIssuer(ISSUER)
  .setAudience(AUDIENCE)
  .setSubject('alice')
  .setIssuedAt()
  .setExpirationTime('6h')
  .sign(rs.privateKey);

const policy = (): TokenGuardPolicy => ({
  jwt: { issuer: ISSUER, audience: AUDIENCE, algorithms: ['RS256'], keys: [jwk] },
  rules: [{ methods: ['GET'], path: '/orders/**', scopes: [SCOPE] }],
});

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

const { createGuard } = await import('token-guard');
/** The adapter's own cost: a guard that returns one fixed allow Decision, synchronously. */
const stubGuard = (): Guard => ({ ...createGuard(policy()), decide: () => FIXED_ALLOW, evaluate: () => Promise.resolve(FIXED_ALLOW) });

// ---------- in-memory requests ----------

// A socket per request (frameworks hang listeners on it), never connected, never written to: a ServerResponse with no
// socket assigned keeps its output.
class BenchSocket extends Socket {}
Object.defineProperty(BenchSocket.prototype, 'remoteAddress', { get: () => '127.0.0.1' });
const rawHeaders = ['Host', '127.0.0.1', 'Authorization', `Bearer ${token}`, 'Accept', '*/*'];

// ServerResponse's own end(), wrapped per response (an own property: Express swaps the response's prototype).
const end = http.ServerResponse.prototype.end;

type Listener = (req: http.IncomingMessage, res: http.ServerResponse) => void;

function request(listener: Listener): Promise<number> {
  const req = new http.IncomingMessage(new BenchSocket());
  req.method = 'GET';
  req.url = ROUTE;
  req.httpVersion = '1.1';
  req.httpVersionMajor = 1;
  req.httpVersionMinor = 1;
  req.rawHeaders = rawHeaders;
  req.headers = { host: '127.0.0.1', authorization: `Bearer ${token}`, accept: '*/*' };
  req.complete = true;
  req.push(null);
  const res = new http.ServerResponse(req);
  return new Promise((resolve) => {
    res.end = function (this: http.ServerResponse, ...args: unknown[]) {
      (end as (...a: unknown[]) => void).apply(this, args);
      resolve(this.statusCode);
      return this;
    } as typeof res.end;
    listener(req, res);
  });
}

// ---------- apps ----------

type Kind = 'bare' | 'adapter' | 'guard';
interface Variant {
  framework: string;
  kind: Kind;
  listener: Listener;
}

async function expressApp(kind: Kind): Promise<Listener> {
  const { default: createApp } = await import('express');
  const app = createApp();
  if (kind !== 'bare') {
    const { tokenGuard } = await import('token-guard/express');
    app.use(tokenGuard(kind === 'adapter' ? stubGuard() : policy()));
  }
  app.get('/orders/:id', (_req, res) => {
    res.json(BODY);
  });
  return app as unknown as Listener;
}

async function koaApp(kind: Kind): Promise<Listener> {
  const [{ default: Koa }, { default: Router }] = await Promise.all([import('koa'), import('@koa/router')]);
  const app = new Koa();
  if (kind !== 'bare') {
    const { tokenGuard } = await import('token-guard/koa');
    app.use(tokenGuard(kind === 'adapter' ? stubGuard() : policy()));
  }
  const router = new Router();
  router.get('/orders/:id', (ctx) => {
    ctx.body = BODY;
  });
  app.use(router.routes());
  return app.callback() as Listener;
}

async function fastifyApp(kind: Kind): Promise<Listener> {
  const { default: Fastify } = await import('fastify');
  const app = Fastify();
  if (kind === 'adapter') {
    const { tokenGuard } = await import('token-guard/fastify');
    await app.register(tokenGuard, { guard: stubGuard() });
  } else if (kind === 'guard') {
    const { tokenGuard } = await import('token-guard/fastify');
    await app.register(tokenGuard, policy());
  }
  app.get('/orders/:id', async () => BODY);
  await app.ready();
  return (req, res) => app.routing(req, res);
}

async function fetchApp(kind: Kind): Promise<Listener> {
  const { toNodeListener } = await import('../../examples/fetch/bridge.js');
  const notFound = () => Response.json({ error: 'not found' }, { status: 404 });
  if (kind === 'bare') return toNodeListener(async (request) => (new URL(request.url).pathname === ROUTE ? Response.json(BODY) : notFound()));
  const { guardFetch } = await import('token-guard/fetch');
  const guard = guardFetch(kind === 'adapter' ? stubGuard() : policy());
  return toNodeListener(async (request, info) => {
    const result = await guard(request, info);
    if (result instanceof Response) return result;
    return new URL(request.url).pathname === ROUTE ? Response.json(BODY, { headers: result.headers }) : notFound();
  });
}

const frameworks = { express: expressApp, koa: koaApp, fastify: fastifyApp, fetch: fetchApp } as const;
const variants: Variant[] = [];
for (const [framework, build] of Object.entries(frameworks)) {
  if (ONLY.length && !ONLY.includes(framework)) continue;
  for (const kind of ['bare', 'adapter', 'guard'] as const) variants.push({ framework, kind, listener: await build(kind) });
}

// ---------- measuring ----------

async function measure(v: Variant, n: number): Promise<number> {
  const before = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const status = await request(v.listener);
    if (status !== 200) throw new Error(`${v.framework} ${v.kind}: status ${status}`);
  }
  const used = process.cpuUsage(before);
  return (used.user + used.system) / n;
}

for (const v of variants) await measure(v, Math.max(2000, REQUESTS / 4));

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

const results = new Map<Variant, number[]>(variants.map((v) => [v, []]));
for (let round = 1; round <= ROUNDS; round++) {
  const order = round % 2 ? variants : [...variants].reverse();
  for (const v of order) results.get(v)?.push(await measure(v, REQUESTS));
}

console.log(`\nbench:adapters, Node ${process.version}: ${ROUNDS} interleaved rounds × ${REQUESTS} in-memory requests; CPU µs per request, medians.\n`);
console.log('| framework | bare | + adapter (stub guard) | + token-guard | adapter added | token-guard added |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const framework of Object.keys(frameworks)) {
  const of = (kind: Kind) => variants.find((v) => v.framework === framework && v.kind === kind);
  const bare = of('bare');
  const adapter = of('adapter');
  const guard = of('guard');
  if (!bare || !adapter || !guard) continue;
  const b = results.get(bare) ?? [];
  const a = results.get(adapter) ?? [];
  const g = results.get(guard) ?? [];
  const added = (xs: number[]) => median(xs.map((x, i) => x - (b[i] as number)));
  const f = (x: number, sign = false) => `${sign && x >= 0 ? '+' : ''}${x.toFixed(2)}`;
  console.log(`| ${framework} | ${f(median(b))} | ${f(median(a))} | ${f(median(g))} | ${f(added(a), true)} | ${f(added(g), true)} |`);
}
