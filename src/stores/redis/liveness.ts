// Whether a RedisStore's subscriber may be trusted with the near-cache right now. Two things must hold: it hears what
// is published through the client, and the client's server counts it among the listeners (PUBSUB NUMSUB), since a
// revocation waits only for the listeners the server counts. A subscriber on a replica, or on a former primary after
// a failover, hears publications late through replication and is not counted; one whose connection died silently
// (half-open TCP) hears nothing and is no longer counted. Proven after every (re)subscription, then again every
// `heartbeat` ms while the near-cache is in use; trust lapses on its own once a proof is overdue, so a stalled timer
// cannot extend it.
import { randomInt } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { warnOnce } from '../../leaf/warnings.js';
import { countClusterListeners } from './cluster-subscriber.js';
import type { Call } from './command.js';

/** How long after a failed proof the next one is tried, while the subscription lasts. */
export const PROBE_RETRY_MS = 10_000;

/** A heartbeat probe on an instance's own ack channel: `p:<n>`, never a bare number (which is an acknowledgement). */
const HEARTBEAT_PROBE = /^p:(\d{1,15})$/;

/** How many connections the client's server (every node of a Cluster) counts as subscribed to each channel. */
export async function countListeners(client: Redis | Cluster, ...channels: string[]): Promise<number[]> {
  if ((client as Cluster).isCluster === true) return countClusterListeners(client as Cluster, ...channels);
  const reply = (await (client as Redis).pubsub('NUMSUB', ...channels)) as unknown[];
  return channels.map((_, i) => Number(reply[2 * i + 1]) || 0);
}

/** What a SubscriberLiveness talks to and how long it waits. */
export interface LivenessOptions {
  client: Redis | Cluster;
  /** Bounds the probe's commands; never held by the durability verdict (a probe writes nothing durable). */
  call: Call;
  /** The instance's id, named in its first probe. */
  instanceId: string;
  /** The invalidation channel: the first probe goes there, proving the subscriber hears invalidations. */
  channel: string;
  /** The instance's own ack channel: heartbeats go there (heard by this instance alone) and NUMSUB counts it. */
  ackChannel: string;
  /** Longest one proof may take, in ms. */
  confirmTimeout: number;
  /** How often a proof is renewed while the near-cache is in use, in ms. */
  heartbeat: number;
}

/** What a proof tells the near-cache. */
export interface LivenessEvents {
  /** The subscription is proven: returns whether the near-cache is now in use (then the proof is renewed). */
  proven(): boolean;
  /** A renewal failed: the near-cache must stop being used and forget everything (it calls reset()). */
  lost(): void;
}

type Outcome = 'ok' | 'unheard' | 'uncounted' | 'failed';

/** Proves a subscriber live and counted, keeps proving it while trusted, and says until when the last proof holds. */
export class SubscriberLiveness {
  /**
   * Until when (performance.now() ms: monotonic, so a wall-clock step back cannot stretch it) the last proof lets the
   * near-cache be used: the proof's start + heartbeat + confirmTimeout, by which its renewal must have succeeded.
   */
  until = 0;
  /** Bumped by reset(): a proof started before it concludes nothing. */
  private round = 0;
  private probe: { n: number; heard: () => void } | undefined;
  /** The next proof (a heartbeat or a retry). */
  private next: NodeJS.Timeout | undefined;
  /** Ends the wait of the proof in flight at once (on reset), so no timer outlives close(). */
  private abort: (() => void) | undefined;

  constructor(
    private readonly o: LivenessOptions,
    private readonly events: LivenessEvents,
  ) {}

  /** Starts proving a subscription whose SUBSCRIBE has just succeeded. */
  start(): void {
    void this.prove(this.round, true);
  }

  /** Forgets the proof and stops every proof in flight or planned: the subscription was lost, restarted or closed. */
  reset(): void {
    this.round++;
    this.until = 0;
    clearTimeout(this.next);
    this.next = undefined;
    this.abort?.();
  }

  /** A probe on the invalidation channel from this instance. */
  heardProbe(n: number): void {
    if (this.probe?.n === n) this.probe.heard();
  }

  /** Whether `message` on the ack channel is a heartbeat probe (then it is handled here), not an acknowledgement. */
  heardOnAckChannel(message: string): boolean {
    const m = HEARTBEAT_PROBE.exec(message);
    if (m === null) return false;
    this.heardProbe(Number(m[1]));
    return true;
  }

  private async prove(round: number, first: boolean): Promise<void> {
    const started = performance.now();
    const outcome = await this.check(first);
    if (round !== this.round) return;
    const { heartbeat, confirmTimeout } = this.o;
    if (outcome === 'ok') {
      // The renewal starts at started + heartbeat and takes at most confirmTimeout: trust holds until it must be done.
      this.until = started + heartbeat + confirmTimeout;
      if (first && !this.events.proven()) return;
      this.schedule(round, false, started + heartbeat - performance.now());
      return;
    }
    if (!first) {
      // Not renewed in time: whatever was cached may have missed an invalidation since the last proof.
      this.events.lost();
      round = this.round;
    }
    if (outcome === 'unheard') {
      warnOnce(
        'TOKEN_GUARD_REDIS_SUBSCRIBER',
        `RedisStore: the subscriber did not hear a message published through the client within ${confirmTimeout} ms; ` +
          'is it connected to the same Redis (or Cluster) as the client, and is the connection alive? The near-cache stays ' +
          'off (and revoke() rejects while it does not hear its own invalidations) until it does.',
      );
    } else if (outcome === 'uncounted') {
      warnOnce(
        'TOKEN_GUARD_REDIS_SUBSCRIBER',
        "RedisStore: the subscriber hears what the client publishes, but the client's server does not count it as subscribed " +
          '(PUBSUB NUMSUB): it is connected to a replica, or to a former primary after a failover, where invalidations arrive ' +
          'late and revocations elsewhere do not wait for it. The near-cache stays off until it is connected to the primary ' +
          '(reconnect the subscriber after a failover).',
      );
    }
    // 'failed': the client itself failed, which says nothing about the subscriber: tried again all the same.
    this.schedule(round, true, PROBE_RETRY_MS);
  }

  private schedule(round: number, first: boolean, delay: number): void {
    clearTimeout(this.next);
    this.next = setTimeout(
      () => {
        this.next = undefined;
        if (round === this.round) void this.prove(round, first);
      },
      Math.max(0, delay),
    );
    // Never what keeps a process alive.
    this.next.unref();
  }

  /**
   * Publishes a probe through the client and waits, within confirmTimeout, until the subscriber hears it and the
   * client's server counts the subscriber. The first probe of a subscription goes on the invalidation channel (it
   * proves that subscription); a heartbeat goes on the instance's own ack channel, so that N instances exchange N
   * messages per heartbeat, not N².
   */
  private async check(first: boolean): Promise<Outcome> {
    const { client, call, channel, ackChannel, instanceId, confirmTimeout } = this.o;
    const n = randomInt(1, 2 ** 47);
    let heard!: () => void;
    const echoed = new Promise<true>((resolve) => (heard = () => resolve(true)));
    // Set before publishing: the echo may arrive before PUBLISH's own reply.
    this.probe = { n, heard };
    let timer: NodeJS.Timeout | undefined;
    let abort!: () => void;
    const late = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), confirmTimeout);
      abort = () => resolve(false);
    });
    timer?.unref();
    this.abort = abort;
    try {
      const message = first ? JSON.stringify({ o: instanceId, n, a: 0, p: 1 }) : `p:${n}`;
      // Raced with `late` (which also settles on reset, so on close) inside the bounded call, whose timer then ends with
      // it: raced outside, that timer would run on after close() until Redis answered. A raced promise never rejects unhandled.
      if ((await call('PUBLISH', () => Promise.race([client.publish(first ? channel : ackChannel, message), late]))) === false) return 'failed';
      if (!(await Promise.race([echoed, late]))) return 'unheard';
      // After the echo: a subscriber that hears (through replication, say) but is not counted is not waited for.
      const counted = await call('PUBSUB NUMSUB', () => Promise.race([countListeners(client, ackChannel), late]));
      if (counted === false) return 'failed';
      return (counted[0] ?? 0) >= 1 ? 'ok' : 'uncounted';
    } catch {
      return 'failed';
    } finally {
      clearTimeout(timer);
      if (this.abort === abort) this.abort = undefined;
      if (this.probe?.n === n) this.probe = undefined;
    }
  }
}
