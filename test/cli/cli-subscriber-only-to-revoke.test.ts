// Regression: every `keys` command opened a second Redis connection and subscribed it on the app's prefix, as if it
// were to revoke. A subscriber joins the revocation protocol: an app's revoke counts it (PUBSUB NUMSUB) among the
// instances that must confirm. So a `keys list` running while an app revoked was waited for, and its close removed
// its handlers before it unsubscribed: counted, it heard the invalidation and never confirmed, and the app's revoke
// ended unconfirmed. Now only the commands that revoke subscribe, and closing unsubscribes (with the handlers still
// answering) before the handlers go. Through the real command, behind a TCP proxy that counts its connections and the
// commands they send, and can hold back its UNSUBSCRIBE: an app revoke made at that moment still confirms.
import { createServer, type Server, Socket } from 'node:net';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { createApiKey } from '../../src/index.js';
import { RedisStore } from '../../src/stores/redis.js';
import { deletePrefix, randomPrefix, REDIS_URL, redisClient, redisUp } from '../helpers/redis.js';
import { type CliRun, cli } from './run.js';

const SUBSCRIBE = /\r\nsubscribe\r\n/i;
const UNSUBSCRIBE = /\r\nunsubscribe\r\n/i;

/** A proxy to the shared Redis that sees what the command's connections send. */
interface Watch {
  url: string;
  /** Connections accepted. */
  readonly connections: number;
  /** Connections that sent SUBSCRIBE. */
  readonly subscribers: number;
  /** Resolves once a subscriber sends UNSUBSCRIBE, which is then held back (with all it sends after) until release(). */
  unsubscribing: Promise<void>;
  release(): void;
  /** Resolves once every connection has closed: all they sent has been seen. */
  settled(): Promise<void>;
  close(): Promise<void>;
}

async function watch(options: { holdUnsubscribe?: boolean } = {}): Promise<Watch> {
  const target = new URL(REDIS_URL);
  const closed: Promise<void>[] = [];
  const sockets: Socket[] = [];
  let connections = 0;
  let subscribers = 0;
  let held: { up: Socket; data: Buffer[] } | undefined;
  let released = false;
  let seen!: () => void;
  const unsubscribing = new Promise<void>((resolve) => (seen = resolve));
  const server: Server = createServer((down) => {
    connections++;
    const up = new Socket();
    sockets.push(up, down);
    let subscriber = false;
    let holding = false;
    const pending: Buffer[] = [];
    up.on('error', () => undefined);
    down.on('error', () => undefined);
    closed.push(new Promise((resolve) => down.on('close', () => resolve())));
    up.connect(Number(target.port || 6379), target.hostname);
    down.on('data', (d: Buffer) => {
      const text = d.toString('latin1');
      if (!subscriber && SUBSCRIBE.test(text)) {
        subscriber = true;
        subscribers++;
      }
      if (options.holdUnsubscribe && subscriber && !holding && !released && UNSUBSCRIBE.test(text)) {
        holding = true;
        held = { up, data: pending };
        seen();
      }
      if (holding && !released) pending.push(d);
      else up.write(d);
    });
    up.on('data', (d) => !down.destroyed && down.write(d));
    up.on('close', () => down.destroy());
    down.on('close', () => up.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `redis://127.0.0.1:${(server.address() as { port: number }).port}`,
    get connections() {
      return connections;
    },
    get subscribers() {
      return subscribers;
    },
    unsubscribing,
    release() {
      released = true;
      if (held) for (const d of held.data.splice(0)) held.up.write(d);
    },
    settled: () => Promise.all(closed).then(() => undefined),
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe.skipIf(!redisUp)('token-guard subscribes only to revoke, and unsubscribes before it stops answering', () => {
  const prefix = randomPrefix('cli-sub');
  const channel = `${prefix}{c}:inv`;
  const admin = redisClient();
  const direct = new RedisStore({ client: admin, prefix });

  afterAll(async () => {
    await direct.close();
    await deletePrefix(admin, prefix);
    admin.disconnect();
  });

  /** Runs one command through a fresh proxy: its exit code, connections and subscribers. */
  async function through(args: string[]): Promise<{ code: number | null; connections: number; subscribers: number; run: CliRun }> {
    const w = await watch();
    try {
      const run = await cli([...args, '--prefix', prefix, '--redis', w.url, '--json']);
      await w.settled();
      return { code: run.code, connections: w.connections, subscribers: w.subscribers, run };
    } finally {
      await w.close();
    }
  }

  it('keys issue, list, show and rotate use one connection and subscribe nothing; revoke, revoke subject and keys revoke subscribe one', async () => {
    const a = await createApiKey(direct, { prefix: 'tg_', subject: 'svc-sub', scopes: [], expiresIn: '1d' });
    const b = await createApiKey(direct, { prefix: 'tg_', subject: 'svc-sub', scopes: [], expiresIn: '1d' });
    const reading = [
      ['keys', 'issue', '--subject', 'svc-sub', '--key-prefix', 'tg_', '--expires-in', '1d'],
      ['keys', 'list', 'svc-sub'],
      ['keys', 'show', a.record.id],
      ['keys', 'rotate', a.record.id],
    ];
    for (const args of reading) {
      const r = await through(args);
      expect([args.slice(0, 2).join(' '), r.code, r.connections, r.subscribers], r.run.stderr).toEqual([args.slice(0, 2).join(' '), 0, 1, 0]);
    }
    const revoking = [
      ['revoke', 'token', 'cli-sub-tok'],
      ['revoke', 'subject', 'cli-sub-someone'],
      ['keys', 'revoke', b.record.id],
    ];
    for (const args of revoking) {
      const r = await through(args);
      expect([args.slice(0, 2).join(' '), r.code, r.connections, r.subscribers], r.run.stderr).toEqual([args.slice(0, 2).join(' '), 0, 2, 1]);
    }
  });

  it("an app's revoke that counted the closing command's subscriber is confirmed by it", async () => {
    // The app instance, listening directly on Redis.
    const appClient = redisClient();
    const appSubscriber = redisClient();
    const app = new RedisStore({ client: appClient, subscriber: appSubscriber, prefix, durability: 'ignore', confirmTimeout: 3000, nearCache: false });
    const w = await watch({ holdUnsubscribe: true });
    try {
      await vi.waitFor(async () => expect((await admin.pubsub('NUMSUB', channel))[1]).toBe(1), { timeout: 10_000, interval: 20 });
      // The command revokes (confirmed by the app), then closes: its UNSUBSCRIBE is held back, so Redis still counts it.
      const running = cli(['revoke', 'token', 'cli-sub-own', '--prefix', prefix, '--redis', w.url, '--timeout', '20s', '--json']);
      const first = await Promise.race([w.unsubscribing.then(() => 'unsubscribing'), running.then((r) => `ended first: ${r.code} ${r.stderr}`)]);
      expect(first).toBe('unsubscribing');
      expect((await admin.pubsub('NUMSUB', channel))[1]).toBe(2);
      // The app revokes now: Redis counts the command's subscriber among those that must confirm, and it does.
      const outcome = await app.revoke('cli-sub-app', { now: Date.now() }).then(
        () => 'confirmed',
        (err: Error) => err.message,
      );
      expect(outcome).toBe('confirmed');
      w.release();
      expect((await running).code).toBe(0);
      await w.settled();
      // Gone from the count once closed.
      expect((await admin.pubsub('NUMSUB', channel))[1]).toBe(1);
    } finally {
      w.release();
      await app.close();
      appClient.disconnect();
      appSubscriber.disconnect();
      await w.close();
    }
  });
});
