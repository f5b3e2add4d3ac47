// ioredis's Cluster subscribes on one node's connection, which it keeps to itself: when that connection ends, it
// picks a node and subscribes there again without a word to the Cluster's own listeners (no 'close', no
// 'reconnecting'). What was published in between is never heard, so a near-cache that kept its entries through the
// switch would answer "not revoked" for a revocation it missed, until its ttl. This follows that connection through
// ioredis's ClusterSubscriber (not exported, the same in ioredis 5 and 6); where it cannot, the caller caches nothing.
import type { Cluster } from 'ioredis';
import { warnOnce } from '../../leaf/warnings.js';

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

/**
 * Follows the connection `cluster` subscribes on and reports when it is lost and when another takes its place.
 * Returns the function that stops watching, or undefined when this ioredis keeps the connection out of sight.
 */
export function watchClusterSubscriber(cluster: Cluster, report: SubscriberWatch): (() => void) | undefined {
  const inner = (cluster as unknown as { subscriber?: { getInstance?: unknown } }).subscriber;
  const getInstance = inner?.getInstance;
  if (typeof getInstance !== 'function') return undefined;
  const current = (): Emitter | undefined => asEmitter(getInstance.call(inner));
  let watched: Emitter | undefined;
  let pending: NodeJS.Immediate | undefined;
  let stopped = false;
  const lost = (): void => report.lost();
  const ended = (): void => {
    report.lost();
    follow();
  };
  const attach = (next: Emitter | undefined): void => {
    watched?.off('close', lost);
    watched?.off('end', ended);
    watched = next;
    next?.on('close', lost);
    next?.on('end', ended);
  };
  // ioredis picks the next connection in its own 'end' listener, on '+node' (its listener runs after the Cluster's
  // event) or when the Cluster connects: look once those have run.
  const follow = (): void => {
    if (pending !== undefined || stopped) return;
    pending = setImmediate(() => {
      pending = undefined;
      const next = current();
      if (stopped || next === watched) return;
      attach(next);
      report.moved();
    });
  };
  attach(current());
  cluster.on('+node', follow);
  cluster.on('ready', follow);
  return () => {
    stopped = true;
    if (pending !== undefined) clearImmediate(pending);
    attach(undefined);
    cluster.off('+node', follow);
    cluster.off('ready', follow);
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
