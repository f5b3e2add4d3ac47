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

  describe('two instances through Cluster clients (near-cache on)', () => {
    twoInstanceScenario(() => ({ connect, env: { TG_REDIS_NODES: JSON.stringify(seeds) } }), { nearCache: true });
  });
});
