// Regression (issue 7 item 11): GCRA kept its theoretical arrival time as a float and compared with a fixed 1e-6
// slack, so for 265 of 600 (limit, window) pairs a limit of N refused the Nth request of a burst (the sum of N
// intervals rounded past the window). Both stores must allow exactly N at one instant, refuse the N+1st with the
// right Retry-After, and allow again once one emission interval (rounded up to whole ms) has passed: MemoryStore
// (gcra.ts) and RedisStore (its Lua script) alike, call for call.
import { describe, expect, it } from 'vitest';
import { MemoryStore, type RateLimitCheck, type RateLimitResult } from '../../src/index.js';
import { RedisStore } from '../../src/stores/redis.js';
import { redisUp, useSharedRedis } from '../helpers/redis.js';
import { lcg } from '../helpers/prng.js';

const T0 = Date.UTC(2026, 10, 25, 10, 0, 0);
const LIMITS = Array.from({ length: 60 }, (_, i) => i + 1);
// Whole, odd and long windows: 1 ms, 3 ms, 999 ms, 1 s, 1001 ms, 7 s, 1 min, 1 h, 1 d, 7 d.
const WINDOWS = [1, 3, 999, 1000, 1001, 7000, 60_000, 3_600_000, 86_400_000, 604_800_000];

/** Every (limit, window) pair with a start instant of its own (any ms offset, so none is aligned to the window). */
function pairs(): { limit: number; windowMs: number; start: number }[] {
  // Seeded: the same start instants on every run.
  const rand = lcg(7);
  return LIMITS.flatMap((limit) => WINDOWS.map((windowMs) => ({ limit, windowMs, start: T0 + Math.floor(rand() * 86_400_000) })));
}

type Consume = (tokenId: string, checks: readonly RateLimitCheck[], now: number) => Promise<RateLimitResult>;

/**
 * Runs one pair's burst through `consume`, asserting the exact outcome, and returns every result for comparison.
 * The emission interval is windowMs / limit; `now` is whole ms, so the next request fits ceil(interval) ms later.
 */
async function burst(consume: Consume, tokenId: string, limit: number, windowMs: number, start: number): Promise<RateLimitResult[]> {
  const check = [{ name: 'policy', limit, windowMs }];
  const results: RateLimitResult[] = [];
  const call = async (now: number) => {
    const r = await consume(tokenId, check, now);
    results.push(r);
    return r;
  };
  const where = `limit ${limit} per ${windowMs} ms`;
  for (let k = 1; k <= limit; k++) {
    const r = await call(start);
    expect(r.allowed, `${where}: request ${k} of the burst`).toBe(true);
    expect(r.limits[0]?.remaining, `${where}: remaining after request ${k}`).toBe(limit - k);
  }
  const refused = await call(start);
  const interval = Math.ceil(windowMs / limit); // exact here: both are small integers
  expect(refused.allowed, `${where}: request ${limit + 1} at the same instant`).toBe(false);
  expect(refused.retryAfterMs, `${where}: retryAfterMs of request ${limit + 1}`).toBe(interval);
  if (interval > 1) expect((await call(start + interval - 1)).allowed, `${where}: 1 ms before the interval has passed`).toBe(false);
  // Once ceil(interval) ms have passed, exactly floor(ceil(interval) / interval) more fit (1 unless the interval is under 1 ms).
  const more = Math.floor((interval * limit) / windowMs);
  for (let k = 1; k <= more; k++) expect((await call(start + interval)).allowed, `${where}: request ${k} after one interval`).toBe(true);
  expect((await call(start + interval)).allowed, `${where}: request ${more + 1} after one interval`).toBe(false);
  return results;
}

describe('regression: a limit of N per window allows exactly N at one instant', () => {
  it(`MemoryStore, every pair of limit 1..${LIMITS.length} × ${WINDOWS.length} windows`, async () => {
    const store = new MemoryStore();
    for (const { limit, windowMs, start } of pairs()) {
      await burst(async (...a) => store.consume(...a), `tok-${limit}-${windowMs}`, limit, windowMs, start);
    }
  });

  it('the remaining count is exact for large limits too (exact integers, not float slack)', () => {
    const store = new MemoryStore();
    for (const [limit, windowMs] of [
      [1_000_000, 86_400_000],
      [999_983, 3_600_001],
      [10_000_000, 2_592_000_000],
    ] as const) {
      const check = [{ name: 'policy', limit, windowMs }];
      const first = store.consume(`big-${limit}`, check, T0);
      expect(first.limits[0]?.remaining).toBe(limit - 1);
    }
  });

  describe.skipIf(!redisUp)('RedisStore (the Lua script), against the shared Redis', () => {
    const shared = useSharedRedis('bursts');

    it(`every pair of limit 1..${LIMITS.length} × ${WINDOWS.length} windows, call for call the same as MemoryStore`, async () => {
      const redis = new RedisStore({ client: shared.client, prefix: shared.prefix, commandTimeout: 5000 });
      const memory = new MemoryStore();
      const all = pairs();
      // Pairs use separate token ids, so they run side by side; each pair's calls stay in order.
      for (let i = 0; i < all.length; i += 20) {
        await Promise.all(
          all.slice(i, i + 20).map(async ({ limit, windowMs, start }) => {
            const token = `tok-${limit}-${windowMs}`;
            const fromRedis = await burst((...a) => redis.consume(...a), token, limit, windowMs, start);
            const fromMemory = await burst(async (...a) => memory.consume(...a), token, limit, windowMs, start);
            expect(fromRedis).toEqual(fromMemory);
          }),
        );
      }
      await redis.close();
    }, 120_000);
  });
});
