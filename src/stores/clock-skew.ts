// How much the clocks of the processes sharing a store may disagree before a revocation written by one of them
// stops holding for another: revocations are judged by each reader's own `now`, but stored by the revoker's.

/**
 * Revocation entries are kept this long past their expiry as the revoker's clock sees it, and a revocation whose
 * expiry is at most this far behind the revoker's `now` is still stored. The entry keeps its exact expiry, so every
 * reader still decides with its own clock; the slack only keeps a revoker whose clock runs ahead (an admin laptop
 * running the CLI against production) from dropping an entry that correct-clock instances still need. Larger than
 * the counters' slack (COUNTER_TTL_SLACK_MS): a revoked token served again is worse than a counter reset, and an
 * extra entry for five minutes costs a few bytes.
 */
export const REVOCATION_TTL_SLACK_MS = 5 * 60_000;

/** Whether a revocation expiring at `expiresAt` is worthless to every reader whose clock is within the slack of `now`. */
export function revocationLapsed(expiresAt: number | undefined, now: number): boolean {
  return expiresAt !== undefined && expiresAt <= now - REVOCATION_TTL_SLACK_MS;
}
