// Regression: RedisStore.close() removed its near-cache's message listeners before it sent UNSUBSCRIBE. Until the
// UNSUBSCRIBE reached Redis, Redis still counted the closing instance's subscriber (PUBSUB NUMSUB), so a revoke made on
// another instance in that window (a rolling deploy: one instance shuts down while another revokes) waited for it; the
// invalidation was delivered to a connection with no listener left, never confirmed, and that revoke rejected
// "did not confirm". Now close() unsubscribes with the listeners still answering, then removes them. Real Redis, behind
// a TCP proxy that holds the closing subscriber's UNSUBSCRIBE back, so the window is open for as long as the test needs.
import { createServer, type Server, Socket } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { RedisStore } from '../../src/stores/redis.js';
import { deletePrefix, randomPrefix, REDIS_URL, redisClient, redisUp } from '../helpers/redis.js';

const T0 = Date.UTC(2026, 10, 25, 10, 0, 0);
const SUBSCRIBE = /\r\nsubscribe\r\n/i;
const UNSUBSCRIBE = /\r\nunsubscribe\r\n/i;

/** A proxy to the shared Redis that holds back what a subscriber connection sends from its first UNSUBSCRIBE on. */
interface HoldingProxy {
  url: string;
  /** Resolves once a subscriber connection sends UNSUBSCRIBE. */
  unsubscribing: Promise<void>;
  /** Sends what was held back, and holds nothing more. */
  release(): void;
  close(): Promise<void>;
}

async function holdingProxy(): Promise<HoldingProxy> {
  const target = new URL(REDIS_URL);
  const sockets: Socket[] = [];
  const held: { up: Socket; data: Buffer }[] = [];
  let released = false;
  let seen!: () => void;
  const unsubscribing = new Promise<void>((resolve) => (seen = resolve));
  const server: Server = createServer((down) => {
    const up = new Socket();
    sockets.push(up, down);
    let subscriber = false;
    let holding = false;
    up.on('error', () => undefined);
    down.on('error', () => undefined);
    up.connect(Number(target.port || 6379), target.hostname);
    down.on('data', (d: Buffer) => {
      const text = d.toString('latin1');
      subscriber ||= SUBSCRIBE.test(text);
      if (subscriber && !released && UNSUBSCRIBE.test(text)) {
        holding = true;
        seen();
      }
      if (holding && !released) held.push({ up, data: d });
      else up.write(d);
    });
    up.on('data', (d: Buffer) => !down.destroyed && down.write(d));
    up.on('close', () => down.destroy());
    down.on('close', () => up.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `redis://127.0.0.1:${(server.address() as { port: number }).port}`,
    unsubscribing,
    release() {
      released = true;
      for (const h of held.splice(0)) h.up.write(h.data);
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe.skipIf(!redisUp)('regression: a closing RedisStore confirms revocations until its UNSUBSCRIBE is through', () => {
  const prefix = randomPrefix('redis-close');
  const channel = `${prefix}{c}:inv`;
  const connections: Redis[] = [];
  const connection = (url?: string): Redis => {
    const c = url === undefined ? redisClient() : new Redis(url);
    c.on('error', () => undefined);
    connections.push(c);
    return c;
  };
  const admin = connection();
  const listeners = async (): Promise<unknown> => (await admin.pubsub('NUMSUB', channel))[1];

  afterAll(async () => {
    await deletePrefix(admin, prefix);
    for (const c of connections) c.disconnect();
  });

  it("another instance's revoke made while one instance closes is confirmed by the closing one", async () => {
    const proxy = await holdingProxy();
    const a = new RedisStore({ client: connection(), subscriber: connection(), prefix, durability: 'ignore', confirmTimeout: 1000 });
    const bSubscriber = connection(proxy.url);
    // A long commandTimeout: the held UNSUBSCRIBE must not time out while the test revokes.
    const b = new RedisStore({ client: connection(), subscriber: bSubscriber, prefix, durability: 'ignore', commandTimeout: 10_000 });
    try {
      await vi.waitFor(() => expect(a.stats().nearCacheEnabled && b.stats().nearCacheEnabled).toBe(true), { timeout: 5000, interval: 5 });
      expect(await b.getRevocation('tok-1', undefined, T0)).toBeUndefined();
      // B shuts down; its UNSUBSCRIBE is held back, so Redis still counts its subscriber.
      const closing = b.close();
      await proxy.unsubscribing;
      expect(await listeners()).toBe(2);
      const outcome = await a.revoke('tok-1', { now: T0 }).then(
        () => 'confirmed',
        (err: Error) => err.message,
      );
      expect(outcome).toBe('confirmed');
      proxy.release();
      await closing;
      // Out of the count, and its listeners gone, once closed.
      expect(await listeners()).toBe(1);
      expect(bSubscriber.listenerCount('message')).toBe(0);
      expect(await a.getRevocation('tok-1', undefined, T0)).toEqual({ revokedAt: T0 });
    } finally {
      proxy.release();
      await Promise.all([a.close(), b.close()]);
      await proxy.close();
    }
  });

  it('two stores closing on one shared subscriber still answer for it, once', async () => {
    const proxy = await holdingProxy();
    // Another connection that listens and never answers: a revoke waits for it and for the shared one.
    const silent = connection();
    await silent.subscribe(channel);
    const a = new RedisStore({ client: connection(), subscriber: connection(), prefix, durability: 'ignore', confirmTimeout: 300 });
    const shared = connection(proxy.url);
    const b1 = new RedisStore({ client: connection(), subscriber: shared, prefix, durability: 'ignore', commandTimeout: 10_000 });
    const b2 = new RedisStore({ client: connection(), subscriber: shared, prefix, durability: 'ignore', commandTimeout: 10_000 });
    try {
      await vi.waitFor(() => expect(a.stats().nearCacheEnabled && b1.stats().nearCacheEnabled && b2.stats().nearCacheEnabled).toBe(true), {
        timeout: 5000,
        interval: 5,
      });
      const closing = Promise.all([b1.close(), b2.close()]);
      await proxy.unsubscribing;
      expect(await listeners()).toBe(3);
      // Three listen (a's own subscriber, the silent one, the shared one): the shared one answers, once; the silent one
      // never does. Two answers from the shared connection would resolve this revoke; none would leave 2 of 3 missing.
      await expect(a.revoke('tok-2', { now: T0 })).rejects.toThrow(/revocation stored, but 1 of 3 instance\(s\) did not confirm/);
      proxy.release();
      await closing;
      expect(await listeners()).toBe(2);
      expect(shared.listenerCount('message')).toBe(0);
    } finally {
      proxy.release();
      await silent.unsubscribe();
      await Promise.all([a.close(), b1.close(), b2.close()]);
      await proxy.close();
    }
  });
});
