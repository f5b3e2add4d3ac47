// `npm run bench` (part 1; alone: `npm run build && npm run bench:decide`): cached guard.decide / guard.evaluate throughput on one core, on the built package (dist/).
// Issue 9's target: ≥ 1M cached decisions/s with the default policy options. On a shared machine a single figure moves
// by ±20 % or more, so this script also compares two builds in one run: `BASE=<dir holding a dist/ build>` loads
// that build next to ./dist, each in its own worker thread (two builds in one isolate skew each other by ~25 %), and
// interleaves them round by round (every other round in reverse), printing the median
// of each round's ratio. That ratio, not the absolute figure, is what a change is judged by.
//
// Rates are per second of the process's CPU time (run under `node --single-threaded-gc`, as `npm run bench:decide` does,
// so that the garbage collector's work is counted on this thread and not spread over helper threads).
//
// The "caches evicted" row is what a live server sees: between two of its requests the framework and Node touch far more
// memory than the CPU caches hold, so each decision finds the guard's code and data evicted. It touches 2 MiB (beyond
// this machine's 1 MiB L2) before each decision and times the decisions alone (wall clock, minus the timer's own cost):
// about 3× the hot loop's cost per decision, close to what a guarded Fastify server adds per request.
//
// Each row also gives the bytes one decision allocates (V8's sampling heap profiler): a figure the machine's load
// does not move, so a change that allocates less shows as such even when the rates are too noisy to tell.
//
// Env: ROUNDS (7), MS per measurement (300), BASE (optional: the other build's directory, e.g. a copy of an older
// dist/ kept under node_modules/ so that its imports resolve), ONLY (substring of a scenario name).
import { Session } from 'node:inspector/promises';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import type * as TokenGuard from 'token-guard';
import type { GuardRequest, TokenGuardPolicy } from 'token-guard';

type Lib = Pick<typeof TokenGuard, 'createGuard' | 'issueApiKey' | 'MemoryStore'>;
type Guard = ReturnType<Lib['createGuard']>;

const int = (name: string, fallback: number): number => {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer`);
  return v;
};
const ROUNDS = int('ROUNDS', 7);
const MS = int('MS', 300);
const ONLY = process.env.ONLY ?? '';

const ISSUER = 'https://id.example.com/';
const AUDIENCE = 'api://orders';
const es = await generateKeyPair('ES256');
const jwk = { ...(await exportJWK(es.publicKey)), kid: 'es', alg: 'ES256' };
const token = await new SignJWT({ scope: 'orders:read profile' })
  .setProtectedHeader({ alg: 'ES256', kid: 'es' })
  .setIssuer(ISSUER)
  .setAudience(AUDIENCE)
  .setSubject('alice')
  .setIssuedAt()
  .setExpirationTime('6h')
  .sign(es.privateKey);

/** One thing measured: a guard built from a library, and the request it decides again and again. */
interface Scenario {
  name: string;
  setup(lib: Lib): Promise<{ guard: Guard; req: GuardRequest }>;
  /** evaluate (a Promise per call, awaited) instead of decide. */
  evaluate?: boolean;
  /** Evict the CPU caches before each decision (see the top of this file). */
  cold?: boolean;
}

const jwtPolicy = (extra: Partial<TokenGuardPolicy> = {}): TokenGuardPolicy => ({
  jwt: { issuer: ISSUER, audience: AUDIENCE, algorithms: ['ES256'], keys: [jwk] },
  rules: [{ methods: ['GET'], path: '/orders/**', scopes: ['orders:read'] }],
  ...extra,
});
// What a Node adapter hands the guard: no `now` (the guard reads the clock), the socket's address, a few headers.
const httpRequest = (authorization: string): GuardRequest => ({
  method: 'GET',
  path: '/orders/42',
  headers: { host: 'localhost:3000', authorization, 'user-agent': 'autocannon', accept: '*/*' },
  remoteAddress: '127.0.0.1',
});
const jwtScenario =
  (extra?: Partial<TokenGuardPolicy>) =>
  async (lib: Lib): Promise<{ guard: Guard; req: GuardRequest }> => ({ guard: lib.createGuard(jwtPolicy(extra)), req: httpRequest(`Bearer ${token}`) });

const ALL_SCENARIOS: Scenario[] = [
  { name: 'decide, cached JWT, default options', setup: jwtScenario() },
  { name: 'decide, cached JWT, default options, caches evicted', setup: jwtScenario(), cold: true },
  { name: 'evaluate, cached JWT, default options', setup: jwtScenario(), evaluate: true },
  { name: 'decide, cached JWT, trackUsage off', setup: jwtScenario({ trackUsage: false }) },
  {
    name: 'decide, cached JWT, scope + IP + hours',
    setup: jwtScenario({
      trackUsage: false,
      ip: { allow: ['127.0.0.0/8', '10.0.0.0/8'], deny: ['10.66.0.0/16'] },
      hours: { timezone: 'UTC', windows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], from: '00:00', to: '23:59' }] },
    }),
  },
  {
    name: 'decide, API key (MemoryStore)',
    async setup(lib) {
      const store = new lib.MemoryStore();
      const { key, record } = lib.issueApiKey({ prefix: 'tg_', subject: 'svc', scopes: ['orders:read'], expiresIn: '30d' });
      await store.putApiKey(record);
      return {
        guard: lib.createGuard({ apiKeys: { prefix: 'tg_' }, store, rules: [{ methods: ['GET'], path: '/orders/**', scopes: ['orders:read'] }] }),
        req: httpRequest(`Bearer ${key}`),
      };
    },
  },
];
const SCENARIOS = ALL_SCENARIOS.filter((s) => s.name.includes(ONLY));

/**
 * Decisions per second of CPU time over about `ms` of CPU time, in batches of 1000. CPU time, not wall time: on a
 * machine shared with other work, the wall clock counts the time this process waited for a core.
 */
async function measure(guard: Guard, req: GuardRequest, evaluate: boolean, ms: number): Promise<number> {
  let n = 0;
  const cpuMs = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  const start = cpuMs();
  const end = start + ms;
  let sink = 0;
  while (cpuMs() < end) {
    if (evaluate) {
      for (let k = 0; k < 1000; k++) sink += (await guard.evaluate(req)).status;
    } else {
      for (let k = 0; k < 1000; k++) {
        const d = guard.decide(req);
        sink += 'then' in d ? (await d).status : d.status;
      }
    }
    n += 1000;
  }
  if (sink !== n * 200) throw new Error('a decision was not an allow');
  return (n / (cpuMs() - start)) * 1000;
}

// What the cold row touches between decisions: 2 MiB, one write per 64-byte line.
const junk = new Float64Array(2 * 131072);
let junkSink = 0;
const evictCaches = (): void => {
  for (let i = 0; i < junk.length; i += 8) junkSink += junk[i] = (junk[i] as number) + 1;
};

/**
 * Decisions per second of decision time when the caches are evicted before each one. Each decision is timed alone;
 * an empty timed section after the same eviction is subtracted (the timer's own cost and what eviction leaves behind).
 */
function measureCold(guard: Guard, req: GuardRequest, ms: number): number {
  let n = 0;
  let spent = 0;
  let sink = 0;
  const deadline = performance.now() + ms * 40;
  while (n < 200 || (spent < ms && performance.now() < deadline)) {
    for (let k = 0; k < 50; k++) {
      evictCaches();
      let t = performance.now();
      const d = guard.decide(req);
      spent += performance.now() - t;
      if ('then' in d) throw new Error('the cached path answered with a promise');
      sink += d.status;
      evictCaches();
      t = performance.now();
      spent -= performance.now() - t;
    }
    n += 50;
  }
  if (sink !== n * 200 || junkSink === 0) throw new Error('a decision was not an allow');
  return (n / spent) * 1000;
}

/** A heap profile's nodes, as far as `allocated` reads them. */
interface SampledNode {
  selfSize: number;
  children: SampledNode[];
}

/**
 * Bytes allocated per decision, from V8's sampling heap profiler (a sample every 64 bytes on average, counting
 * what the garbage collector has already freed). Unlike a rate, the machine's load does not move it, so it tells
 * two builds apart where timings on a busy machine cannot; and what a request allocates is what the server's
 * garbage collector pays for, on top of the time measured here.
 */
async function allocated(guard: Guard, req: GuardRequest, evaluate: boolean): Promise<number> {
  const n = 100_000;
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.startSampling', { samplingInterval: 64, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  for (let k = 0; k < n; k++) {
    if (evaluate) await guard.evaluate(req);
    else {
      const d = guard.decide(req);
      if ('then' in d) await d;
    }
  }
  const { profile } = (await session.post('HeapProfiler.stopSampling')) as { profile: { head: SampledNode } };
  session.disconnect();
  let bytes = 0;
  const stack = [profile.head];
  for (let node = stack.pop(); node; node = stack.pop()) {
    bytes += node.selfSize;
    stack.push(...node.children);
  }
  return bytes / n;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

/** A worker: one build in its own isolate (two builds in one isolate skew each other), measuring on request. */
async function serve(dist: string): Promise<void> {
  const lib = (await import(pathToFileURL(resolve(dist, 'index.js')).href)) as Lib;
  const ready = new Map<number, { guard: Guard; req: GuardRequest }>();
  const port = parentPort as NonNullable<typeof parentPort>;
  port.on('message', async ({ scenario, ms, bytes }: { scenario: number; ms: number; bytes: boolean }) => {
    const sc = SCENARIOS[scenario] as Scenario;
    let x = ready.get(scenario);
    if (!x) {
      x = await sc.setup(lib);
      const d = await x.guard.evaluate(x.req);
      if (d.reason !== 'ok') throw new Error(`${sc.name}: expected ok, got ${d.reason} (${d.detail ?? ''})`);
      await measure(x.guard, x.req, sc.evaluate === true, 300); // warm-up: JIT
      ready.set(scenario, x);
    }
    if (bytes) port.postMessage(await allocated(x.guard, x.req, sc.evaluate === true));
    else port.postMessage(sc.cold ? measureCold(x.guard, x.req, ms / 10) : await measure(x.guard, x.req, sc.evaluate === true, ms));
  });
}

/** A build in its worker: `rate` measures decisions per second, `bytes` what one decision allocates. */
interface Measurer {
  rate(scenario: number): Promise<number>;
  bytes(scenario: number): Promise<number>;
}

function spawn(dist: string): Measurer {
  // The worker runs this file again; tsx's loader is registered in it first (Node 20 does not carry it over).
  const boot = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(import.meta.url)}); })`;
  const worker = new Worker(boot, { eval: true, workerData: { dist } });
  worker.unref();
  let pending: { done(rate: number): void; fail(err: unknown): void } | undefined;
  worker.on('message', (rate: number) => pending?.done(rate));
  worker.on('error', (err) => pending?.fail(err));
  const ask = (scenario: number, bytes: boolean): Promise<number> =>
    new Promise((done, fail) => {
      pending = { done, fail };
      worker.postMessage({ scenario, ms: MS, bytes });
    });
  return { rate: (scenario) => ask(scenario, false), bytes: (scenario) => ask(scenario, true) };
}

async function main(): Promise<void> {
  const ours = spawn(fileURLToPath(new URL('../dist/', import.meta.url)));
  const theirs = process.env.BASE ? spawn(resolve(process.env.BASE, 'dist')) : undefined;
  const rows: Record<string, string>[] = [];
  for (const [i, sc] of SCENARIOS.entries()) {
    const a: number[] = [];
    const b: number[] = [];
    const ratios: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      if (!theirs) {
        a.push(await ours.rate(i));
        continue;
      }
      // Every other round in reverse, so neither build always runs first.
      const [x, y] = r % 2 ? [await theirs.rate(i), await ours.rate(i)].reverse() : [await ours.rate(i), await theirs.rate(i)];
      a.push(x as number);
      b.push(y as number);
      ratios.push((x as number) / (y as number));
    }
    const row: Record<string, string> = { scenario: sc.name, 'decisions/s': fmt(median(a)), 'µs per decision': (1e6 / median(a)).toFixed(3) };
    if (theirs) {
      row['BASE decisions/s'] = fmt(median(b));
      row['median ratio'] = median(ratios).toFixed(3);
      row['ratio range'] = `${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}`;
    }
    // The cold row decides the same way as the first: its allocation is that row's.
    if (!sc.cold) {
      row['bytes per decision'] = (await ours.bytes(i)).toFixed(0);
      if (theirs) row['BASE bytes'] = (await theirs.bytes(i)).toFixed(0);
    }
    rows.push(row);
  }
  console.log(
    `cached decisions per CPU-second on one core, median of ${ROUNDS} rounds of ${MS} ms${theirs ? `, interleaved with BASE=${process.env.BASE} (ratio: dist / BASE)` : ''}`,
  );
  console.table(rows);
}

// Exit once the table is out: a worker left idle (unref'd or not) must not keep the run open.
if (isMainThread) {
  await main();
  process.exit(0);
} else await serve((workerData as { dist: string }).dist);
