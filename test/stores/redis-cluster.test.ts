// RedisStore on a real three-master Redis Cluster that this test starts on free loopback ports and tears down:
// the conformance suite (plain and near-cached) and the two-instance revocation scenario, through an ioredis Cluster.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Cluster, Redis } from 'ioredis';
import type { TokenStore } from '../../src/index.js';
import { RedisStore } from '../../src/stores/redis.js';
import { storeConformance } from '../../src/testing/conformance.js';
import { deletePrefix, freePort, keysWithPrefix, randomPrefix, redisBinaries, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { twoInstanceScenario } from './two-instance-scenario.js';

const RUN = randomPrefix('cluster');

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${out}`))));
  });
}

describe.skipIf(!redisBinaries)('RedisStore on a three-master Redis Cluster', () => {
  const nodes: RedisServer[] = [];
  const clients: (Redis | Cluster)[] = [];
  let dir: string | undefined;
  let cluster: Cluster;
  let seeds: { host: string; port: number }[] = [];
  let n = 0;
  const prefixes = new WeakMap<TokenStore, string>();

  const connect = (): Cluster => {
    const c = new Cluster(seeds);
    c.on('error', () => undefined);
    clients.push(c);
    return c;
  };
  // The nodes die with the test process even if it is killed before afterAll runs.
  const killAll = () => {
    for (const node of nodes) if (node.process.exitCode === null && node.process.pid) process.kill(node.process.pid, 'SIGKILL');
  };
  process.once('exit', killAll);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tg-cluster-'));
    for (let i = 0; i < 3; i++) {
      const port = await freePort(true);
      nodes.push(
        await startRedisServer(port, ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--dir', dir, '--cluster-node-timeout', '2000']),
      );
    }
    seeds = nodes.map((s) => ({ host: '127.0.0.1', port: s.port }));
    await run('redis-cli', ['--cluster', 'create', ...seeds.map((s) => `127.0.0.1:${s.port}`), '--cluster-replicas', '0', '--cluster-yes']);
    for (const s of seeds) {
      const probe = new Redis({ port: s.port, host: s.host });
      await vi.waitFor(async () => expect(await probe.cluster('INFO')).toMatch(/cluster_state:ok/), { timeout: 30_000, interval: 100 });
      probe.disconnect();
    }
    cluster = connect();
    await vi.waitFor(() => expect(cluster.status).toBe('ready'), { timeout: 10_000 });
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) c.disconnect();
    for (const node of nodes) await node.kill();
    process.off('exit', killAll);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const makeStore = (subscriber?: Cluster): RedisStore => {
    const prefix = `${RUN}${n++}:`;
    const store = new RedisStore({ client: cluster, prefix, ...(subscriber && { subscriber }) });
    prefixes.set(store, prefix);
    return store;
  };
  const cleanup = async (store: TokenStore) => void (await deletePrefix(cluster, prefixes.get(store) as string));

  /** Has the server drop the connection `sub` subscribes on, as a failing node or a proxy would; resolves once ioredis has another. */
  const killSubscriberConnection = async (sub: Cluster): Promise<void> => {
    const inner = (sub as unknown as { subscriber: { getInstance(): Redis } }).subscriber;
    const old = inner.getInstance();
    const node = new Redis({ host: old.options.host, port: old.options.port });
    const line = ((await node.client('LIST')) as string).split('\n').find((l) => l.includes(`addr=127.0.0.1:${old.stream.localPort} `)) as string;
    await node.client('KILL', 'ID', /\bid=(\d+)/.exec(line)?.[1] as string);
    node.disconnect();
    await vi.waitFor(() => expect(inner.getInstance()).not.toBe(old), { timeout: 10_000, interval: 5 });
  };

  /** A near-cached store on its own Cluster subscriber, once its cache is on. */
  const nearCachedStore = async (): Promise<{ sub: Cluster; store: RedisStore; prefix: string }> => {
    const sub = connect();
    const store = makeStore(sub);
    await vi.waitFor(() => expect(store.stats().nearCacheEnabled).toBe(true), { timeout: 10_000, interval: 5 });
    return { sub, store, prefix: prefixes.get(store) as string };
  };
  /**
   * Caches `token` as not revoked in `store`, then revokes it behind the store's back (no invalidation), as a
   * revocation published while its subscriber is between connections: only a read from Redis finds it.
   */
  const cacheThenRevokeUnheard = async (store: RedisStore, token: string): Promise<void> => {
    expect(await store.getRevocation(token, undefined, 5_000)).toBeUndefined();
    // Cached: answered without a round trip.
    expect(store.getRevocation(token, undefined, 5_000)).toBeUndefined();
    await cluster.set(`${prefixes.get(store)}{t:${token}}:rev`, JSON.stringify({ at: 1_000, exp: null }));
  };

  it('is a real cluster: three masters, slots spread over them', async () => {
    expect(cluster.nodes('master').length).toBe(3);
    const slots = (await cluster.cluster('SLOTS')) as unknown[];
    expect(slots.length).toBeGreaterThanOrEqual(3);
  });

  storeConformance('RedisStore on Cluster', () => makeStore(), { describe, it, expect }, { cleanup, timeout: 20_000, lifecycle: true });

  storeConformance(
    'RedisStore on Cluster with near-cache',
    async () => {
      const store = makeStore(connect());
      await vi.waitFor(() => expect(store.stats().nearCacheEnabled).toBe(true), { timeout: 10_000, interval: 5 });
      return store;
    },
    { describe, it, expect },
    { cleanup, timeout: 20_000 },
  );

  it('spreads different tokens over several nodes while each token’s keys stay on one', async () => {
    const store = makeStore();
    const prefix = prefixes.get(store) as string;
    for (let i = 0; i < 30; i++) {
      await store.consume(
        `tok-${i}`,
        [
          { name: 'policy', limit: 5, windowMs: 60_000 },
          { name: 'rule:1', limit: 2, windowMs: 1000 },
        ],
        0,
      );
      await store.revoke(`tok-${i}`, { now: 0 });
    }
    const perNode = await Promise.all(cluster.nodes('master').map((node) => keysWithPrefix(node, prefix)));
    expect(perNode.filter((keys) => keys.length > 0).length).toBeGreaterThan(1);
    for (const keys of perNode) {
      for (const key of keys) {
        const tag = key.slice(key.indexOf('{'), key.indexOf('}') + 1);
        // Every key of this token is on this same node.
        expect(keys.filter((k) => k.startsWith(`${prefix}${tag}`)).length).toBe(3);
      }
    }
    await store.close();
    await cleanup(store);
  });

  it('a near-cache whose Cluster subscriber moves to another connection forgets what it cached before', async () => {
    const { sub, store, prefix } = await nearCachedStore();
    await cacheThenRevokeUnheard(store, 'tok-moved');
    // The subscriber's connection is killed by the server, as a failing node or a proxy would: ioredis picks a node
    // and subscribes again without a word to the Cluster's own listeners.
    await killSubscriberConnection(sub);
    await vi.waitFor(() => expect(store.stats().nearCacheEnabled).toBe(true), { timeout: 10_000, interval: 5 });
    expect(await store.getRevocation('tok-moved', undefined, 5_000)).toMatchObject({ revokedAt: 1_000 });
    // And the new connection hears invalidations: a revocation through another instance reaches this one's cache.
    const other = new RedisStore({ client: cluster, prefix });
    expect(await store.getRevocation('tok-after', undefined, 5_000)).toBeUndefined();
    await other.revoke('tok-after', { now: 2_000 });
    await vi.waitFor(() => expect(store.getRevocation('tok-after', undefined, 5_000)).toBeInstanceOf(Promise), { timeout: 10_000, interval: 5 });
    expect(await store.getRevocation('tok-after', undefined, 5_000)).toMatchObject({ revokedAt: 2_000 });
    await other.close();
    await store.close();
    await cleanup(store);
  });

  it('still follows the subscriber connection after the Cluster itself has reconnected', async () => {
    const { sub, store } = await nearCachedStore();
    sub.disconnect(true);
    await vi.waitFor(() => expect([sub.status, store.stats().nearCacheEnabled]).toEqual(['ready', true]), { timeout: 10_000, interval: 5 });
    await cacheThenRevokeUnheard(store, 'tok-again');
    await killSubscriberConnection(sub);
    await vi.waitFor(() => expect(store.stats().nearCacheEnabled).toBe(true), { timeout: 10_000, interval: 5 });
    expect(await store.getRevocation('tok-again', undefined, 5_000)).toEqual({ revokedAt: 1_000 });
    await store.close();
    await cleanup(store);
  });

  it("stops trusting the near-cache the moment the subscriber's node leaves the pool, not when its old connection closes", async () => {
    const { sub, store } = await nearCachedStore();
    await cacheThenRevokeUnheard(store, 'tok-left');
    // As ioredis's pool does when a slots refresh drops the node (failed over, forgotten): ioredis subscribes elsewhere
    // at once, while the old connection, to a node that may be frozen, can take its disconnectTimeout to close.
    const inner = (sub as unknown as { subscriber: { getInstance(): Redis } }).subscriber;
    const old = inner.getInstance();
    const key = `${old.options.host}:${old.options.port}`;
    const pool = (sub as unknown as { connectionPool: { getInstanceByKey(k: string): unknown; removeNode(k: string): void; emit(e: string, ...a: unknown[]): boolean } })
      .connectionPool;
    const node = pool.getInstanceByKey(key);
    pool.removeNode(key);
    pool.emit('-node', node, key);
    expect(inner.getInstance()).not.toBe(old);
    // Before any event loop turn: the old connection has not closed yet.
    expect(store.stats().nearCacheEnabled).toBe(false);
    expect(await store.getRevocation('tok-left', undefined, 5_000)).toEqual({ revokedAt: 1_000 });
    // Back on through the new connection once it has heard its probe.
    await vi.waitFor(() => expect(store.stats().nearCacheEnabled).toBe(true), { timeout: 10_000, interval: 5 });
    await store.close();
    await cleanup(store);
  });

  it('a lookup notices a subscriber connection that changed without any event, and reads Redis', async () => {
    const { sub, store } = await nearCachedStore();
    await cacheThenRevokeUnheard(store, 'tok-silent');
    // As an ioredis that switched in some way no event shows: the old connection stays silent.
    const inner = (sub as unknown as { subscriber: { getInstance(): Redis; selectSubscriber(): void } }).subscriber;
    const old = inner.getInstance();
    old.removeAllListeners('close');
    old.removeAllListeners('end');
    inner.selectSubscriber();
    expect(inner.getInstance()).not.toBe(old);
    expect(await store.getRevocation('tok-silent', undefined, 5_000)).toEqual({ revokedAt: 1_000 });
    await vi.waitFor(() => expect(store.stats().nearCacheEnabled).toBe(true), { timeout: 10_000, interval: 5 });
    await store.close();
    await cleanup(store);
  });

  it('keeps the near-cache off (and says why) on a Cluster whose subscriber connection it cannot follow', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error & { code?: string }) => warnings.push(`${w.code}: ${w.message}`);
    process.on('warning', onWarning);
    const sub = connect();
    // As an ioredis that keeps its subscriber connection elsewhere: unseen while the store is made, working after.
    const real = (sub as unknown as { subscriber: object }).subscriber;
    let hidden = true;
    (sub as unknown as { subscriber: object }).subscriber = new Proxy(real, { get: (t, p) => (p === 'getInstance' && hidden ? undefined : Reflect.get(t, p)) });
    const store = makeStore(sub);
    hidden = false;
    try {
      // The subscription works (a revocation is confirmed by this instance's own subscriber), yet nothing is cached.
      await vi.waitFor(() => store.revoke('tok-blind', { now: 1_000 }), { timeout: 10_000, interval: 20 });
      expect(store.stats().nearCacheEnabled).toBe(false);
      expect(await store.getRevocation('tok-other', undefined, 5_000)).toBeUndefined();
      expect(store.getRevocation('tok-other', undefined, 5_000)).toBeInstanceOf(Promise);
      await vi.waitFor(() => expect(warnings.join('\n')).toMatch(/TOKEN_GUARD_REDIS_SUBSCRIBER: .*does not show which connection it subscribes on/), {
        timeout: 5_000,
        interval: 5,
      });
    } finally {
      process.off('warning', onWarning);
      await store.close();
      await cleanup(store);
    }
  });

  describe('two instances through Cluster clients (near-cache on)', () => {
    twoInstanceScenario(() => ({ connect, env: { TG_REDIS_NODES: JSON.stringify(seeds) } }), { nearCache: true });
  });
});
