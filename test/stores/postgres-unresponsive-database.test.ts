// PostgresStore against a database that accepts TCP and never answers (a hung server, a proxy whose backend is
// gone). pg's pool keeps a request for a connection queued until it gets one, and by default (no
// connectionTimeoutMillis) waits for a new connection forever: the guard answered 503 on time, but each request of the
// outage left one more entry in the pool's queue, without bound. The queue now stops at `maxWaiting` (a request
// beyond it is refused at once, without queueing), and a pool without connectionTimeoutMillis is warned about.
// A real black-holed TCP server on 127.0.0.1; fake time.
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import express from 'express';
import pg from 'pg';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { composeStores, createGuard, issueApiKey, MemoryStore, StoreError, type Decision } from '../../src/index.js';
import { tokenGuard } from '../../src/adapters/express.js';
import { PostgresStore, StoreArgumentError } from '../../src/stores/postgres.js';

const T0 = Date.UTC(2026, 10, 25, 10, 0, 0);

describe('PostgresStore on a database that accepts connections and never answers', () => {
  let hole: Server;
  const sockets = new Set<Socket>();
  const pools: pg.Pool[] = [];

  beforeAll(async () => {
    hole = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => hole.listen(0, '127.0.0.1', resolve));
  });
  afterEach(async () => {
    vi.useRealTimers();
    vi.restoreAllMocks();
    // Connections end (refused from now on), so the pools' queued requests fail and the pools can end.
    for (const s of sockets) s.destroy();
    sockets.clear();
    await Promise.all(pools.splice(0).map((p) => p.end()));
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => hole.close(() => resolve()));
  });

  function blackHoledPool(options: pg.PoolConfig = {}): pg.Pool {
    // As docs/durable-state.md showed it before: no connectionTimeoutMillis, so pg waits for the database forever.
    const pool = new pg.Pool({ connectionString: `postgres://postgres@127.0.0.1:${(hole.address() as AddressInfo).port}/db`, ...options });
    pool.on('error', () => undefined);
    pools.push(pool);
    return pool;
  }

  function composed(durable: PostgresStore) {
    const mem = new MemoryStore();
    return composeStores({ keys: durable, revocations: durable, counters: mem, claims: mem, usage: mem });
  }

  const { key } = issueApiKey({ prefix: 'tg_', subject: 'svc', scopes: ['orders:read'], expiresIn: null });
  const headers = { authorization: `Bearer ${key}` };

  it('warns once per process (TOKEN_GUARD_POSTGRES_CONNECT_TIMEOUT) about a pool without connectionTimeoutMillis', () => {
    const emitWarning = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const ours = () => emitWarning.mock.calls.filter((c) => (c[1] as { code?: string } | undefined)?.code === 'TOKEN_GUARD_POSTGRES_CONNECT_TIMEOUT');
    new PostgresStore({ pool: blackHoledPool({ connectionTimeoutMillis: 500 }) });
    expect(ours()).toHaveLength(0);
    new PostgresStore({ pool: blackHoledPool(), queryTimeout: 300 });
    expect(ours()).toEqual([
      [expect.stringMatching(/no connectionTimeoutMillis.*at most queryTimeout \(300 ms\)/), { type: 'TokenGuardWarning', code: 'TOKEN_GUARD_POSTGRES_CONNECT_TIMEOUT' }],
    ]);
    new PostgresStore({ pool: blackHoledPool({ connectionTimeoutMillis: 0 }) });
    expect(ours()).toHaveLength(1);
  });

  it('refuses a maxWaiting that is not a whole number from 1 at construction (StoreArgumentError)', () => {
    for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '3'] as unknown[]) {
      expect(() => new PostgresStore({ pool: blackHoledPool(), maxWaiting: bad as number })).toThrow(StoreArgumentError);
    }
    expect(() => new PostgresStore({ pool: blackHoledPool(), maxWaiting: 1 })).not.toThrow();
  });

  it('keeps the pool queue at maxWaiting (default 100 × max) however many requests the outage lasts; every one is a 503', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    vi.setSystemTime(T0);
    const pool = blackHoledPool({ max: 2 });
    const guard = createGuard({ apiKeys: { prefix: 'tg_' }, store: composed(new PostgresStore({ pool, queryTimeout: 100 })), unmatched: 'authenticate' });

    for (let wave = 0; wave < 3; wave++) {
      let settled = 0;
      const answers = Array.from({ length: 600 }, () =>
        guard.evaluate({ method: 'GET', path: '/orders/1', headers, remoteAddress: '192.0.2.1' }).then((d: Decision) => {
          settled++;
          return d;
        }),
      );
      // With time standing still, the requests beyond the bound are answered at once: no connection was asked for.
      const refusedAtOnce = wave === 0 ? 600 - 2 - 200 : 600;
      await vi.waitFor(() => expect(settled).toBe(refusedAtOnce), { timeout: 5000, interval: 5 });
      expect(pool.waitingCount).toBe(200);
      await vi.advanceTimersByTimeAsync(150); // past queryTimeout: the queued ones are answered too
      const decisions = await Promise.all(answers);
      expect(new Set(decisions.map((d) => `${d.status} ${d.reason}`))).toEqual(new Set(['503 store.unavailable']));
      expect(pool.waitingCount).toBe(200);
      expect(pool.totalCount).toBe(2);
    }
  });

  it('through Express: a request beyond maxWaiting answers 503 store.unavailable at once, and the queue does not grow', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    vi.setSystemTime(T0);
    const pool = blackHoledPool({ max: 1 });
    const durable = new PostgresStore({ pool, queryTimeout: 100, maxWaiting: 3 });
    // One request holds the pool's only connection attempt, three wait behind it.
    const held = Array.from({ length: 4 }, () =>
      durable.getApiKey('a'.repeat(64)).then(
        () => 'served',
        (e: unknown) => e,
      ),
    );
    await vi.waitFor(() => expect(pool.waitingCount).toBe(3), { timeout: 5000, interval: 5 });

    const app = express();
    app.use(tokenGuard({ apiKeys: { prefix: 'tg_' }, store: composed(durable), rules: [{ path: '/orders/**', scopes: ['orders:read'] }] }));
    app.get('/orders/:id', (_req, res) => void res.json({ ok: true }));
    for (let i = 0; i < 5; i++) {
      const res = await request(app).get('/orders/1').set('Authorization', `Bearer ${key}`);
      expect(res.status).toBe(503);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body).toMatchObject({ status: 503, reason: 'store.unavailable' });
      expect(pool.waitingCount).toBe(3);
    }

    await vi.advanceTimersByTimeAsync(150);
    for (const outcome of await Promise.all(held)) expect(outcome).toBeInstanceOf(StoreError);
  });

  it('with connectionTimeoutMillis at most queryTimeout (the documented setup), the queue empties once the requests are answered', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    vi.setSystemTime(T0);
    const pool = blackHoledPool({ max: 2, connectionTimeoutMillis: 100 });
    const guard = createGuard({ apiKeys: { prefix: 'tg_' }, store: composed(new PostgresStore({ pool, queryTimeout: 100 })), unmatched: 'authenticate' });
    const answers = Array.from({ length: 50 }, () => guard.evaluate({ method: 'GET', path: '/orders/1', headers, remoteAddress: '192.0.2.1' }));
    await vi.advanceTimersByTimeAsync(150);
    expect(new Set((await Promise.all(answers)).map((d) => `${d.status} ${d.reason}`))).toEqual(new Set(['503 store.unavailable']));
    await vi.advanceTimersByTimeAsync(1000);
    expect(pool.waitingCount).toBe(0);
  });
});
