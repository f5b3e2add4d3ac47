// Regression: RedisStore with `durability: 'require'` (the default under NODE_ENV=production) against a stock Redis
// (appendonly no). The first request was served (200) before the start-up check had answered, then every request was
// 503 without a line in the log, and the shutdown docs/redis.md shows (`await store.close(); await client.quit()`)
// rejected from close() with RedisDurabilityError, so client.quit() never ran. Also: a check that got no answer (CONFIG
// GET hanging, Redis down at start-up) was taken as a pass, so a stock Redis that came up later was served from.
// Now every call waits for the verdict within commandTimeout, a check without an answer is asked again, each refusing
// store emits one TOKEN_GUARD_REDIS_DURABILITY_REFUSED warning, and close() never rejects because of the verdict.
// Then (review): ready() resolved alike for a server that refuses CONFIG (served) and a Redis that did not answer
// (refused under 'require'); it now says which (`verdict`) and rejects for the latter. And the warning that a check got
// no answer shared the once-per-process TOKEN_GUARD_REDIS_DURABILITY code (lost when another store had used it): it is
// now TOKEN_GUARD_REDIS_DURABILITY_UNVERIFIED, once per store.
// Against the shared Redis, which runs as a stock one (CONFIG GET works, appendonly is no).
import { once } from 'node:events';
import express from 'express';
import { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from 'vitest';
import { createGuard, type DecisionEvent, type GuardRequest } from '../../src/index.js';
import { tokenGuard } from '../../src/adapters/express.js';
import { RedisDurabilityError, RedisStore } from '../../src/stores/redis.js';
import { freePort, redisBinaries, redisClient, type RedisServer, startRedisServer, stockRedisFor, useSharedRedis } from '../helpers/redis.js';
import { jwtPolicy, NOW, signToken } from '../helpers/tokens.js';
import { afterRejectionsAreReported, collectUnhandledRejections } from '../helpers/unhandled.js';

const stockRedis = await stockRedisFor('redis-durability-require');

const COMMAND_TIMEOUT = 250;
/** How long one check may take: commandTimeout, or 2 s when that is longer. */
const CHECK_TIMEOUT = 2000;

/** Lets real I/O and setImmediate callbacks run (timers may be fake) until `done()`, at most a bounded number of turns. */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 10_000 && !done(); i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

describe.skipIf(!stockRedis)("RedisStore durability: 'require' against a stock Redis (appendonly no)", () => {
  const redis = useSharedRedis('redis-durability-require');
  const unhandled = collectUnhandledRejections();
  let tests = 0;
  const nextPrefix = (): string => `${redis.prefix}${++tests}:`;
  let emitWarning: MockInstance<typeof process.emitWarning>;
  const stores: RedisStore[] = [];
  const clients: Redis[] = [];
  const servers: RedisServer[] = [];

  /** A connection of the test's own, connected (no ioredis connect timer left to count). */
  async function connected(): Promise<Redis> {
    const client = redisClient();
    clients.push(client);
    await client.ping();
    return client;
  }

  /** A store on its own connection, in production (the default mode there, as a new user gets it). */
  function productionStore(client: Redis = redisClient()): { store: RedisStore; client: Redis; prefix: string } {
    vi.stubEnv('NODE_ENV', 'production');
    clients.push(client);
    const prefix = nextPrefix();
    const store = new RedisStore({ client, prefix, commandTimeout: COMMAND_TIMEOUT });
    stores.push(store);
    return { store, client, prefix };
  }

  /**
   * Holds the store's CONFIG GETs back until the store has been asked for a revocation (the guard's lookup is under
   * way): a check slower than a request, deterministically. Mocked before the store is made; returns the connection's
   * GET spy (no GET may reach Redis before the verdict).
   */
  function checkAfterFirstLookup(client: Redis): { heldFor: (store: RedisStore) => void; get: MockInstance } {
    let asked!: () => void;
    const lookedUp = new Promise<void>((resolve) => (asked = resolve));
    const config = client.config.bind(client) as (...args: unknown[]) => Promise<unknown>;
    vi.spyOn(client, 'config').mockImplementation(((...args: unknown[]) => lookedUp.then(() => config(...args))) as never);
    const heldFor = (store: RedisStore): void => {
      const getRevocation = store.getRevocation.bind(store);
      vi.spyOn(store, 'getRevocation').mockImplementation((...args) => {
        const answer = getRevocation(...args);
        asked();
        return answer;
      });
    };
    return { heldFor, get: vi.spyOn(client, 'get') };
  }

  async function guardOn(store: RedisStore) {
    const events: DecisionEvent[] = [];
    const guard = createGuard({ jwt: await jwtPolicy(), store, unmatched: 'authenticate', clock: () => NOW, onDecision: (e) => void events.push(e) });
    const req: GuardRequest = { method: 'GET', path: '/orders/1', headers: { authorization: `Bearer ${await signToken()}` }, remoteAddress: '203.0.113.9' };
    return { guard, events, evaluate: () => guard.evaluate(req) };
  }

  const refusals = () => emitWarning.mock.calls.filter(([, options]) => (options as { code?: string } | undefined)?.code === 'TOKEN_GUARD_REDIS_DURABILITY_REFUSED');

  beforeEach(() => {
    emitWarning = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
  });
  afterEach(async () => {
    vi.useRealTimers();
    vi.unstubAllEnvs();
    emitWarning.mockRestore();
    await Promise.all(stores.splice(0).map((s) => s.close()));
    for (const c of clients.splice(0)) c.disconnect();
    await Promise.all(servers.splice(0).map((s) => s.kill()));
    await afterRejectionsAreReported();
    expect(unhandled).toEqual([]);
  });
  afterAll(() => {
    vi.unstubAllEnvs();
  });

  it('refuses the very first request (503), made before the check has answered, instead of serving it; its audit event says why', async () => {
    const client = redisClient();
    const held = checkAfterFirstLookup(client);
    const { store } = productionStore(client);
    held.heldFor(store);
    const { evaluate, events } = await guardOn(store);
    // No ready(): the first request is made while the check is in flight, as in an app that does not await it.
    const first = await evaluate();
    // Its lookup waited for the verdict, and was never sent.
    expect(held.get).not.toHaveBeenCalled();
    expect(first).toMatchObject({ effect: 'deny', status: 503, reason: 'store.unavailable', detail: 'store call failed' });
    expect(events[0]?.error).toEqual({ name: 'RedisDurabilityError', message: expect.stringContaining('appendonly is no') });
    expect(events[0]?.error?.message).toContain('set appendonly yes');
    expect(events[0]?.error?.message).toContain("durability: 'warn'");
    expect(await evaluate()).toMatchObject({ status: 503, reason: 'store.unavailable' });
    await expect(store.ready()).rejects.toBeInstanceOf(RedisDurabilityError);
  });

  it('through Express: the first request gets 503 problem+json (the reason is logged, never sent), and the documented shutdown completes', async () => {
    const connection = redisClient();
    const held = checkAfterFirstLookup(connection);
    const { store, client } = productionStore(connection);
    held.heldFor(store);
    const app = express();
    app.use(tokenGuard({ jwt: await jwtPolicy(), store, unmatched: 'authenticate', clock: () => NOW }));
    app.get('/orders/:id', (_req, res) => {
      res.json({ ok: true });
    });
    const token = await signToken();
    const res = await request(app).get('/orders/1').set('authorization', `Bearer ${token}`);
    expect(res.status).toBe(503);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ type: 'urn:token-guard:problem:store.unavailable', status: 503, reason: 'store.unavailable' });
    expect(res.text).not.toContain('appendonly');
    expect((await request(app).get('/orders/2').set('authorization', `Bearer ${token}`)).status).toBe(503);
    // docs/redis.md's shutdown, to the end.
    await store.close();
    expect(await client.quit()).toBe('OK');
  });

  it('emits one TOKEN_GUARD_REDIS_DURABILITY_REFUSED warning per refusing store, naming the setting and both ways out', async () => {
    const a = productionStore();
    const { evaluate } = await guardOn(a.store);
    for (let i = 0; i < 3; i++) expect(await evaluate()).toMatchObject({ status: 503 });
    expect(refusals()).toHaveLength(1);
    const [message] = refusals()[0] as [string, unknown];
    expect(message).toContain('refuses every call');
    expect(message).toContain('503 store.unavailable');
    expect(message).toContain('the default under NODE_ENV=production');
    expect(message).toContain('set appendonly yes');
    expect(message).toContain("durability: 'warn'");
    expect(message).toContain(`prefix ${JSON.stringify(a.prefix)}`);
    // Another store (another prefix, possibly another Redis) is named too.
    const b = productionStore();
    await expect(b.store.ready()).rejects.toBeInstanceOf(RedisDurabilityError);
    expect(refusals()).toHaveLength(2);
  });

  it('close() resolves on a refusing store, also with usage it may not write, and counts that usage as dropped', async () => {
    const { store, client } = productionStore();
    const { evaluate } = await guardOn(store);
    expect(await evaluate()).toMatchObject({ status: 503 });
    // Usage the app recorded itself (the guard records none for a refused request): nothing the store may write.
    store.recordUsage('tok-1', { at: NOW.getTime(), ip: '203.0.113.9' });
    await expect(store.close()).resolves.toBeUndefined();
    expect(store.stats()).toMatchObject({ usageBuffered: 0, usageDropped: 1 });
    expect(await client.quit()).toBe('OK');
  });

  it('close() during a check that has not answered resolves and ends the check and its timer; the store stays closed to calls', async () => {
    const connection = await connected();
    // Fake from before the store is made: the check's own timer is one of them.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { store, client } = productionStore(connection);
    vi.spyOn(client, 'config').mockImplementation((() => new Promise(() => undefined)) as never);
    const ready = store.ready();
    await store.close();
    expect(vi.getTimerCount()).toBe(0);
    // No verdict: under 'require' that is no pass, so ready() rejects, saying the check got no answer.
    await expect(ready).rejects.toMatchObject({ name: 'RedisDurabilityError', report: { verdict: 'unanswered', checked: false, error: 'the store was closed first' } });
    await expect(store.getUsage('tok-1')).rejects.toThrow(/closed before the Redis settings were verified/);
  });

  it('a CONFIG GET that hangs: every request fails closed within commandTimeout, also after the check gave up, never served', async () => {
    const connection = await connected();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { store, client } = productionStore(connection);
    const config = vi.spyOn(client, 'config').mockImplementation((() => new Promise(() => undefined)) as never);
    const get = vi.spyOn(client, 'get');
    const asked = vi.spyOn(store, 'getRevocation');
    const { evaluate, events } = await guardOn(store);

    let decision: Awaited<ReturnType<typeof evaluate>> | undefined;
    void evaluate().then((d) => (decision = d));
    // The revocation lookup is under way: only the verdict holds it.
    await until(() => asked.mock.calls.length > 0);
    await vi.advanceTimersByTimeAsync(COMMAND_TIMEOUT - 1);
    expect(decision).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(decision).toMatchObject({ status: 503, reason: 'store.unavailable' });
    expect(events[0]?.error?.message).toMatch(/timed out after 250 ms/);

    // The check gives up: that is no pass, and ready() says so. The next request asks again (and waits again) instead
    // of being served; nothing was ever sent for a lookup.
    const verdict = store.ready();
    await vi.advanceTimersByTimeAsync(CHECK_TIMEOUT);
    await expect(verdict).rejects.toMatchObject({ report: { verdict: 'unanswered', checked: false, error: expect.stringContaining('did not answer') } });
    const checks = config.mock.calls.length;
    decision = undefined;
    void evaluate().then((d) => (decision = d));
    await until(() => config.mock.calls.length > checks);
    await vi.advanceTimersByTimeAsync(COMMAND_TIMEOUT);
    expect(decision).toMatchObject({ status: 503, reason: 'store.unavailable' });
    expect(get).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(CHECK_TIMEOUT);
  });

  it.skipIf(!redisBinaries)('Redis down at start-up: once it is up the check is asked again, and a stock Redis is refused, not served', async () => {
    const port = await freePort();
    vi.stubEnv('NODE_ENV', 'production');
    // Fails fast while nothing listens (one retry per command), reconnects every 20 ms.
    const client = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1, retryStrategy: () => 20 });
    client.on('error', () => undefined);
    clients.push(client);
    const store = new RedisStore({ client, prefix: nextPrefix(), commandTimeout: COMMAND_TIMEOUT });
    stores.push(store);
    const { evaluate, events } = await guardOn(store);
    expect(await evaluate()).toMatchObject({ status: 503, reason: 'store.unavailable' });
    await expect(store.ready()).rejects.toMatchObject({ name: 'RedisDurabilityError', report: { verdict: 'unanswered', checked: false } });

    servers.push(await startRedisServer(port));
    if (client.status !== 'ready') await once(client, 'ready');
    expect(await evaluate()).toMatchObject({ status: 503, reason: 'store.unavailable' });
    expect(events.at(-1)?.error).toMatchObject({ name: 'RedisDurabilityError' });
    expect(refusals()).toHaveLength(1);
    await expect(store.ready()).rejects.toMatchObject({ report: { verdict: 'refused', checked: true } });
  });

  /** A connection to a port nothing listens on, whose commands fail at once (no retry), as a Redis down at start-up. */
  async function down(): Promise<Redis> {
    const client = new Redis({ host: '127.0.0.1', port: await freePort(), maxRetriesPerRequest: 0, retryStrategy: () => 200 });
    client.on('error', () => undefined);
    clients.push(client);
    return client;
  }

  it.skipIf(!redisBinaries)('ready() tells a Redis it serves from one it refuses: a server that refuses CONFIG resolves, one that does not answer rejects', async () => {
    // The same shape before (checked: false, an error, no issues), opposite behaviour: only one of them serves.
    const renamed = await startRedisServer(await freePort(), ['--rename-command', 'CONFIG', '']);
    servers.push(renamed);
    const served = productionStore(new Redis({ host: '127.0.0.1', port: renamed.port }));
    expect(await served.store.ready()).toMatchObject({ verdict: 'unverifiable', checked: false, error: expect.stringContaining('unknown command') });
    expect(await served.store.getRevocation('jti-1', undefined, NOW.getTime())).toBeUndefined();

    const refused = productionStore(await down());
    const err = await refused.store.ready().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RedisDurabilityError);
    expect(err).toMatchObject({ code: 'store.unavailable', status: 503, report: { verdict: 'unanswered', checked: false, issues: [] } });
    expect((err as Error).message).toMatch(/could not read the Redis settings .*must verify before it serves/);
    await expect(Promise.resolve(refused.store.getRevocation('jti-1', undefined, NOW.getTime()))).rejects.toMatchObject({ status: 503 });

    // And a stock Redis: refused under 'require', served under 'warn' (issues either way), not read under 'ignore'.
    await expect(productionStore().store.ready()).rejects.toMatchObject({
      report: { verdict: 'refused', checked: true, issues: [expect.stringContaining('appendonly is no')] },
    });
    const warned = new RedisStore({ client: await connected(), prefix: nextPrefix(), durability: 'warn' });
    const ignored = new RedisStore({ client: await connected(), prefix: nextPrefix(), durability: 'ignore' });
    stores.push(warned, ignored);
    expect(await warned.ready()).toMatchObject({ verdict: 'warned', checked: true, issues: [expect.stringContaining('appendonly is no')] });
    expect(await ignored.ready()).toMatchObject({ verdict: 'skipped', checked: false });
  });

  it('a store whose check gets no answer warns TOKEN_GUARD_REDIS_DURABILITY_UNVERIFIED, once per store, also after another store used TOKEN_GUARD_REDIS_DURABILITY', async () => {
    const warned = new RedisStore({ client: await connected(), prefix: nextPrefix(), durability: 'warn' });
    stores.push(warned);
    // The once-per-process TOKEN_GUARD_REDIS_DURABILITY is spent now (here, or by an earlier test of this file).
    expect(await warned.ready()).toMatchObject({ verdict: 'warned' });
    const a = productionStore(await down());
    const b = productionStore(await down());
    for (const { store } of [a, b]) {
      for (let i = 0; i < 2; i++) await expect(store.ready()).rejects.toMatchObject({ report: { verdict: 'unanswered' } });
    }
    const unverified = emitWarning.mock.calls.filter(([, options]) => (options as { code?: string } | undefined)?.code === 'TOKEN_GUARD_REDIS_DURABILITY_UNVERIFIED');
    // Their first checks run side by side from construction: in either order.
    expect(unverified.map(([message]) => String(message).match(/prefix "([^"]*)"/)?.[1]).sort()).toEqual([a.prefix, b.prefix].sort());
    const [message] = unverified[0] as [string, unknown];
    expect(message).toContain('could not read the Redis settings');
    expect(message).toContain('the default under NODE_ENV=production');
    expect(message).toContain('calls fail (503 store.unavailable) until a check gets an answer');
    expect(message).toContain('appendonly yes');
  });
});
