// Faults against a redis-server this test starts and kills on a free port: unreachable at start, killed mid-traffic,
// a hanging command, a restart. Every request that needs the store answers 503 in bounded time, never 200; then recovers.
import express from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Redis } from 'ioredis';
import { issueApiKey, type DecisionEvent } from '../../src/index.js';
import { tokenGuard } from '../../src/adapters/express.js';
import { RedisStore } from '../../src/stores/redis.js';
import { basePolicy, NOW, signToken } from '../helpers/tokens.js';
import { freePort, redisBinaries, startRedisServer, type RedisServer } from '../helpers/redis.js';

const COMMAND_TIMEOUT = 250;
// A bound, not a speed target: commandTimeout plus generous room for a busy 2-core machine.
const BOUND = COMMAND_TIMEOUT * 6;

interface Instance {
  app: express.Express;
  store: RedisStore;
  client: Redis;
  subscriber: Redis;
  events: DecisionEvent[];
}

/** An app on a RedisStore whose client uses ioredis defaults (reconnects on its own): nothing is restarted in these tests. */
async function instance(port: number): Promise<Instance> {
  const client = new Redis({ host: '127.0.0.1', port });
  const subscriber = new Redis({ host: '127.0.0.1', port });
  client.on('error', () => undefined);
  subscriber.on('error', () => undefined);
  const store = new RedisStore({ client, subscriber, commandTimeout: COMMAND_TIMEOUT });
  const events: DecisionEvent[] = [];
  const app = express();
  // The rate limit makes every request need the store (consume), whatever the near-cache holds.
  app.use(tokenGuard(await basePolicy({ store, rateLimit: { limit: 1_000_000, window: '1m' }, onDecision: (e) => void events.push(e) })));
  app.get('/orders/:id', (_req, res) => void res.json({ ok: true }));
  return { app, store, client, subscriber, events };
}

async function timed(app: express.Express, token: string): Promise<{ status: number; reason: string | undefined; ms: number }> {
  const start = performance.now();
  const res = await request(app).get('/orders/1').set('Authorization', `Bearer ${token}`);
  return { status: res.status, reason: (res.body as { reason?: string }).reason, ms: performance.now() - start };
}

async function untilOk(app: express.Express, token: string): Promise<void> {
  await vi.waitFor(async () => expect((await timed(app, token)).status).toBe(200), { timeout: 15_000, interval: 100 });
}

describe.skipIf(!redisBinaries)('RedisStore under Redis faults (a redis-server this test owns)', () => {
  const servers: RedisServer[] = [];
  const instances: Instance[] = [];
  let token: string;

  beforeAll(async () => {
    token = await signToken({ scope: 'orders:read', jti: 'faults-1' });
  });
  afterAll(async () => {
    for (const i of instances) {
      await i.store.close().catch(() => undefined);
      i.client.disconnect();
      i.subscriber.disconnect();
    }
    for (const s of servers) await s.kill();
  });

  it('Redis unreachable at start: 503 store.unavailable within a bounded time; served once Redis comes up, no restart', async () => {
    const port = await freePort();
    const app = await instance(port);
    instances.push(app);
    for (let i = 0; i < 3; i++) {
      const r = await timed(app.app, token);
      expect(r).toMatchObject({ status: 503, reason: 'store.unavailable' });
      expect(r.ms).toBeLessThan(BOUND);
    }
    expect(app.events.at(-1)).toMatchObject({ reason: 'store.unavailable', error: { name: 'StoreError' } });
    servers.push(await startRedisServer(port));
    await untilOk(app.app, token);
  });

  describe('one server through an outage', () => {
    let server: RedisServer;
    let app: Instance;
    let apiKey: string;
    let port: number;

    beforeAll(async () => {
      port = await freePort();
      server = await startRedisServer(port);
      servers.push(server);
      app = await instance(port);
      instances.push(app);
      const issued = issueApiKey({ prefix: 'tg_', subject: 'svc', scopes: ['orders:read'], expiresIn: '30d', now: new Date(NOW.getTime() - 1000) });
      await app.store.putApiKey(issued.record);
      apiKey = issued.key;
      await vi.waitFor(() => expect(app.store.stats().nearCacheEnabled).toBe(true));
      await untilOk(app.app, token);
    });

    it('a hanging command (CLIENT PAUSE from another connection): 503 within about commandTimeout, then served again', async () => {
      const admin = new Redis({ host: '127.0.0.1', port });
      await admin.call('CLIENT', 'PAUSE', '1500', 'ALL');
      const r = await timed(app.app, token);
      expect(r).toMatchObject({ status: 503, reason: 'store.unavailable' });
      expect(r.ms).toBeLessThan(BOUND);
      expect(r.ms).toBeGreaterThanOrEqual(COMMAND_TIMEOUT - 5);
      expect(app.events.at(-1)?.error?.message).toMatch(/timed out after 250 ms/);
      await untilOk(app.app, token);
      admin.disconnect();
    });

    it('killed mid-traffic: every request after the kill is 503, never 200; none takes unbounded time', async () => {
      const results: { status: number; ms: number; afterKill: boolean }[] = [];
      let killed = false;
      let stop = false;
      const traffic = async (credential: string) => {
        while (!stop) {
          const afterKill = killed;
          const r = await timed(app.app, credential);
          results.push({ status: r.status, ms: r.ms, afterKill });
        }
      };
      const loops = [traffic(token), traffic(apiKey), traffic(token)];
      await vi.waitFor(() => expect(results.filter((r) => r.status === 200).length).toBeGreaterThan(30), { timeout: 10_000, interval: 5 });
      await server.kill();
      killed = true;
      await vi.waitFor(() => expect(results.filter((r) => r.afterKill).length).toBeGreaterThan(20), { timeout: 20_000, interval: 20 });
      stop = true;
      await Promise.all(loops);
      const after = results.filter((r) => r.afterKill);
      expect(new Set(after.map((r) => r.status))).toEqual(new Set([503]));
      expect(Math.max(...results.map((r) => r.ms))).toBeLessThan(BOUND);
      expect(new Set(results.map((r) => r.status))).toEqual(new Set([200, 503]));
    });

    it('the near-cache is off while Redis is down, so nothing is answered from it', async () => {
      expect(app.store.stats().nearCacheEnabled).toBe(false);
    });

    it('Redis restarted on the same port: requests succeed again with no app restart', async () => {
      server = await startRedisServer(port);
      servers.push(server);
      await untilOk(app.app, token);
      for (let i = 0; i < 5; i++) expect((await timed(app.app, token)).status).toBe(200);
      // State did not survive (no persistence), but the store works again, near-cache included.
      await vi.waitFor(() => expect(app.store.stats().nearCacheEnabled).toBe(true), { timeout: 15_000 });
      expect((await timed(app.app, apiKey)).reason).toBe('token.invalid');
    });
  });
});
