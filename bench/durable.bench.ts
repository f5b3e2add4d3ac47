// `npm run bench:durable`: the composed store (PostgresStore durable, RedisStore in front) against RedisStore alone.
// Cached path: an API key request whose record and revocation lookups are cached (Redis HMGET + near-cache) on both;
// cold record: the first request of a key, which the composed store reads from PostgreSQL and keeps in Redis.
// BENCH_SECONDS (default 5) sets each throughput run; a smoke run: BENCH_SECONDS=0.3 BENCH_COLD=50.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { composeStores, createGuard, issueApiKey, type Guard, type GuardRequest, type TokenStore } from 'token-guard';
import { PostgresStore } from 'token-guard/postgres';
import { RedisStore } from 'token-guard/redis';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const COLD = Number(process.env.BENCH_COLD ?? 500);
const NOW = new Date('2026-11-25T10:00:00Z');

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
const prefix = `bench-durable-${id}:`;
const connections: Redis[] = [probe];
const connect = () => {
  const c = new Redis(REDIS_URL);
  connections.push(c);
  return c;
};
const closers: TokenStore[] = [];

function guardOn(store: TokenStore): Guard {
  return createGuard({ apiKeys: { prefix: 'tg_' }, store, clock: () => NOW, rules: [{ methods: ['GET'], path: '/orders/**', scopes: ['orders:read'] }] });
}
const request = (key: string): GuardRequest => ({ method: 'GET', path: '/orders/42', headers: { authorization: `Bearer ${key}` }, remoteAddress: '10.1.2.3' });
const newKey = () => issueApiKey({ prefix: 'tg_', subject: 'svc', scopes: ['orders:read'], expiresIn: '30d', now: new Date(NOW.getTime() - 1000) });

async function throughput(guard: Guard, req: GuardRequest, inFlight: number): Promise<number> {
  for (let i = 0; i < 500; i++) await guard.evaluate(req);
  let n = 0;
  const start = performance.now();
  const end = start + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < end) {
        const d = await guard.evaluate(req);
        if (d.reason !== 'ok') throw new Error(`bench: expected ok, got ${d.reason}`);
        n++;
      }
    }),
  );
  return Math.round((n / (performance.now() - start)) * 1000);
}

/** Median µs of the first request of COLD fresh keys (put through `store`), and of the second one. */
async function cold(guard: Guard, store: TokenStore): Promise<{ first: number; second: number }> {
  const first: number[] = [];
  const second: number[] = [];
  for (let i = 0; i < COLD; i++) {
    const { key, record } = newKey();
    await store.putApiKey(record);
    for (const out of [first, second]) {
      const t0 = performance.now();
      const d = await guard.evaluate(request(key));
      out.push((performance.now() - t0) * 1000);
      if (d.reason !== 'ok') throw new Error(`bench: expected ok, got ${d.reason}`);
    }
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  return { first: Math.round(median(first)), second: Math.round(median(second)) };
}

try {
  const redisAlone = new RedisStore({ client: connect(), subscriber: connect(), prefix: `${prefix}a:`, durability: 'ignore' });
  const durable = new PostgresStore({ pool, tablePrefix: 'bench_' });
  await durable.migrate();
  const cache = new RedisStore({ client: connect(), subscriber: connect(), prefix: `${prefix}c:`, durability: 'ignore' });
  const composed = composeStores({ keys: durable, revocations: durable, counters: cache, claims: cache, usage: cache, cache });
  closers.push(redisAlone, composed);
  while (!redisAlone.stats().nearCacheEnabled || !cache.stats().nearCacheEnabled) await new Promise((r) => setTimeout(r, 5));

  const rows: Record<string, string | number>[] = [];
  for (const [name, store] of [
    ['RedisStore alone (near-cached revocations)', redisAlone],
    ['composed: PostgreSQL + Redis in front', composed],
  ] as const) {
    const guard = guardOn(store);
    const { key, record } = newKey();
    await store.putApiKey(record);
    const c = await cold(guard, store);
    rows.push({
      'API key request': name,
      'decisions/s, 1 in flight': await throughput(guard, request(key), 1),
      'decisions/s, 64 in flight': await throughput(guard, request(key), 64),
      'cold record, first request µs (median)': c.first,
      'second request µs (median)': c.second,
    });
  }
  console.log(`\nDurable state: guard.evaluate with an API key (${SECONDS} s per run, ${COLD} cold keys; Redis and PostgreSQL on loopback)`);
  console.table(rows);
} finally {
  for (const s of closers) await Promise.resolve(s.close?.()).catch(() => undefined);
  for await (const keys of probe.scanStream({ match: `${prefix}*` })) for (const k of keys as string[]) await probe.del(k);
  for (const c of connections) c.disconnect();
  await pool.end();
  await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
  await admin.end();
}
