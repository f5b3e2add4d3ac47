// The near-caches of this process on each subscriber connection, by channel: stores may share a subscriber. Redis
// counts a subscribed connection once, so the connection answers a revocation once (the publisher's own echo when it
// is on that connection, else the first of its near-caches), and a channel is left only when its last one closes.
const peersOf = new WeakMap<object, Map<string, object[]>>();

/** The near-caches sharing `sub` on `channel` (made on first use): each adds itself when made and removes itself on close. */
export function peersOn<T extends object>(sub: object, channel: string): T[] {
  let channels = peersOf.get(sub);
  if (!channels) {
    channels = new Map();
    peersOf.set(sub, channels);
  }
  let list = channels.get(channel);
  if (!list) {
    list = [];
    channels.set(channel, list);
  }
  return list as T[];
}

/**
 * Makes room on `emitter` for one more listener per event (`+1`), or gives it back (`-1`): every store sharing a
 * connection adds its own, which is not the leak Node's MaxListenersExceededWarning is about. Unlimited stays so.
 */
export function roomForListeners(emitter: object, delta: 1 | -1): void {
  const e = emitter as { getMaxListeners?: () => number; setMaxListeners?: (n: number) => unknown };
  if (typeof e.getMaxListeners !== 'function' || typeof e.setMaxListeners !== 'function') return;
  const max = e.getMaxListeners();
  if (max > 0 && Number.isFinite(max)) e.setMaxListeners(Math.max(1, max + delta));
}
