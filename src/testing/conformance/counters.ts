// Conformance of the rate-limit part of a store: consume, its exact bursts and its all-or-nothing charging.
import type { Awaitable } from '../../leaf/types.js';
import type { RateLimitCheck, TokenStore } from '../../leaf/store.js';
import { MINUTE, T0, allTypeErrors, bad, refusals, runConcern, type Concern, type ConformanceOptions, type ConformanceRunner } from './kit.js';

/** The rate-limit part of a TokenStore: what `countersConformance` tests. */
export type CountersStore = Pick<TokenStore, 'consume' | 'close'> & Partial<Pick<TokenStore, 'peekRateLimit'>>;

/** The tests of this concern, for `countersConformance` and `storeConformance`. */
export const counters: Concern<CountersStore> = {
  tests({ describe, expect, test, concurrency }) {
    describe('rate limits (consume)', () => {
      const perMinute = (limit: number, name = 'policy'): RateLimitCheck => ({ name, limit, windowMs: MINUTE });

      test('a limit of N allows a burst of exactly N, counting remaining down to 0', async (store) => {
        const remaining: number[] = [];
        for (let i = 0; i < 5; i++) {
          const r = await store.consume('tok-1', [perMinute(5)], T0);
          expect(r.allowed).toBe(true);
          remaining.push(r.limits[0]?.remaining as number);
        }
        expect(remaining).toEqual([4, 3, 2, 1, 0]);
      });

      test('the request after the burst is refused with retryAfterMs > 0 and remaining 0', async (store) => {
        for (let i = 0; i < 5; i++) await store.consume('tok-1', [perMinute(5)], T0);
        const r = await store.consume('tok-1', [perMinute(5)], T0);
        expect(r.allowed).toBe(false);
        expect(r.retryAfterMs).toBeGreaterThan(0);
        expect(r.retryAfterMs).toBeLessThanOrEqual(MINUTE);
        expect(r.limits[0]?.remaining).toBe(0);
      });

      test('an allowed request reports retryAfterMs 0, its limit and a reset within the window', async (store) => {
        const r = await store.consume('tok-1', [perMinute(5)], T0);
        expect(r.retryAfterMs).toBe(0);
        expect(r.limits[0]?.limit).toBe(5);
        expect(r.limits[0]?.resetMs).toBeGreaterThan(0);
        expect(r.limits[0]?.resetMs).toBeLessThanOrEqual(MINUTE);
      });

      test('a refused request is allowed once retryAfterMs has passed', async (store) => {
        for (let i = 0; i < 5; i++) await store.consume('tok-1', [perMinute(5)], T0);
        const refused = await store.consume('tok-1', [perMinute(5)], T0);
        expect(refused.allowed).toBe(false);
        const later = await store.consume('tok-1', [perMinute(5)], T0 + refused.retryAfterMs);
        expect(later.allowed).toBe(true);
      });

      test('after a full window the whole burst is available again', async (store) => {
        for (let i = 0; i < 5; i++) await store.consume('tok-1', [perMinute(5)], T0);
        for (let i = 0; i < 5; i++) expect((await store.consume('tok-1', [perMinute(5)], T0 + MINUTE)).allowed).toBe(true);
        expect((await store.consume('tok-1', [perMinute(5)], T0 + MINUTE)).allowed).toBe(false);
      });

      test('several limits are charged all or nothing', async (store) => {
        const checks = [perMinute(10, 'policy'), perMinute(2, 'rule:0')];
        expect((await store.consume('tok-1', checks, T0)).allowed).toBe(true);
        expect((await store.consume('tok-1', checks, T0)).allowed).toBe(true);
        const refused = await store.consume('tok-1', checks, T0);
        expect(refused.allowed).toBe(false);
        expect(refused.retryAfterMs).toBeGreaterThan(0);
        // The refusal did not charge the policy counter: 2 requests so far, so this third one leaves 7.
        const policyOnly = await store.consume('tok-1', [perMinute(10, 'policy')], T0);
        expect(policyOnly.limits[0]?.remaining).toBe(7);
      });

      test('a refused call reports every counter as it stands: the refusing one at 0, the others with what they still have', async (store) => {
        const checks = [perMinute(10, 'policy'), perMinute(2, 'rule:0'), perMinute(3, 'key')];
        await store.consume('tok-1', checks, T0);
        await store.consume('tok-1', checks, T0);
        const refused = await store.consume('tok-1', checks, T0);
        expect(refused.allowed).toBe(false);
        // Two requests charged: the policy has 8 left and the key 1 (not 7 and 0, as if this one had been charged).
        expect(refused.limits.map((l) => [l.name, l.remaining])).toEqual([
          ['policy', 8],
          ['rule:0', 0],
          ['key', 1],
        ]);
        // Resets as they stand: the key's 3 per minute is one every 20 s, two used → full again in 40 s.
        expect(refused.limits.map((l) => Math.round(l.resetMs))).toEqual([12_000, 60_000, 40_000]);
      });

      test('results list every limit with its name, in the order given', async (store) => {
        const r = await store.consume('tok-1', [perMinute(10, 'policy'), perMinute(3, 'rule:2'), perMinute(7, 'key')], T0);
        expect(r.limits.map((l) => [l.name, l.limit, l.remaining])).toEqual([
          ['policy', 10, 9],
          ['rule:2', 3, 2],
          ['key', 7, 6],
        ]);
      });

      test('counters are independent per token', async (store) => {
        for (let i = 0; i < 2; i++) await store.consume('tok-1', [perMinute(2)], T0);
        expect((await store.consume('tok-1', [perMinute(2)], T0)).allowed).toBe(false);
        expect((await store.consume('tok-2', [perMinute(2)], T0)).limits[0]?.remaining).toBe(1);
      });

      test('counters are independent per check name', async (store) => {
        for (let i = 0; i < 2; i++) await store.consume('tok-1', [perMinute(2, 'rule:0')], T0);
        expect((await store.consume('tok-1', [perMinute(2, 'rule:0')], T0)).allowed).toBe(false);
        expect((await store.consume('tok-1', [perMinute(2, 'rule:1')], T0)).limits[0]?.remaining).toBe(1);
      });

      // peekRateLimit is optional: these hold for a store that has it.
      test('peekRateLimit (when the store has it) answers what consume would, and charges nothing', async (store) => {
        const peek = store.peekRateLimit?.bind(store);
        if (!peek) return;
        const limits = [perMinute(2), perMinute(5, 'rule:0')];
        // Peeked three times, still fresh: each answer is a fresh token's first consume.
        const first = await store.consume('tok-2', limits, T0);
        for (let i = 0; i < 3; i++) expect(await peek('tok-1', limits, T0)).toEqual(first);
        expect(first.limits.map((l) => l.remaining)).toEqual([1, 4]);
        await store.consume('tok-1', limits, T0);
        await store.consume('tok-1', limits, T0);
        const full = await peek('tok-1', limits, T0);
        expect([full.allowed, full.limits.map((l) => l.remaining)]).toEqual([false, [0, 3]]);
        expect(full).toEqual(await store.consume('tok-1', limits, T0));
        expect((await peek('tok-1', limits, T0 + MINUTE)).allowed).toBe(true);
      });

      if (concurrency > 0) {
        const limit = Math.max(1, Math.floor(concurrency / 4));
        test(`${concurrency} parallel consume calls on a limit of ${limit} allow exactly ${limit}`, async (store) => {
          const results = await Promise.all(Array.from({ length: concurrency }, () => store.consume('tok-1', [perMinute(limit)], T0)));
          expect(results.filter((r) => r.allowed).length).toBe(limit);
          expect((await store.consume('tok-1', [perMinute(limit)], T0)).allowed).toBe(false);
        });
      }
    });
  },

  badArguments({ expect, test }) {
    const date = new Date(T0);

    test('consume with a Date or NaN now, checks that are not an array, or a limit or window that is not a positive number', async (store) => {
      const check = (c: Partial<Record<keyof RateLimitCheck, unknown>>): RateLimitCheck[] => [bad({ name: 'policy', limit: 5, windowMs: MINUTE, ...c })];
      const cases: Record<string, () => unknown> = {
        'now as a Date': () => store.consume('tok-1', check({}), bad(date)),
        'now NaN': () => store.consume('tok-1', check({}), Number.NaN),
        'checks not an array': () => store.consume('tok-1', bad({ name: 'policy', limit: 5, windowMs: MINUTE }), T0),
        'an empty token id': () => store.consume('', check({}), T0),
        'limit 0': () => store.consume('tok-1', check({ limit: 0 }), T0),
        'limit negative': () => store.consume('tok-1', check({ limit: -5 }), T0),
        'limit NaN': () => store.consume('tok-1', check({ limit: Number.NaN }), T0),
        'limit a string': () => store.consume('tok-1', check({ limit: '5' }), T0),
        'windowMs 0': () => store.consume('tok-1', check({ windowMs: 0 }), T0),
        'windowMs NaN': () => store.consume('tok-1', check({ windowMs: Number.NaN }), T0),
        'windowMs Infinity': () => store.consume('tok-1', check({ windowMs: Number.POSITIVE_INFINITY }), T0),
        'windowMs a duration string': () => store.consume('tok-1', check({ windowMs: '1m' }), T0),
        'an empty name': () => store.consume('tok-1', check({ name: '' }), T0),
        // Redis would count tok-\ud800 and tok-\ufffd on one counter.
        'a token id with a lone surrogate': () => store.consume('tok-\ud800', check({}), T0),
      };
      expect(await refusals(cases)).toEqual(allTypeErrors(cases));
      // Nothing was charged by the refused calls.
      expect((await store.consume('tok-1', [{ name: 'policy', limit: 5, windowMs: MINUTE }], T0)).limits[0]?.remaining).toBe(4);
    });
  },

  failingCalls: (store) => ({
    consume: () => store.consume('tok-1', [{ name: 'policy', limit: 5, windowMs: MINUTE }], T0),
  }),
};

/**
 * Registers the rate-limit part of the store conformance suite: a limit of N allows exactly N, several limits are
 * charged all or nothing, and parallel calls never overshoot. For a store that keeps counters (e.g. in Redis) while
 * another keeps the rest.
 *
 * Exported from `token-guard/testing`.
 */
export function countersConformance(name: string, makeStore: () => Awaitable<CountersStore>, runner: ConformanceRunner, options: ConformanceOptions<CountersStore> = {}): void {
  runConcern(`${name} conforms to the rate-limit part of TokenStore`, counters, makeStore, runner, options);
}
