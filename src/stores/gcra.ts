// GCRA (generic cell rate algorithm): a rate limit kept as one time per counter, the theoretical arrival time
// (TAT). Shared by MemoryStore; the Redis store runs the same arithmetic in Lua (CONSUME_LUA in redis.ts).
//
// Exact, in integers: the emission interval windowMs / limit is rarely a whole number of ms, and float slack
// either refuses the Nth request of a burst or lets an N+1st through for some (limit, window) pairs. So a TAT is
// kept as a whole number of ms plus a remainder in units of 1/limit ms, and every comparison is on integers
// below 2^53 (the validator bounds now and windowMs so that sums stay there), in JS as in Lua.
import type { RateLimitCheck, RateLimitResult } from '../leaf/store.js';

/**
 * Kept past its TAT this long. The TTL only frees memory (a TAT that has passed counts as a fresh counter anyway),
 * but it runs on the store's clock while the TAT is judged by the caller's `now`: without slack, a caller whose clock
 * is behind (or a test on fake time) would see a counter vanish early and its limit reset.
 */
export const COUNTER_TTL_SLACK_MS = 60_000;

/** A theoretical arrival time: `q + r / limit` ms since the epoch, with `0 <= r < limit`. */
export interface GcraTat {
  /** Whole milliseconds. */
  q: number;
  /** The fraction of a millisecond, in units of `1 / limit` ms. */
  r: number;
  /** The limit `r` is counted against (a counter's limit may change between calls). */
  limit: number;
}

/** Outcome of one GCRA step. */
export interface GcraStep {
  allowed: boolean;
  /** The TAT to store when the request is charged (the stored one, unchanged, when refused). */
  tat: GcraTat;
  remaining: number;
  resetMs: number;
  /**
   * The counter as it stands before this request (`remaining` and `resetMs` without the charge): what a call reports
   * when another of its counters refused, so that nothing was charged. The same as `remaining`/`resetMs` when refused.
   */
  heldRemaining: number;
  heldResetMs: number;
  retryAfterMs: number;
  /** The counter's time to live in whole ms: until its TAT, plus COUNTER_TTL_SLACK_MS. */
  ttlMs: number;
}

/**
 * `tat` re-expressed in units of `1 / limit` ms. A remainder that does not convert exactly is rounded up: a
 * changed limit may cost a fraction of a millisecond of room, never grant one.
 */
function rebase(tat: GcraTat, limit: number): { q: number; r: number } {
  if (tat.limit === limit) return { q: tat.q, r: tat.r };
  const r = Math.ceil((tat.r * limit) / tat.limit);
  return r >= limit ? { q: tat.q + 1, r: r - limit } : { q: tat.q, r };
}

/**
 * One request against a limit of `limit` per `windowMs` at `now`, given the stored TAT (undefined when the counter
 * is new). Allows a burst of exactly `limit`, then one request every `windowMs / limit`. `now` and `windowMs` are
 * integers and `limit` a positive integer (validated by the stores).
 */
export function gcraStep(stored: GcraTat | undefined, now: number, limit: number, windowMs: number): GcraStep {
  // The emission interval windowMs / limit as whole ms plus a remainder in 1/limit ms.
  const iq = Math.floor(windowMs / limit);
  const ir = windowMs - iq * limit;
  // A new counter, or one whose TAT has passed, starts from now (q < now means q + r/limit < now, as r < limit).
  let q = now;
  let r = 0;
  if (stored !== undefined) {
    const t = rebase(stored, limit);
    if (t.q >= now) ({ q, r } = t);
  }
  // The TAT this request would move the counter to, and how far ahead of now that is (dq + dr/limit ms).
  let dr = r + ir;
  let dq = q + iq - now;
  if (dr >= limit) {
    dr -= limit;
    dq += 1;
  }
  // Room while the next TAT is at most one window ahead.
  if (dq < windowMs || (dq === windowMs && dr === 0)) {
    // Requests that still fit after this one: floor((window - ahead) / interval), on integers.
    const remaining = Math.floor(((windowMs - dq) * limit - dr) / windowMs);
    // Before the charge one more fits (floor(x) = floor(x - 1) + 1), and the counter is full again at its current TAT.
    return {
      allowed: true,
      tat: { q: now + dq, r: dr, limit },
      remaining,
      resetMs: dq + dr / limit,
      heldRemaining: remaining + 1,
      heldResetMs: q - now + r / limit,
      retryAfterMs: 0,
      ttlMs: dq + (dr > 0 ? 1 : 0) + COUNTER_TTL_SLACK_MS,
    };
  }
  // Refused, nothing charged. The request fits once ahead <= window: the ceiling of the excess, in whole ms.
  const retryAfterMs = dq - windowMs + (dr > 0 ? 1 : 0);
  const resetMs = q - now + r / limit;
  return {
    allowed: false,
    tat: { q, r, limit },
    remaining: 0,
    resetMs,
    heldRemaining: 0,
    heldResetMs: resetMs,
    retryAfterMs,
    ttlMs: q - now + (r > 0 ? 1 : 0) + COUNTER_TTL_SLACK_MS,
  };
}

/** A consume call's answer from its counters' steps: `allowed` when every one had room (and all were charged). */
export function gcraResult(checks: readonly RateLimitCheck[], steps: readonly GcraStep[], allowed: boolean): RateLimitResult {
  return {
    allowed,
    retryAfterMs: allowed ? 0 : Math.max(...steps.map((s) => s.retryAfterMs)),
    // Refused: nothing was charged, so every counter is reported as it stands (the refusing ones at 0).
    limits: checks.map((c, i) => {
      const s = steps[i] as GcraStep;
      return { name: c.name, limit: c.limit, remaining: allowed ? s.remaining : s.heldRemaining, resetMs: allowed ? s.resetMs : s.heldResetMs };
    }),
  };
}
