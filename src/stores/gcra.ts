// GCRA (generic cell rate algorithm): a rate limit kept as one number per counter, the theoretical
// arrival time (TAT). Shared by MemoryStore; the Redis store runs the same arithmetic in Lua.

/** Outcome of one GCRA step. */
export interface GcraStep {
  allowed: boolean;
  /** The TAT to store when the request is charged. */
  tat: number;
  remaining: number;
  resetMs: number;
  retryAfterMs: number;
}

// Float slack so that N requests at one instant against a limit of N never round into a denial.
const EPSILON = 1e-6;

/**
 * One request against a limit of `limit` per `windowMs`, given the stored TAT (undefined when the
 * counter is new). Allows a burst of `limit`, then one request every `windowMs / limit`.
 */
export function gcraStep(storedTat: number | undefined, now: number, limit: number, windowMs: number): GcraStep {
  const interval = windowMs / limit;
  const tat = storedTat === undefined || storedTat < now ? now : storedTat;
  const next = tat + interval;
  if (next - now > windowMs + EPSILON) {
    return { allowed: false, tat, remaining: 0, resetMs: tat - now, retryAfterMs: Math.max(0, next - windowMs - now) };
  }
  const remaining = Math.max(0, Math.floor((windowMs - (next - now)) / interval + EPSILON));
  return { allowed: true, tat: next, remaining, resetMs: next - now, retryAfterMs: 0 };
}
