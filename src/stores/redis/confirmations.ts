// How a revocation waits for the instances listening to confirm it, and how that wait ends when it cannot: a timeout,
// or the store closing (shutdown during a revoke), which ends it at once instead of leaving it to the timeout.
import { StoreError } from '../../leaf/errors.js';

/** One revocation waiting for its confirmations. */
export interface PendingConfirm {
  /** Acknowledgements from other connections. */
  acks: number;
  /** How many other connections the server counted (infinite until the write has answered). */
  needed: number;
  /** Whether this instance's own subscriber heard the invalidation (NUMSUB cannot count a subscriber on another server). */
  echoed: boolean;
  done: () => void;
}

/** The error of a revoke that reached a closed store: nothing was written. */
export function closedBeforeWrite(): StoreError {
  return new StoreError('RedisStore is closed: the revocation was not stored');
}

/**
 * Waits until `confirmed` resolves (every counted connection and the own subscriber answered), and rejects with a
 * StoreError saying the revocation is stored but unconfirmed when `timeoutMs` passes first or `closed` resolves first.
 * Leaves no timer behind either way.
 */
export async function awaitConfirmations(pending: PendingConfirm, confirmed: Promise<void>, closed: Promise<void>, timeoutMs: number, listening: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
  // Confirmed first in the list: a wait that is confirmed and closed at once counts as confirmed.
  const outcome = await Promise.race([confirmed.then(() => 'confirmed' as const), timedOut, closed.then(() => 'closed' as const)]);
  clearTimeout(timer);
  if (outcome === 'confirmed') return;
  const missing = `${pending.needed - pending.acks} of ${listening} instance(s)`;
  if (outcome === 'closed') {
    // The store's subscriber is leaving: nothing it hears from now on is waited for.
    throw new StoreError(
      `revocation stored, but the RedisStore was closed before ${pending.echoed ? `${missing} confirmed it` : 'its own subscriber heard its invalidation'}; ` +
        'other instances may answer from their near-cache until its ttl',
    );
  }
  if (!pending.echoed) {
    throw new StoreError(
      `revocation stored, but this instance's own subscriber did not hear its invalidation within ${timeoutMs} ms ` +
        '(disconnected, or connected to another Redis than the client); other instances may answer from their near-cache until its ttl',
    );
  }
  throw new StoreError(`revocation stored, but ${missing} did not confirm within ${timeoutMs} ms; their near-cache drops it within its ttl`);
}
