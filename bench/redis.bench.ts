// `npm run bench` (part 2): guard.evaluate through RedisStore (revocation lookup near-cached or not), and how long a
// revocation on instance A takes until instance B refuses the token (two stores, separate connections).
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { SignJWT } from 'jose';
import { createGuard, type Guard, type GuardRequest } from 'token-guard';
import { RedisStore } from 'token-guard/redis';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const NOW = new Date('2026-11-25T10:00:00Z');
const iat = Math.floor(NOW.getTime() / 1000);
const SECRET = new TextEncoder().encode('bench-secret-bench-secret-bench-secret!!');
const REVOCATIONS = 1000;

const probe = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
probe.on('error', () => undefined);
try {
  await probe.connect();
} catch {
  console.warn(`redis bench skipped: no Redis at ${REDIS_URL} (redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no)`);
  process.exit(0);
}

const prefix = `bench-${randomBytes(4).toString('hex')}:`;
const connections: Redis[] = [probe];
const connect = () => {
  const c = new Redis(REDIS_URL);
  connections.push(c);
  return c;
};
const stores: RedisStore[] = [];
function guardOn(nearCache: boolean): Guard {
  const store = new RedisStore({ client: connect(), prefix, ...(nearCache && { subscriber: connect() }) });
  stores.push(store);
  return createGuard({
    jwt: { issuer: 'https://id.example.com/', audience: 'api://orders', algorithms: ['HS256'], secret: SECRET },
    store,
    clock: () => NOW,
    rules: [{ methods: ['GET'], path: '/orders/**', scopes: ['orders:read'] }],
  });
}
const sign = (jti: string) =>
  new SignJWT({ scope: 'orders:read', jti })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer('https://id.example.com/')
    .setAudience('api://orders')
    .setSubject('alice')
    .setIssuedAt(iat)
    .setExpirationTime(iat + 3600)
    .sign(SECRET);
const request = (token: string): GuardRequest => ({ method: 'GET', path: '/orders/42', headers: { authorization: `Bearer ${token}` }, remoteAddress: '10.1.2.3' });

/** Decisions per second with `inFlight` evaluations outstanding at a time, for `seconds`. */
async function throughput(guard: Guard, req: GuardRequest, inFlight: number, seconds = 2): Promise<number> {
  for (let i = 0; i < 2000; i++) await guard.evaluate(req); // warm-up: JIT, JWT cache, near-cache
  let n = 0;
  const end = performance.now() + seconds * 1000;
  const start = performance.now();
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

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;

/** Revokes REVOCATIONS tokens on A, each first cached as "not revoked" on B; times revoke start → B refuses. */
async function propagation(a: Guard, b: Guard): Promise<{ median: number; p99: number; max: number; firstTry: number }> {
  const tokens = await Promise.all(Array.from({ length: REVOCATIONS }, (_, i) => sign(`prop-${i}-${randomBytes(3).toString('hex')}`)));
  const times: number[] = [];
  let firstTry = 0;
  for (const token of tokens) {
    const req = request(token);
    const before = await b.evaluate(req);
    await b.evaluate(req); // a near-cached B now holds "not revoked"
    if (before.reason !== 'ok' || !before.token) throw new Error(`bench: expected ok, got ${before.reason}`);
    const t0 = performance.now();
    await a.revoke(before.token.id, { now: NOW, expiresAt: (iat + 3600) * 1000 });
    let tries = 0;
    while ((await b.evaluate(req)).reason !== 'token.revoked') tries++;
    times.push(performance.now() - t0);
    if (tries === 0) firstTry++;
  }
  times.sort((x, y) => x - y);
  return { median: percentile(times, 50), p99: percentile(times, 99), max: times.at(-1) as number, firstTry };
}

try {
  const token = await sign('cached-jwt');
  const plain = guardOn(false);
  const cached = guardOn(true);
  while (!stores[1]?.stats().nearCacheEnabled) await new Promise((r) => setTimeout(r, 5));

  const rows: Record<string, string | number>[] = [];
  for (const [name, guard] of [
    ['uncached revocation check (1 round trip)', plain],
    ['near-cached revocation check', cached],
  ] as const) {
    rows.push({
      'cached JWT through RedisStore': name,
      'decisions/s, 1 in flight': await throughput(guard, request(token), 1),
      'decisions/s, 64 in flight': await throughput(guard, request(token), 64),
    });
  }
  console.log('\nRedisStore: guard.evaluate decisions per second (one core, Redis on loopback)');
  console.table(rows);

  const out: Record<string, string | number>[] = [];
  for (const [name, near] of [
    ['near-cache on both', true],
    ['no near-cache', false],
  ] as const) {
    const a = guardOn(near);
    const b = guardOn(near);
    while (near && !(stores.at(-1)?.stats().nearCacheEnabled && stores.at(-2)?.stats().nearCacheEnabled)) await new Promise((r) => setTimeout(r, 5));
    const r = await propagation(a, b);
    out.push({
      'revoke on A → refused on B': name,
      'median ms': r.median.toFixed(3),
      'p99 ms': r.p99.toFixed(3),
      'max ms': r.max.toFixed(3),
      'refused on the first request after revoke': `${r.firstTry}/${REVOCATIONS}`,
    });
  }
  console.log(`\nRevocation propagation between two instances (${REVOCATIONS} revocations each)`);
  console.table(out);
} finally {
  for (const s of stores) await s.close().catch(() => undefined);
  for await (const keys of probe.scanStream({ match: `${prefix}*` })) for (const k of keys as string[]) await probe.del(k);
  for (const c of connections) c.disconnect();
}
