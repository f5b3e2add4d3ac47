// Redis for tests: is it there (skip loudly locally, fail on CI), clients, per-run prefixes and their cleanup, and
// redis-server processes that tests start and kill themselves.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { Redis, type Cluster, type RedisOptions } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';

/** The shared Redis the suites run against. */
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const START_HINT = 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no';
const onCi = process.env.CI === 'true';

async function ping(url: string): Promise<boolean> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null, connectTimeout: 1000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

function hasBinary(name: string): boolean {
  return spawnSync(name, ['--version'], { stdio: 'ignore' }).status === 0;
}

/**
 * Whether the shared Redis answers. Unreachable on CI (`CI=true`) fails the suite at import; elsewhere the Redis
 * suites are skipped with one warning line saying how to start Redis.
 */
export const redisUp: boolean = await (async () => {
  if (await ping(REDIS_URL)) return true;
  if (onCi) throw new Error(`Redis is not reachable at ${REDIS_URL} and CI=true: the Redis suites must run on CI. Start it: ${START_HINT}`);
  console.warn(`⚠️  REDIS SUITES SKIPPED: no Redis at ${REDIS_URL}. Start one with: ${START_HINT}  (or set REDIS_URL)`);
  return false;
})();

/** Whether redis-server and redis-cli are on PATH (the fault and cluster suites start their own servers). Same rule: fail on CI, else warn. */
export const redisBinaries: boolean = (() => {
  if (hasBinary('redis-server') && hasBinary('redis-cli')) return true;
  if (onCi) throw new Error('redis-server / redis-cli are not on PATH and CI=true: the fault and cluster suites must run on CI');
  console.warn(`⚠️  REDIS FAULT/CLUSTER SUITES SKIPPED: redis-server or redis-cli not on PATH. Install Redis, then: ${START_HINT}`);
  return false;
})();

/** An ioredis client to the shared Redis that never logs unhandled errors (tests assert on them instead). */
export function redisClient(options: RedisOptions = {}): Redis {
  const client = new Redis(REDIS_URL, options);
  client.on('error', () => undefined);
  return client;
}

/** A key prefix nobody else uses: `tg-test:<suite>:<random>:`. */
export function randomPrefix(suite: string): string {
  return `tg-test:${suite}:${randomBytes(6).toString('hex')}:`;
}

/** The shared Redis as useSharedRedis gives it to a suite: a client, and a key prefix of the suite's own. */
export interface SuiteRedis {
  /** A client to the shared Redis (read it inside a test or hook: it is made in beforeAll). */
  readonly client: Redis;
  /** `tg-test:<suite>:<random>:`, its keys deleted after the suite. */
  readonly prefix: string;
}

/** For the enclosing describe: a client to the shared Redis made before its tests; after them, every key under its prefix deleted and the client disconnected. */
export function useSharedRedis(suite: string): SuiteRedis {
  const prefix = randomPrefix(suite);
  let client: Redis | undefined;
  beforeAll(() => {
    client = redisClient();
  });
  afterAll(async () => {
    if (!client) return;
    await deletePrefix(client, prefix);
    client.disconnect();
  });
  return {
    prefix,
    get client() {
      if (!client) throw new Error(`useSharedRedis('${suite}'): the client is made in beforeAll, read it in a test or hook`);
      return client;
    },
  };
}

/** Deletes every key starting with `prefix` (SCAN + DEL), on each master of a Cluster. Never FLUSHes. */
export async function deletePrefix(client: Redis | Cluster, prefix: string): Promise<number> {
  const nodes = (client as Cluster).isCluster ? (client as Cluster).nodes('master') : [client as Redis];
  const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
  let deleted = 0;
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      // One DEL per key: on a Cluster node keys of several slots cannot go in one command.
      for (const key of keys) deleted += await node.del(key);
    } while (cursor !== '0');
  }
  return deleted;
}

/** Every key starting with `prefix`. */
export async function keysWithPrefix(client: Redis | Cluster, prefix: string): Promise<string[]> {
  const nodes = (client as Cluster).isCluster ? (client as Cluster).nodes('master') : [client as Redis];
  const out: string[] = [];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`, 'COUNT', 1000);
      cursor = next;
      out.push(...keys);
    } while (cursor !== '0');
  }
  return out.sort();
}

/** A TCP port on 127.0.0.1 that was free a moment ago (and, with `bus`, port + 10000 too, for Cluster nodes). */
export async function freePort(bus = false): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await listenOnce(0);
    if (!bus) return port;
    if (
      port + 10_000 <= 65_535 &&
      (await listenOnce(port + 10_000).then(
        () => true,
        () => false,
      ))
    )
      return port;
  }
  throw new Error('no free port found');
}

function listenOnce(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const { port: p } = server.address() as { port: number };
      server.close(() => resolve(p));
    });
  });
}

/** A redis-server child process this test started. */
export interface RedisServer {
  port: number;
  process: ChildProcess;
  /** Kills it by PID (SIGKILL) and resolves once it has exited. */
  kill(): Promise<void>;
}

/** Starts `redis-server` on `port` (no persistence) and resolves once it answers PING. */
export async function startRedisServer(port: number, extra: string[] = []): Promise<RedisServer> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', ...extra], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  const deadline = Date.now() + 10_000;
  while (!(await ping(`redis://127.0.0.1:${port}`))) {
    if (exited) throw new Error(`redis-server on port ${port} exited at start`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`redis-server on port ${port} did not answer within 10 s`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    process: child,
    async kill() {
      if (!exited && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      await exit;
    },
  };
}

/**
 * Whether the shared Redis is a stock one (appendonly no), which the tests of RedisStore's durability refusal need; when
 * it is up but keeps an append-only file, `suite` is named in one warning as skipped.
 */
export async function stockRedisFor(suite: string): Promise<boolean> {
  if (!redisUp) return false;
  const c = redisClient();
  let stock = false;
  try {
    const reply = (await c.config('GET', 'appendonly')) as unknown;
    stock = Array.isArray(reply) && reply[1] === 'no';
  } catch {
    stock = false;
  } finally {
    c.disconnect();
  }
  if (!stock) console.warn(`⚠️  ${suite} skipped: the shared Redis runs with an append-only file (these tests need appendonly no)`);
  return stock;
}
