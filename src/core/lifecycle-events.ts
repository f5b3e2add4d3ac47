// Reporting lifecycle events: one place that stamps an event (id, time), appends it to the store when the store
// keeps events, and hands it to the caller's callback. Shared by the guard and the standalone lifecycle functions.
import { randomUUID } from 'node:crypto';
import { LifecycleEventError } from '../leaf/errors.js';
import type { LifecycleEvent } from '../leaf/lifecycle.js';
import type { TokenStore } from '../leaf/store.js';
import { isThenable, timeout } from './store-calls.js';

/** An event before it is stamped: everything but its id. */
export type EventDraft = Omit<LifecycleEvent, 'id'>;

/** Delivers events to a store (when it keeps them) and a callback. */
export type Reporter = (draft: EventDraft) => Promise<LifecycleEvent>;

/** A fresh event id. */
export function eventId(): string {
  return `evt_${randomUUID().replace(/-/g, '')}`;
}

/** The event of a draft: an id added, absent fields left out (so the stored JSON has no nulls). */
export function stamp(draft: EventDraft): LifecycleEvent {
  const event = { id: eventId() } as LifecycleEvent;
  for (const [k, v] of Object.entries(draft)) if (v !== undefined) (event as unknown as Record<string, unknown>)[k] = v;
  return event;
}

/** Calls a user callback; its errors and rejections are swallowed (an audit hook must not break the change it reports). */
export function deliver(callback: ((event: LifecycleEvent) => void | Promise<void>) | undefined, event: LifecycleEvent): void {
  if (!callback) return;
  try {
    const r = callback(event);
    if (isThenable(r)) Promise.resolve(r).catch(() => undefined);
  } catch {
    // see above
  }
}

/**
 * A reporter for `store` and `callback`. The store's append is awaited, and its failure rejects (a LifecycleEventError
 * saying the change itself was made): an audit trail that silently misses a change is worse than a loud error.
 */
export function reporter(store: TokenStore, callback: ((event: LifecycleEvent) => void | Promise<void>) | undefined, timeoutMs?: number): Reporter {
  return async (draft) => {
    const event = stamp(draft);
    if (typeof store.appendLifecycleEvent === 'function') {
      try {
        const appended = Promise.resolve(store.appendLifecycleEvent({ ...event }));
        await (timeoutMs === undefined ? appended : timeout(appended, timeoutMs));
      } catch (err) {
        deliver(callback, event);
        throw new LifecycleEventError(
          `${event.type} ${event.tokenId ?? event.subject ?? ''} was made, but its lifecycle event could not be kept in the store`.replace('  ', ' '),
          {
            cause: err,
          },
        );
      }
    }
    deliver(callback, event);
    return event;
  };
}
