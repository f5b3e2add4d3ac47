// A TCP proxy in front of a Redis, for tests that need a connection Redis and the client see differently: one whose
// Redis side is cut while the client's side stays open (a half-open connection: the client is told nothing), or one
// whose replies reach the client late (a slow link to one instance).
import { createServer, type Server, Socket } from 'node:net';

/** A running proxy. */
export interface RedisProxy {
  /** Where clients connect (on 127.0.0.1). */
  port: number;
  /** Closes the Redis side of every connection made so far; their client side stays open and what it sends is dropped. */
  cutSilently(): void;
  /** Closes every connection and stops listening. */
  close(): Promise<void>;
}

/** Starts a proxy to the Redis at `url`; `delayMs` holds back everything Redis sends (in order) by that long. */
export async function redisProxy(url: string, options: { delayMs?: number } = {}): Promise<RedisProxy> {
  const target = new URL(url);
  const pairs: { down: Socket; up: Socket; cut: boolean }[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let closing = false;
  const later = (fn: () => void): void => {
    if (!options.delayMs) {
      fn();
      return;
    }
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, options.delayMs);
    timers.add(t);
  };
  const server: Server = createServer((down) => {
    // A client reconnecting while the proxy closes would keep server.close() waiting.
    if (closing) {
      down.destroy();
      return;
    }
    const up = new Socket();
    const pair = { down, up, cut: false };
    pairs.push(pair);
    up.on('error', () => undefined);
    down.on('error', () => undefined);
    up.connect(Number(target.port || 6379), target.hostname);
    down.on('data', (d) => {
      if (!pair.cut) up.write(d);
    });
    up.on('data', (d) => later(() => !pair.cut && !down.destroyed && down.write(d)));
    up.on('close', () => later(() => !pair.cut && down.destroy()));
    down.on('close', () => up.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    cutSilently() {
      for (const pair of pairs) {
        pair.cut = true;
        pair.up.destroy();
      }
    },
    async close() {
      closing = true;
      for (const t of timers) clearTimeout(t);
      for (const { down, up } of pairs) {
        down.destroy();
        up.destroy();
      }
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
