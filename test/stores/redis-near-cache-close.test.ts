// How RedisStore's near-cache leaves the revocation protocol on close(), against fake ioredis clients whose UNSUBSCRIBE
// answers when the test says so: it keeps acknowledging invalidations until the UNSUBSCRIBE is through (Redis counts
// it until then), only then removes its listeners, never waits longer than commandTimeout for an UNSUBSCRIBE that does
// not answer, and on a subscriber shared by several stores leaves the invalidation channel only with the last of them.
// The same window against real Redis: test/regressions/redis-close-keeps-confirming-until-unsubscribed.test.ts.
import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RedisStore, type RedisStoreOptions } from '../../src/stores/redis.js';

/** Another instance, revoking: its id and the ack channel it listens on. */
const OTHER = '0123456789abcdef';
const OTHER_ACKS = `tg:{c}:ack:${OTHER}`;
const INV = 'tg:{c}:inv';

/** Lets every settled promise's callbacks run (under fake timers too). */
const settle = () => (vi.isFakeTimers() ? vi.advanceTimersByTimeAsync(0) : new Promise((r) => setTimeout(r, 0)));

/** A command client that records what it publishes, and a subscriber whose UNSUBSCRIBEs wait for `answer()`. */
function fakes() {
  const published: { channel: string; message: string }[] = [];
  const client = {
    defineCommand() {},
    publish: (channel: string, message: string) => {
      published.push({ channel, message });
      return Promise.resolve(1);
    },
    pubsub: (_sub: 'NUMSUB', ...channels: string[]) => Promise.resolve(channels.flatMap((c) => [c, 1])),
  };
  const unsubscribes: { channels: string[]; answer: () => void }[] = [];
  const subscriber = Object.assign(new EventEmitter(), {
    subscribe: () => Promise.resolve(),
    unsubscribe: (...channels: string[]) =>
      new Promise<void>((resolve) => {
        unsubscribes.push({ channels, answer: () => resolve() });
      }),
  });
  const store = (options: Partial<RedisStoreOptions> = {}) => new RedisStore({ durability: 'ignore', ...options, client: client as never, subscriber: subscriber as never });
  /** The other instance's invalidation `n` of a token, as Redis delivers it to the subscriber. */
  const invalidate = (n: number) => subscriber.emit('message', INV, JSON.stringify({ o: OTHER, n, a: 1, t: `tok-${n}` }));
  /** The acknowledgements sent to the other instance. */
  const acks = () => published.filter((p) => p.channel === OTHER_ACKS).map((p) => p.message);
  return { store, subscriber, unsubscribes, invalidate, acks };
}

describe('RedisStore.close(): out of the revocation protocol before its listeners go', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('regression: acknowledges an invalidation that arrives while its UNSUBSCRIBE is in flight, and none after', async () => {
    const f = fakes();
    const store = f.store();
    await settle();
    const closing = store.close();
    await settle();
    expect(f.unsubscribes.map((u) => u.channels)).toEqual([[INV, expect.stringMatching(/^tg:\{c\}:ack:[0-9a-f]{16}$/)]]);
    // Redis still counts this subscriber, so the other instance's revoke waits for it: it answers.
    f.invalidate(1);
    await settle();
    expect(f.acks()).toEqual(['1']);
    f.unsubscribes[0]?.answer();
    await closing;
    expect(f.subscriber.listenerCount('message')).toBe(0);
    f.invalidate(2);
    await settle();
    expect(f.acks()).toEqual(['1']);
  });

  it('an UNSUBSCRIBE that never answers (the connection is down) holds close() up for commandTimeout at most, then the listeners go', async () => {
    vi.useFakeTimers();
    const f = fakes();
    const store = f.store({ commandTimeout: 300 });
    await settle();
    let closed = false;
    const closing = store.close().then(() => (closed = true));
    await vi.advanceTimersByTimeAsync(299);
    expect(closed).toBe(false);
    expect(f.subscriber.listenerCount('message')).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    await closing;
    expect(f.subscriber.listenerCount('message')).toBe(0);
    expect(f.subscriber.listenerCount('ready')).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a second close() waits for the first, unsubscribes nothing more and gives the listener room back once', async () => {
    const f = fakes();
    const before = f.subscriber.getMaxListeners();
    const store = f.store();
    await settle();
    const first = store.close();
    const second = store.close();
    await settle();
    let secondDone = false;
    void second.then(() => (secondDone = true));
    await settle();
    expect(secondDone).toBe(false);
    f.unsubscribes[0]?.answer();
    await Promise.all([first, second]);
    await store.close();
    expect(f.unsubscribes).toHaveLength(1);
    expect(f.subscriber.getMaxListeners()).toBe(before);
  });

  it('on a shared subscriber, the first to close leaves only its ack channel and the connection answers once throughout', async () => {
    const f = fakes();
    const a = f.store();
    const b = f.store();
    await settle();
    const closingA = a.close();
    await settle();
    expect(f.unsubscribes.map((u) => u.channels)).toEqual([[expect.stringMatching(/:ack:/)]]);
    // a is closing, b open: the connection, counted once, answers once.
    f.invalidate(1);
    await settle();
    expect(f.acks()).toEqual(['1']);
    f.unsubscribes[0]?.answer();
    await closingA;
    f.invalidate(2);
    await settle();
    expect(f.acks()).toEqual(['1', '2']);
    // The last one leaves the invalidation channel too, answering until it has.
    const closingB = b.close();
    await settle();
    expect(f.unsubscribes[1]?.channels).toEqual([INV, expect.stringMatching(/:ack:/)]);
    f.invalidate(3);
    await settle();
    expect(f.acks()).toEqual(['1', '2', '3']);
    f.unsubscribes[1]?.answer();
    await closingB;
    expect(f.subscriber.listenerCount('message')).toBe(0);
  });

  it('on a shared subscriber, two closing at once leave the invalidation channel once both are closing, and answer once', async () => {
    const f = fakes();
    const a = f.store();
    const b = f.store();
    await settle();
    const closing = Promise.all([a.close(), b.close()]);
    await settle();
    expect(f.unsubscribes.map((u) => u.channels)).toEqual([[expect.stringMatching(/:ack:/)], [INV, expect.stringMatching(/:ack:/)]]);
    f.invalidate(1);
    await settle();
    expect(f.acks()).toEqual(['1']);
    for (const u of f.unsubscribes) u.answer();
    await closing;
    expect(f.subscriber.listenerCount('message')).toBe(0);
  });
});
