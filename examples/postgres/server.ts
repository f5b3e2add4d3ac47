// Two instances of the orders API on the recommended durable layout: API key records and revocations in PostgreSQL,
// counters, claims and usage in Redis, Redis in front of PostgreSQL as a read-through cache. Both in this process
// for the demo, each with its own connections as separate machines would have.
// `DATABASE_URL=postgres://… REDIS_URL=redis://… npx tsx examples/postgres/server.ts`, then run the printed curl lines.
import express from 'express';
import { Redis } from 'ioredis';
import pg from 'pg';
import { composeStores, issueApiKey, type TokenStore } from 'token-guard';
import { tokenGuard } from 'token-guard/express';
import { PostgresStore } from 'token-guard/postgres';
import { RedisStore } from 'token-guard/redis';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const tablePrefix = process.env.TG_TABLE_PREFIX ?? 'token_guard_example_';
const redisPrefix = process.env.TG_REDIS_PREFIX ?? 'orders-api:';

const pools: pg.Pool[] = [];
const redisConnections: Redis[] = [];
const stores: TokenStore[] = [];

async function startInstance(name: string): Promise<{ url: string; server: ReturnType<express.Express['listen']> }> {
  // The app owns its connections; the stores never open their own.
  // A connection that does not come within queryTimeout is not waited for (a database that accepts and never answers).
  const pool = new pg.Pool({ connectionString: DATABASE_URL, connectionTimeoutMillis: 500 });
  pool.on('error', () => undefined); // PostgreSQL ending an idle connection must not end the process
  const client = new Redis(REDIS_URL);
  const subscriber = client.duplicate();
  pools.push(pool);
  redisConnections.push(client, subscriber);

  const durable = new PostgresStore({ pool, tablePrefix });
  await durable.migrate(); // idempotent; both instances may run it at once
  // 'warn': in this layout Redis only caches what PostgreSQL keeps (plus counters and claims).
  const redis = new RedisStore({ client, subscriber, prefix: redisPrefix, durability: 'warn' });
  await redis.ready();
  const store = composeStores({ keys: durable, revocations: durable, counters: redis, claims: redis, usage: redis, cache: redis });
  stores.push(store);

  const guard = tokenGuard({
    apiKeys: { prefix: 'tg_' },
    store,
    rules: [
      { methods: ['GET'], path: '/orders/**', scopes: ['orders:read'] },
      { methods: ['POST'], path: '/keys/self/revoke', scopes: ['orders:read'] },
    ],
  });
  const app = express();
  app.use(guard);
  app.get('/orders/:id', (req, res) => void res.json({ instance: name, order: req.params.id }));
  // Written to PostgreSQL first, then fanned out through Redis: the next request on every instance refuses the key.
  app.post('/keys/self/revoke', async (req, res) => {
    const token = req.auth?.token;
    if (!token) return void res.status(401).end();
    await guard.guard.revoke(token, { reason: 'compromised' });
    res.status(204).end();
  });
  const server = app.listen(Number(process.env.PORT ?? 0), '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, server };
}

const a = await startInstance('A');
const b = await startInstance('B');

// A key for the demo, stored once (in PostgreSQL) through instance A's composed store.
const { key, record } = issueApiKey({ prefix: 'tg_', subject: 'svc-reporting', scopes: ['orders:read'], expiresIn: '1d' });
await stores[0]?.putApiKey(record);

console.log(`instance A on ${a.url}, instance B on ${b.url}`);
console.log('# the key works on both instances:');
console.log(`curl -i ${a.url}/orders/42 -H "Authorization: Bearer ${key}"`);
console.log(`curl -i ${b.url}/orders/42 -H "Authorization: Bearer ${key}"`);
console.log('# revoke it on A (204), then B refuses it on its very next request (401 token.revoked):');
console.log(`curl -i -X POST ${a.url}/keys/self/revoke -H "Authorization: Bearer ${key}"`);

async function shutdown(): Promise<void> {
  a.server.close();
  b.server.close();
  for (const s of stores) await s.close?.(); // unsubscribes and flushes usage; leaves the connections to us
  await Promise.all(redisConnections.map((c) => c.quit()));
  await Promise.all(pools.map((p) => p.end()));
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown());
process.on('SIGINT', () => void shutdown());
