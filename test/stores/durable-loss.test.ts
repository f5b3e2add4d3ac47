// Losing state, with real servers: Redis flushed mid-traffic or killed, PostgreSQL unreachable (a proxy in front of
// it is cut) or its connections terminated, and two guard instances sharing the composed store. Through a real
// Express app (supertest): a revoked token is never accepted, a valid key is never refused once a server is back,
// 503 while neither answers, and recovery without a restart.
import { createServer, Socket, type Server } from 'node:net';
import express from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Redis } from 'ioredis';
import pg from 'pg';
import { composeStores, issueApiKey, type ApiKeyRecord, type TokenStore } from '../../src/index.js';
import { tokenGuard, type TokenGuardMiddleware } from '../../src/adapters/express.js';
import { PostgresStore } from '../../src/stores/postgres.js';
import { RedisStore } from '../../src/stores/redis.js';
import { createTestDatabase, dropTestDatabase, pgPool, pgUp, PG_URL, tablePrefix } from '../helpers/postgres.js';
import { freePort, redisBinaries, type RedisServer, startRedisServer } from '../helpers/redis.js';
import { AUDIENCE, ISSUER, NOW, NOW_S, signToken, testKeys } from '../helpers/tokens.js';

/** A TCP proxy to PostgreSQL that a test can cut (connections refused, open ones dropped) and restore. */
class CuttableProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  constructor(
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  open(): Promise<void> {
    const server = createServer((client) => {
      const upstream = new Socket();
      this.sockets.add(client).add(upstream);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      upstream.connect(this.target.port, this.target.host, () => {
        client.pipe(upstream);
        upstream.pipe(client);
      });
    });
    this.server = server;
    return new Promise((resolve) => server.listen(this.port, '127.0.0.1', () => resolve()));
  }

  cut(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    const server = this.server;
    this.server = undefined;
    return new Promise((resolve) => (server ? server.close(() => resolve()) : resolve()));
  }
}

const nowMs = NOW.getTime();
const pgTarget = (() => {
  const u = new URL(PG_URL);
  return { host: u.hostname, port: Number(u.port || 5432) };
})();

describe.skipIf(!pgUp || !redisBinaries)('durable state under loss: PostgreSQL + Redis, through Express', () => {
  let db: { name: string; url: string };
  let redisServer: RedisServer;
  let redisPort: number;
  let proxy: CuttableProxy;
  const pools: pg.Pool[] = [];
  const redisConns: Redis[] = [];
  const stores: TokenStore[] = [];
  let prefix: string;
  let seq = 0;

  function redis(): Redis {
    // Few retries and a short connect timeout: a dead server is noticed within a request, as in production tuning.
    const c = new Redis({ host: '127.0.0.1', port: redisPort, maxRetriesPerRequest: 1, connectTimeout: 300, retryStrategy: () => 50 });
    c.on('error', () => undefined);
    redisConns.push(c);
    return c;
  }

  function pool(): pg.Pool {
    const u = new URL(db.url);
    u.port = String(proxy.port);
    const p = pgPool(u.toString(), { connectionTimeoutMillis: 1000, max: 10 });
    pools.push(p);
    return p;
  }

  interface Instance {
    app: express.Express;
    guard: TokenGuardMiddleware;
    store: TokenStore;
    durable: PostgresStore;
    cache: RedisStore;
  }

  async function instance(): Promise<Instance> {
    const p = pool();
    // Connections opened up front, as an app does at start: opening ten at once under load can take a second.
    await Promise.all(Array.from({ length: 10 }, () => p.query('SELECT 1')));
    const durable = new PostgresStore({ pool: p, tablePrefix: prefix, queryTimeout: 2000 });
    const cache = new RedisStore({ client: redis(), subscriber: redis(), prefix: `${prefix}:`, commandTimeout: 250, durability: 'ignore' });
    await vi.waitFor(() => expect(cache.stats().nearCacheEnabled).toBe(true), { timeout: 5000, interval: 5 });
    const store = composeStores({ keys: durable, revocations: durable, counters: cache, claims: cache, usage: cache, cache });
    stores.push(store);
    const keys = await testKeys();
    const guard = tokenGuard({
      jwt: { issuer: ISSUER, audience: AUDIENCE, algorithms: ['RS256'], keys: [keys.rsaPublicJwk] },
      apiKeys: { prefix: 'tg_' },
      store,
      storeTimeout: '5s',
      clock: () => NOW,
      rules: [{ methods: ['GET'], path: '/orders/**', scopes: ['orders:read'] }],
    });
    const app = express();
    app.use(guard);
    app.get('/orders/:id', (_req, res) => void res.json({ ok: true }));
    return { app, guard, store, durable, cache };
  }

  const call = (app: express.Express, token: string) => request(app).get('/orders/1').set('Authorization', `Bearer ${token}`);
  const jwt = (sub = 'alice') => {
    const jti = `loss-${seq++}`;
    return signToken({ jti, scope: 'orders:read' }, { sub }).then((token) => ({ token, jti }));
  };
  const apiKey = async (store: TokenStore, subject = 'svc'): Promise<{ key: string; record: ApiKeyRecord }> => {
    const issued = issueApiKey({ prefix: 'tg_', subject, scopes: ['orders:read'], expiresIn: '30d', now: new Date(nowMs - 1000) });
    await store.putApiKey(issued.record);
    return issued;
  };
  const expiresAt = (NOW_S + 3600) * 1000;

  let a: Instance;

  beforeAll(async () => {
    db = await createTestDatabase('loss');
    redisPort = await freePort();
    redisServer = await startRedisServer(redisPort);
    proxy = new CuttableProxy(await freePort(), pgTarget);
    await proxy.open();
    prefix = tablePrefix();
    const migrator = new PostgresStore({ pool: pool(), tablePrefix: prefix });
    await migrator.migrate();
    a = await instance();
  }, 60_000);

  afterAll(async () => {
    for (const s of stores) await Promise.resolve(s.close?.()).catch(() => undefined);
    for (const c of redisConns) c.disconnect();
    await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
    await proxy?.cut();
    await redisServer?.kill();
    if (db) await dropTestDatabase(db.name);
  });

  it('Redis flushed mid-traffic: no revoked token is accepted, no valid key or token is refused', async () => {
    const validKeys: Awaited<ReturnType<typeof apiKey>>[] = [];
    const revokedKeys: Awaited<ReturnType<typeof apiKey>>[] = [];
    for (let i = 0; i < 8; i++) validKeys.push(await apiKey(a.store));
    for (let i = 0; i < 8; i++) revokedKeys.push(await apiKey(a.store));
    const validJwts = await Promise.all(Array.from({ length: 8 }, () => jwt()));
    const revokedJwts = await Promise.all(Array.from({ length: 8 }, () => jwt()));
    const bobs = await Promise.all(Array.from({ length: 4 }, () => jwt('bob')));
    for (const k of revokedKeys) await a.guard.guard.revoke(k.record.id, { expiresAt: k.record.expiresAt as number });
    for (const t of revokedJwts) await a.guard.guard.revoke(t.jti, { expiresAt });
    await a.guard.guard.revokeSubject('bob', { before: nowMs + 1000, expiresAt });

    const valid = [...validKeys.map((k) => k.key), ...validJwts.map((t) => t.token)];
    const revoked = [...revokedKeys.map((k) => k.key), ...revokedJwts.map((t) => t.token), ...bobs.map((t) => t.token)];
    const wrong: string[] = [];
    // Six requests in flight at a time: enough to interleave with a flush, few enough for a loaded shared machine.
    const inChunks = async (tokens: string[]) => {
      const out: request.Response[] = [];
      for (let i = 0; i < tokens.length; i += 6) out.push(...(await Promise.all(tokens.slice(i, i + 6).map((t) => call(a.app, t)))));
      return out;
    };
    const round = async (r: number) => {
      const [ok, refused] = await Promise.all([inChunks(valid), inChunks(revoked)]);
      ok.forEach((res, i) => res.status !== 200 && wrong.push(`round ${r}: valid #${i} got ${res.status}`));
      refused.forEach((res, i) => (res.status !== 401 || res.body.reason !== 'token.revoked') && wrong.push(`round ${r}: revoked #${i} got ${res.status}`));
    };
    await round(0);
    await round(1);
    // Flushed while requests are in flight, then again between rounds.
    const flushing = Promise.all([round(2), redisConns[0]?.flushall()]);
    await flushing;
    await round(3);
    await redisConns[0]?.flushall();
    await round(4);
    expect(wrong).toEqual([]);
    // Read through again: the records and revocations are back in Redis from PostgreSQL.
    expect(await redisConns[0]?.dbsize()).toBeGreaterThan(0);
  });

  it('Redis down: PostgreSQL answers alone; a revocation made meanwhile is stored, then fanned out once Redis is back', async () => {
    const k = await apiKey(a.store);
    const t = await jwt();
    expect((await call(a.app, k.key)).status).toBe(200);
    await redisServer.kill();
    expect((await call(a.app, k.key)).status).toBe(200);
    expect((await call(a.app, t.token)).status).toBe(200);
    await expect(a.guard.guard.revoke(t.jti, { expiresAt })).rejects.toMatchObject({ name: 'StoreError', message: expect.stringContaining('stored durably') });
    expect((await call(a.app, t.token)).body.reason).toBe('token.revoked');
    redisServer = await startRedisServer(redisPort);
    await vi.waitFor(() => expect(a.cache.stats().nearCacheEnabled).toBe(true), { timeout: 10_000, interval: 20 });
    // The pending fan-out lands within its retry interval; from then on Redis holds the revocation too.
    await vi.waitFor(async () => expect(await redisConns[0]?.exists(`${prefix}:{t:${t.jti}}:rev`)).toBe(1), { timeout: 10_000, interval: 50 });
    expect((await call(a.app, t.token)).body.reason).toBe('token.revoked');
    expect((await call(a.app, k.key)).status).toBe(200);
  }, 30_000);

  it('neither answering: 503 store.unavailable within the store timeout; both back: served again without a restart', async () => {
    const cold = await apiKey(a.store);
    const revoked = await apiKey(a.store);
    await a.guard.guard.revoke(revoked.record.id, { expiresAt: revoked.record.expiresAt as number });
    await redisServer.kill();
    await proxy.cut();
    const res = await call(a.app, cold.key);
    expect([res.status, res.body.reason]).toEqual([503, 'store.unavailable']);
    expect((await call(a.app, revoked.key)).status).toBe(503);
    redisServer = await startRedisServer(redisPort);
    await proxy.open();
    await vi.waitFor(async () => expect((await call(a.app, cold.key)).status).toBe(200), { timeout: 10_000, interval: 50 });
    expect((await call(a.app, revoked.key)).body.reason).toBe('token.revoked');
  }, 30_000);

  it('PostgreSQL unreachable: what Redis holds is still answered, a cold record is 503; recovery without a restart', async () => {
    const warm = await apiKey(a.store);
    const cold = await apiKey(a.store);
    expect((await call(a.app, warm.key)).status).toBe(200);
    await proxy.cut();
    expect((await call(a.app, warm.key)).status).toBe(200);
    const res = await call(a.app, cold.key);
    expect([res.status, res.body.reason]).toEqual([503, 'store.unavailable']);
    await proxy.open();
    await vi.waitFor(async () => expect((await call(a.app, cold.key)).status).toBe(200), { timeout: 10_000, interval: 50 });
  }, 30_000);

  it('PostgreSQL backends terminated (pg_terminate_backend): at worst 503, never a wrong answer, and the pool recovers', async () => {
    const keys = await Promise.all(Array.from({ length: 4 }, () => apiKey(a.store)));
    const revoked = await apiKey(a.store);
    await a.guard.guard.revoke(revoked.record.id, { expiresAt: revoked.record.expiresAt as number });
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    const statuses: number[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        await redisConns[0]?.flushall();
        await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [db.name]);
        for (const k of keys) statuses.push((await call(a.app, k.key)).status);
        const r = await call(a.app, revoked.key);
        expect(r.status === 503 || r.body.reason === 'token.revoked').toBe(true);
      }
    } finally {
      await admin.end();
    }
    expect(statuses.every((s) => s === 200 || s === 503)).toBe(true);
    await vi.waitFor(async () => expect((await Promise.all(keys.map((k) => call(a.app, k.key)))).map((r) => r.status)).toEqual([200, 200, 200, 200]), {
      timeout: 10_000,
      interval: 50,
    });
  }, 30_000);

  it('two instances on the composed store: one revokes, the other refuses on its very next request', async () => {
    const b = await instance();
    const t = await jwt();
    const k = await apiKey(a.store);
    const carol = await jwt('carol');
    for (const token of [t.token, k.key, carol.token]) {
      expect((await call(b.app, token)).status).toBe(200);
      expect((await call(b.app, token)).status).toBe(200);
    }
    const hits = b.cache.stats().nearCacheHits;
    expect(hits).toBeGreaterThan(0);
    await a.guard.guard.revoke(t.jti, { expiresAt });
    expect((await call(b.app, t.token)).body.reason).toBe('token.revoked');
    await a.guard.guard.revoke(k.record.id, { expiresAt: k.record.expiresAt as number });
    expect((await call(b.app, k.key)).body.reason).toBe('token.revoked');
    await a.guard.guard.revokeSubject('carol', { before: nowMs + 1000, expiresAt });
    expect((await call(b.app, carol.token)).body.reason).toBe('token.revoked');
    // And through a record change: B reads the updated record on its next request (scopes taken away).
    const k2 = await apiKey(a.store);
    expect((await call(b.app, k2.key)).status).toBe(200);
    await a.store.updateApiKey(k2.record.hash, { scopes: [] });
    expect((await call(b.app, k2.key)).status).toBe(403);
  }, 30_000);
});
