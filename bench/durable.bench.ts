// `npm run bench:durable`: the composed store (PostgresStore durable, RedisStore in front) against RedisStore alone,
// on the built package (dist/).
//
// Cached path: the same guard policy on both stores (API keys and HS256 JWTs, one rule), and the same two tokens per
// store: an API key (record read from Redis with one HMGET on both) and a JWT with jti and sub (verification cached by
// the guard). Both stores have a subscriber, so on both the revocation lookup is answered by RedisStore's near-cache;
// the bench checks that it is (near-cache hits) and counts the Redis commands each decision sends.
//
// Measured as ratios within one run, because the machine is shared: ROUNDS rounds, each measuring every scenario on
// both stores back to back (every other round in the reverse order), MS milliseconds each. Per measurement: CPU time
// of this process per decision (process.cpuUsage, user + system, every thread: the collector's helpers too; Redis's
// and PostgreSQL's own CPU is not in it, their cost shows in the wall time) and wall time per decision. The figure reported is the median over rounds of each round's
// ratio composed / RedisStore (1.00 = same cost, 1.10 = 10 % slower).
//
// Cold record: COLD fresh API keys per store (put through that store, alternating which store goes first), the median
// wall time of a key's first and second request, and the PostgreSQL queries and Redis commands each one sent.
// Env: ROUNDS (10), MS (400), COLD (300), ONLY (substring of a scenario name); a smoke run: ROUNDS=2 MS=50 COLD=20.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { SignJWT } from 'jose';
import pg from 'pg';
import { composeStores, createGuard, issueApiKey, type Guard, type GuardRequest, type TokenStore } from 'token-guard';
import { PostgresStore } from 'token-guard/postgres';
import { RedisStore } from 'token-guard/redis';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const int = (name: string, fallback: number): number => {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer`);
  return v;
};
const ROUNDS = int('ROUNDS', 10);
const MS = int('MS', 400);
const COLD = int('COLD', 300);
const ONLY = process.env.ONLY ?? '';
const NOW = new Date('2026-11-25T10:00:00Z');
const iat = Math.floor(NOW.getTime() / 1000);
const SECRET = new TextEncoder().encode('bench-secret-bench-secret-bench-secret!!');

const admin = new pg.Client({ connectionString: PG_URL });
const probe = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
probe.on('error', () => undefined);
try {
  await probe.connect();
  await admin.connect();
} catch {
  console.warn(`durable bench skipped: needs Redis at ${REDIS_URL} and PostgreSQL at ${PG_URL}`);
  process.exit(0);
}

const id = randomBytes(4).toString('hex');
const database = `token_guard_bench_${id}`;
await admin.query(`CREATE DATABASE "${database}"`);
const dbUrl = new URL(PG_URL);
dbUrl.pathname = `/${database}`;
const pool = new pg.Pool({ connectionString: dbUrl.toString(), max: 8 });
pool.on('error', () => undefined);

// Counting wrappers: every query the pool runs, every command a store's client sends (scripts included).
const pgQueries = { records: 0, revocations: 0, other: 0 };
const poolQuery = pool.query.bind(pool) as (...args: unknown[]) => unknown;
(pool as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
  const sql = typeof args[0] === 'string' ? args[0] : String((args[0] as { text?: string }).text);
  if (/FROM \S*api_keys\S* WHERE hash/.test(sql)) pgQueries.records++;
  else if (/revocations/.test(sql)) pgQueries.revocations++;
  else pgQueries.other++;
  return poolQuery(...args);
};
const redisCommands = new Map<Redis, number>();
function counted(c: Redis): Redis {
  redisCommands.set(c, 0);
  const send = c.sendCommand.bind(c);
  c.sendCommand = ((...args: Parameters<Redis['sendCommand']>) => {
    redisCommands.set(c, (redisCommands.get(c) ?? 0) + 1);
    return send(...args);
  }) as Redis['sendCommand'];
  return c;
}

const prefix = `bench-durable-${id}:`;
const connections: Redis[] = [probe];
const connect = () => {
  const c = new Redis(REDIS_URL);
  connections.push(c);
  return c;
};
const closers: TokenStore[] = [];

function guardOn(store: TokenStore): Guard {
  return createGuard({
    apiKeys: { prefix: 'tg_' },
    jwt: { issuer: 'https://id.example.com/', audience: 'api://orders', algorithms: ['HS256'], secret: SECRET },
    store,
    clock: () => NOW,
    rules: [{ methods: ['GET'], path: '/orders/**', scopes: ['orders:read'] }],
  });
}
const request = (token: string): GuardRequest => ({ method: 'GET', path: '/orders/42', headers: { authorization: `Bearer ${token}` }, remoteAddress: '10.1.2.3' });
const newKey = () => issueApiKey({ prefix: 'tg_', subject: 'svc', scopes: ['orders:read'], expiresIn: '30d', now: new Date(NOW.getTime() - 1000) });
const sign = (jti: string) =>
  new SignJWT({ scope: 'orders:read', jti })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer('https://id.example.com/')
    .setAudience('api://orders')
    .setSubject('alice')
    .setIssuedAt(iat)
    .setExpirationTime(iat + 3600)
    .sign(SECRET);

/** 503s during the timed runs, per guard, with the first one's detail: on a loaded machine a store call can time out. */
const unavailable = new Map<Guard, { count: number; detail: string | undefined }>();

async function expectOk(guard: Guard, req: GuardRequest, tolerateUnavailable = false): Promise<void> {
  const d = await guard.evaluate(req);
  if (d.reason === 'ok') return;
  if (tolerateUnavailable && d.reason === 'store.unavailable') {
    const u = unavailable.get(guard) ?? { count: 0, detail: d.detail };
    u.count++;
    unavailable.set(guard, u);
    return;
  }
  throw new Error(`bench: expected ok, got ${d.reason} (${d.detail ?? ''})`);
}

interface Sample {
  n: number;
  cpuUs: number;
  wallMs: number;
}

/** Evaluates `req` with `inFlight` evaluations outstanding for MS ms: decisions, CPU µs and wall ms spent. */
async function measure(guard: Guard, req: GuardRequest, inFlight: number): Promise<Sample> {
  let n = 0;
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const end = start + MS;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < end) {
        await expectOk(guard, req, true);
        n++;
      }
    }),
  );
  const wallMs = performance.now() - start;
  const cpu = process.cpuUsage(cpu0);
  return { n, cpuUs: cpu.user + cpu.system, wallMs };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

/** Median µs of the first request of COLD fresh keys per store, of the second, and what each sent to PostgreSQL and Redis. */
async function cold(subjects: Subject[]): Promise<Record<string, string | number>[]> {
  const out = subjects.map(() => ({
    first: [] as number[],
    second: [] as number[],
    pgFirst: [] as number[],
    pgRecordFirst: [] as number[],
    redisFirst: [] as number[],
    redisSecond: [] as number[],
  }));
  for (let i = 0; i < COLD; i++) {
    const order = i % 2 ? [1, 0] : [0, 1];
    for (const j of order) {
      const s = subjects[j] as Subject;
      const o = out[j] as (typeof out)[number];
      const { key, record } = newKey();
      await s.store.putApiKey(record);
      for (const [times, pgCount, recCount, redisCount] of [
        [o.first, o.pgFirst, o.pgRecordFirst, o.redisFirst],
        [o.second, undefined, undefined, o.redisSecond],
      ] as const) {
        const pg0 = pgQueries.records + pgQueries.revocations + pgQueries.other;
        const rec0 = pgQueries.records;
        const r0 = redisCommands.get(s.client) ?? 0;
        const t0 = performance.now();
        await expectOk(s.guard, request(key));
        times.push((performance.now() - t0) * 1000);
        pgCount?.push(pgQueries.records + pgQueries.revocations + pgQueries.other - pg0);
        recCount?.push(pgQueries.records - rec0);
        redisCount.push((redisCommands.get(s.client) ?? 0) - r0);
      }
    }
  }
  return subjects.map((s, j) => {
    const o = out[j] as (typeof out)[number];
    return {
      store: s.name,
      'first request µs (median)': Math.round(median(o.first)),
      'PostgreSQL queries (record + revocation)': `${median(o.pgFirst)} (${median(o.pgRecordFirst)} + ${median(o.pgFirst) - median(o.pgRecordFirst)})`,
      'Redis commands': median(o.redisFirst),
      'second request µs (median)': Math.round(median(o.second)),
      'Redis commands (2nd)': median(o.redisSecond),
    };
  });
}

interface Subject {
  name: string;
  store: TokenStore;
  cache: RedisStore;
  client: Redis;
  guard: Guard;
  tokens: { 'API key': string; 'JWT (jti, sub)': string };
}

try {
  const aloneClient = counted(connect());
  const redisAlone = new RedisStore({ client: aloneClient, subscriber: connect(), prefix: `${prefix}a:`, durability: 'ignore' });
  const durable = new PostgresStore({ pool, tablePrefix: 'bench_' });
  await durable.migrate();
  const cacheClient = counted(connect());
  const cache = new RedisStore({ client: cacheClient, subscriber: connect(), prefix: `${prefix}c:`, durability: 'ignore' });
  const composed = composeStores({ keys: durable, revocations: durable, counters: cache, claims: cache, usage: cache, cache });
  closers.push(redisAlone, composed);
  while (!redisAlone.stats().nearCacheEnabled || !cache.stats().nearCacheEnabled) await new Promise((r) => setTimeout(r, 5));

  const subjects: Subject[] = [];
  for (const [name, store, nearCache, client] of [
    ['RedisStore alone', redisAlone, redisAlone, aloneClient],
    ['composed (PostgreSQL + Redis in front)', composed, cache, cacheClient],
  ] as const) {
    const { key, record } = newKey();
    await store.putApiKey(record);
    subjects.push({ name, store, cache: nearCache, client, guard: guardOn(store), tokens: { 'API key': key, 'JWT (jti, sub)': await sign(`bench-${subjects.length}-${id}`) } });
  }

  const scenarios = (['API key', 'JWT (jti, sub)'] as const)
    .flatMap((kind) => [1, 64].map((inFlight) => ({ kind, inFlight, name: `${kind}, ${inFlight} in flight` })))
    .filter((s) => s.name.includes(ONLY));
  // Warm-up: JIT, the guard's JWT cache, the Redis copy of the record and both near-caches.
  for (const s of subjects) for (const token of Object.values(s.tokens)) for (let i = 0; i < 3000; i++) await expectOk(s.guard, request(token));

  // Per decision, on the cached path: Redis commands sent and near-cache hit rate (the same path on both, or the
  // comparison means nothing).
  const perDecision: Record<string, string | number>[] = [];
  for (const s of subjects) {
    for (const [kind, token] of Object.entries(s.tokens)) {
      const r0 = redisCommands.get(s.client) ?? 0;
      const { nearCacheHits: h0, nearCacheMisses: m0 } = s.cache.stats();
      const pg0 = pgQueries.records + pgQueries.revocations + pgQueries.other;
      for (let i = 0; i < 1000; i++) await expectOk(s.guard, request(token));
      const { nearCacheHits: h1, nearCacheMisses: m1 } = s.cache.stats();
      perDecision.push({
        store: s.name,
        token: kind,
        'Redis commands / decision': ((redisCommands.get(s.client) ?? 0) - r0) / 1000,
        'PostgreSQL queries / decision': (pgQueries.records + pgQueries.revocations + pgQueries.other - pg0) / 1000,
        'near-cache hits': `${h1 - h0}/${h1 - h0 + m1 - m0}`,
      });
    }
  }

  const ratios = new Map(
    scenarios.map((s) => [s.name, { cpu: [] as number[], wall: [] as number[], abs: subjects.map(() => ({ cpu: [] as number[], rate: [] as number[] })) }]),
  );
  for (let round = 0; round < ROUNDS; round++) {
    for (const sc of scenarios) {
      const order = round % 2 ? [1, 0] : [0, 1];
      const samples: Sample[] = [];
      for (const j of order) {
        const s = subjects[j] as Subject;
        samples[j] = await measure(s.guard, request(s.tokens[sc.kind]), sc.inFlight);
      }
      const [a, c] = samples as [Sample, Sample];
      const r = ratios.get(sc.name) as NonNullable<ReturnType<typeof ratios.get>>;
      r.cpu.push(c.cpuUs / c.n / (a.cpuUs / a.n));
      r.wall.push(c.wallMs / c.n / (a.wallMs / a.n));
      samples.forEach((x, j) => {
        r.abs[j]?.cpu.push(x.cpuUs / x.n);
        r.abs[j]?.rate.push((x.n / x.wallMs) * 1000);
      });
    }
  }

  const rows = scenarios.map((sc) => {
    const r = ratios.get(sc.name) as NonNullable<ReturnType<typeof ratios.get>>;
    return {
      scenario: sc.name,
      'CPU / decision, composed ÷ RedisStore (median of rounds)': median(r.cpu).toFixed(3),
      'wall / decision, composed ÷ RedisStore': median(r.wall).toFixed(3),
      'CPU µs / decision (RedisStore, composed)': r.abs.map((x) => median(x.cpu).toFixed(1)).join(', '),
      'decisions/s (RedisStore, composed)': r.abs.map((x) => Math.round(median(x.rate))).join(', '),
      'round ratios (CPU)': r.cpu.map((x) => x.toFixed(2)).join(' '),
    };
  });

  const coldRows = await cold(subjects);

  console.log('\nCached path, per decision (1000 decisions each):');
  console.table(perDecision);
  console.log(`\nCached path: guard.evaluate, composed vs RedisStore alone (${ROUNDS} interleaved rounds of ${MS} ms per store and scenario)`);
  console.table(rows);
  for (const s of subjects) {
    const u = unavailable.get(s.guard);
    if (u) console.log(`${s.name}: ${u.count} decision(s) answered 503 during the timed runs (first: ${u.detail ?? 'no detail'})`);
  }
  console.log(`\nCold record: the first request of ${COLD} fresh API keys per store, and their second request (Redis and PostgreSQL on loopback)`);
  console.table(coldRows);
} finally {
  for (const s of closers) await Promise.resolve(s.close?.()).catch(() => undefined);
  for await (const keys of probe.scanStream({ match: `${prefix}*` })) for (const k of keys as string[]) await probe.del(k);
  for (const c of connections) c.disconnect();
  await pool.end();
  await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
  await admin.end();
}
