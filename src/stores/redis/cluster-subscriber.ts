// ioredis's Cluster subscribes on one node's connection, which it keeps to itself: when that connection ends, it
// picks a node and subscribes there again without a word to the Cluster's own listeners (no 'close', no
// 'reconnecting'). What was published in between is never heard, so a near-cache that kept its entries through the
// switch would answer "not revoked" for a revocation it missed, until its ttl. This follows that connection through
// ioredis's ClusterSubscriber (not exported, the same in ioredis 5 and 6); where it cannot, the caller caches nothing.
// It also counts a Cluster's listeners, which `revoke` waits for.
import type { Cluster } from 'ioredis';
import { warnOnce } from '../../leaf/warnings.js';
import { roomForListeners } from './subscriber-peers.js';

interface Emitter {
  on(event: string, fn: () => void): unknown;
  off(event: string, fn: () => void): unknown;
}

function asEmitter(v: unknown): Emitter | undefined {
  const e = v as Emitter | null | undefined;
  return e !== null && typeof e === 'object' && typeof e.on === 'function' && typeof e.off === 'function' ? e : undefined;
}

/** What the watcher reports: the subscription's connection is going (`lost`), or another one holds it now (`moved`). */
export interface SubscriberWatch {
  lost(): void;
  moved(): void;
}

/** A watch on a Cluster's subscriber connection. */
export interface ClusterSubscriberWatcher {
  /** Watches the connection the Cluster subscribes on right now: call it before each SUBSCRIBE that must be followed. */
  sync(): void;
  /** Whether the Cluster still subscribes on the watched connection (false after a switch no event told of). */
  holds(): boolean;
  /** Stops watching. */
  stop(): void;
}

/**
 * Follows the connection `cluster` subscribes on and reports when it is lost and when another takes its place.
 * Undefined when this ioredis keeps the connection out of sight.
 */
export function watchClusterSubscriber(cluster: Cluster, report: SubscriberWatch): ClusterSubscriberWatcher | undefined {
  const inner = (cluster as unknown as { subscriber?: { getInstance?: unknown } }).subscriber;
  const getInstance = inner?.getInstance;
  if (typeof getInstance !== 'function') return undefined;
  const current = (): Emitter | undefined => asEmitter(getInstance.call(inner));
  let watched: Emitter | undefined;
  let pending: NodeJS.Immediate | undefined;
  let stopped = false;
  const lost = (): void => report.lost();
  const attach = (next: Emitter | undefined): void => {
    if (watched) {
      watched.off('close', lost);
      watched.off('end', ended);
      roomForListeners(watched, -1);
    }
    watched = next;
    if (next) {
      roomForListeners(next, 1);
      next.on('close', lost);
      next.on('end', ended);
    }
  };
  // ioredis picks the next connection in its own 'end' listener, or on the pool's '+node' / '-node' (its listeners
  // run after the Cluster's re-emitted events): look once they have run. `always`: report `moved` even if the
  // connection is the same, to turn back on a cache that was turned off on suspicion.
  let always = false;
  const follow = (force: boolean): void => {
    always ||= force;
    if (pending !== undefined || stopped) return;
    pending = setImmediate(() => {
      pending = undefined;
      const next = current();
      const again = always;
      always = false;
      if (stopped || (next === watched && !again)) return;
      attach(next);
      report.moved();
    });
  };
  function ended(): void {
    report.lost();
    follow(false);
  }
  const added = (): void => follow(false);
  // A node left the pool: ioredis has switched when it was the subscriber's, whose old connection may take its
  // disconnectTimeout to close (a frozen node). Off at once; back on through a fresh probe either way.
  const removed = (): void => {
    report.lost();
    follow(true);
  };
  attach(current());
  cluster.on('+node', added);
  cluster.on('-node', removed);
  return {
    sync: () => {
      if (!stopped) attach(current());
    },
    holds: () => watched !== undefined && getInstance.call(inner) === watched,
    stop: () => {
      stopped = true;
      if (pending !== undefined) clearImmediate(pending);
      attach(undefined);
      cluster.off('+node', added);
      cluster.off('-node', removed);
    },
  };
}

/** Says, once, why a near-cache on a Cluster subscriber that cannot be followed stays off. */
export function warnUnfollowed(): void {
  warnOnce(
    'TOKEN_GUARD_REDIS_SUBSCRIBER',
    'RedisStore: this ioredis Cluster does not show which connection it subscribes on, so a switch between nodes (and ' +
      'what was published meanwhile) would go unseen: the near-cache stays off. Revocations are still confirmed.',
  );
}

/** How many connections listen to each of `channels` on `cluster`: NUMSUB counts one node's only, so each node is asked. */
export async function countClusterListeners(cluster: Cluster, ...channels: string[]): Promise<number[]> {
  const totals = channels.map(() => 0);
  await Promise.all(
    cluster.nodes('all').map(async (node) => {
      const reply = (await node.pubsub('NUMSUB', ...channels)) as unknown[];
      for (let i = 0; i < channels.length; i++) totals[i] = (totals[i] as number) + (Number(reply[2 * i + 1]) || 0);
    }),
  );
  return totals;
}
