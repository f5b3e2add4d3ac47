// Conformance of the one-time claim part of a store: claimOnce, alone and in capped groups (DPoP proofs), and the
// optional isClaimed read.
import type { Awaitable } from '../../leaf/types.js';
import type { TokenStore } from '../../leaf/store.js';
import { MINUTE, T0, runConcern, type Concern, type ConformanceOptions, type ConformanceRunner } from './kit.js';

/** The one-time claim part of a TokenStore: what `claimsConformance` tests. */
export type ClaimsStore = Pick<TokenStore, 'claimOnce' | 'close'> & Partial<Pick<TokenStore, 'isClaimed'>>;

/** The tests of this concern, for `claimsConformance` and `storeConformance`. */
export const claims: Concern<ClaimsStore> = {
  tests({ describe, expect, test, concurrency, whole }) {
    describe('one-time claims (claimOnce)', () => {
      const until = (now: number, expiresAt: number) => ({ now, expiresAt });

      test('claimOnce is true once and false after, until it expires', async (store) => {
        expect(await store.claimOnce('dpop:proof-1', until(T0, T0 + MINUTE))).toBe(true);
        expect(await store.claimOnce('dpop:proof-1', until(T0, T0 + MINUTE))).toBe(false);
        expect(await store.claimOnce('dpop:proof-1', until(T0 + MINUTE - 1, T0 + 2 * MINUTE))).toBe(false);
      });

      test('a claim whose time has passed can be claimed again, and then holds again', async (store) => {
        expect(await store.claimOnce('dpop:proof-1', until(T0, T0 + MINUTE))).toBe(true);
        expect(await store.claimOnce('dpop:proof-1', until(T0 + MINUTE, T0 + 2 * MINUTE))).toBe(true);
        expect(await store.claimOnce('dpop:proof-1', until(T0 + MINUTE + 1, T0 + 3 * MINUTE))).toBe(false);
      });

      test('a refused claim neither extends nor shortens the live one', async (store) => {
        expect(await store.claimOnce('dpop:proof-1', until(T0, T0 + MINUTE))).toBe(true);
        expect(await store.claimOnce('dpop:proof-1', until(T0 + 1, T0 + 10 * MINUTE))).toBe(false);
        expect(await store.claimOnce('dpop:proof-1', until(T0 + 2, T0 + 3))).toBe(false);
        expect(await store.claimOnce('dpop:proof-1', until(T0 + MINUTE - 1, T0 + MINUTE))).toBe(false);
        expect(await store.claimOnce('dpop:proof-1', until(T0 + MINUTE, T0 + 2 * MINUTE))).toBe(true);
      });

      test('a claim with an elapsed expiry is granted but not kept, and never overrides a live claim', async (store) => {
        expect(await store.claimOnce('dpop:late', until(T0, T0))).toBe(true);
        expect(await store.claimOnce('dpop:late', until(T0, T0 + MINUTE))).toBe(true);
        expect(await store.claimOnce('dpop:late', until(T0 + 1, T0 - MINUTE))).toBe(false);
      });

      test('claims are independent per key, including keys that differ only in separators or braces', async (store) => {
        const keys = ['dpop:a', 'dpop:b', 'dpop:a:b', 'dpop:a}:b', 'dpop:{a}', 'dpop%3aa'];
        for (const key of keys) expect(await store.claimOnce(key, until(T0, T0 + MINUTE))).toBe(true);
        for (const key of keys) expect(await store.claimOnce(key, until(T0, T0 + MINUTE))).toBe(false);
      });

      if (whole) {
        test('claims are separate from revocations and rate-limit counters of the same name', async (claims) => {
          // Only a whole store has revocations and counters to keep its claims apart from.
          const store = claims as unknown as TokenStore;
          expect(await store.claimOnce('tok-1', until(T0, T0 + MINUTE))).toBe(true);
          expect(await store.getRevocation('tok-1', 'tok-1', T0)).toBeUndefined();
          expect((await store.consume('tok-1', [{ name: 'policy', limit: 2, windowMs: MINUTE }], T0)).limits[0]?.remaining).toBe(1);
          await store.revoke('tok-2', { now: T0 });
          await store.consume('tok-3', [{ name: 'jti', limit: 1, windowMs: MINUTE }], T0);
          expect(await store.claimOnce('tok-2', until(T0, T0 + MINUTE))).toBe(true);
          expect(await store.claimOnce('tok-3', until(T0, T0 + MINUTE))).toBe(true);
        });
      }

      const inGroup = (now: number, expiresAt: number, group: string, maxPerGroup?: number) =>
        maxPerGroup === undefined ? { now, expiresAt, group } : { now, expiresAt, group, maxPerGroup };

      test('a group at maxPerGroup live claims refuses a new key, and stores nothing for it', async (store) => {
        for (const key of ['dpop:k1', 'dpop:k2', 'dpop:k3']) expect(await store.claimOnce(key, inGroup(T0, T0 + MINUTE, 'dpop:jkt-a', 3))).toBe(true);
        expect(await store.claimOnce('dpop:k4', inGroup(T0 + 1, T0 + MINUTE, 'dpop:jkt-a', 3))).toBe(false);
        // Refused for the cap, not claimed: once the group has room, the same key is claimable.
        expect(await store.claimOnce('dpop:k4', inGroup(T0 + MINUTE, T0 + 2 * MINUTE, 'dpop:jkt-a', 3))).toBe(true);
        expect(await store.claimOnce('dpop:k4', inGroup(T0 + MINUTE, T0 + 2 * MINUTE, 'dpop:jkt-a', 3))).toBe(false);
      });

      test('a full group frees room as its claims expire, and its live claims still refuse replays', async (store) => {
        expect(await store.claimOnce('dpop:k1', inGroup(T0, T0 + MINUTE, 'dpop:jkt-a', 2))).toBe(true);
        expect(await store.claimOnce('dpop:k2', inGroup(T0 + 10, T0 + 10 + MINUTE, 'dpop:jkt-a', 2))).toBe(true);
        expect(await store.claimOnce('dpop:k3', inGroup(T0 + 20, T0 + 20 + MINUTE, 'dpop:jkt-a', 2))).toBe(false);
        // k1 lapses at T0 + MINUTE: one slot frees, k2 is still live and still refused.
        expect(await store.claimOnce('dpop:k2', inGroup(T0 + MINUTE, T0 + 2 * MINUTE, 'dpop:jkt-a', 2))).toBe(false);
        expect(await store.claimOnce('dpop:k3', inGroup(T0 + MINUTE, T0 + 2 * MINUTE, 'dpop:jkt-a', 2))).toBe(true);
        expect(await store.claimOnce('dpop:k5', inGroup(T0 + MINUTE, T0 + 2 * MINUTE, 'dpop:jkt-a', 2))).toBe(false);
      });

      test('a full group does not hold back other groups or claims without a group', async (store) => {
        expect(await store.claimOnce('dpop:a1', inGroup(T0, T0 + MINUTE, 'dpop:jkt-a', 1))).toBe(true);
        expect(await store.claimOnce('dpop:a2', inGroup(T0, T0 + MINUTE, 'dpop:jkt-a', 1))).toBe(false);
        expect(await store.claimOnce('dpop:b1', inGroup(T0, T0 + MINUTE, 'dpop:jkt-b', 1))).toBe(true);
        expect(await store.claimOnce('dpop:c1', until(T0, T0 + MINUTE))).toBe(true);
      });

      test('a claim with an elapsed expiry is granted in a full group (nothing is stored for it)', async (store) => {
        expect(await store.claimOnce('dpop:k1', inGroup(T0, T0 + MINUTE, 'dpop:jkt-a', 1))).toBe(true);
        expect(await store.claimOnce('dpop:k2', inGroup(T0, T0, 'dpop:jkt-a', 1))).toBe(true);
        expect(await store.claimOnce('dpop:k1', inGroup(T0, T0, 'dpop:jkt-a', 1))).toBe(false);
      });

      test('a group without maxPerGroup has no cap, and keys stay one-time inside it', async (store) => {
        for (let i = 0; i < 20; i++) expect(await store.claimOnce(`dpop:k${i}`, inGroup(T0, T0 + MINUTE, 'dpop:jkt-a'))).toBe(true);
        expect(await store.claimOnce('dpop:k7', inGroup(T0, T0 + MINUTE, 'dpop:jkt-a'))).toBe(false);
      });

      test('claimOnce refuses a cap without a group, or one that is not a positive integer, with a TypeError', async (store) => {
        const bad = [
          { now: T0, expiresAt: T0 + MINUTE, maxPerGroup: 3 },
          { now: T0, expiresAt: T0 + MINUTE, group: 'g', maxPerGroup: 0 },
          { now: T0, expiresAt: T0 + MINUTE, group: 'g', maxPerGroup: 1.5 },
          { now: T0, expiresAt: T0 + MINUTE, group: 'g', maxPerGroup: Number.NaN },
          { now: T0, expiresAt: T0 + MINUTE, group: 42 as unknown as string, maxPerGroup: 3 },
        ];
        for (const options of bad) {
          let error: unknown;
          try {
            await store.claimOnce('dpop:k1', options);
          } catch (e) {
            error = e;
          }
          expect(error instanceof TypeError).toBe(true);
        }
        // Nothing was claimed by a refused call.
        expect(await store.claimOnce('dpop:k1', inGroup(T0, T0 + MINUTE, 'g', 1))).toBe(true);
      });

      // isClaimed is optional: these hold for a store that has it.
      test("isClaimed (when the store has it) reads a live claim on the caller's clock and takes nothing", async (store) => {
        const read = store.isClaimed?.bind(store);
        if (read === undefined) return;
        expect(await read('dpop:proof-1', { now: T0 })).toBe(false);
        // Reading takes nothing: the first claim still wins.
        expect(await store.claimOnce('dpop:proof-1', until(T0, T0 + MINUTE))).toBe(true);
        expect(await read('dpop:proof-1', { now: T0 })).toBe(true);
        expect(await read('dpop:proof-1', { now: T0 + MINUTE - 1 })).toBe(true);
        expect(await read('dpop:proof-1', { now: T0 + MINUTE })).toBe(false);
        expect(await read('dpop:proof-2', { now: T0 })).toBe(false);
        // A claim whose window had already passed is not kept, so it is not live.
        expect(await store.claimOnce('dpop:late', until(T0, T0))).toBe(true);
        expect(await read('dpop:late', { now: T0 })).toBe(false);
      });

      test('isClaimed (when the store has it) reads a claim in its group, and a claim refused for the cap is not live', async (store) => {
        const read = store.isClaimed?.bind(store);
        if (read === undefined) return;
        expect(await store.claimOnce('dpop:k1', inGroup(T0, T0 + MINUTE, 'dpop:jkt-a', 1))).toBe(true);
        expect(await store.claimOnce('dpop:k2', inGroup(T0, T0 + MINUTE, 'dpop:jkt-a', 1))).toBe(false);
        expect(await read('dpop:k1', { now: T0, group: 'dpop:jkt-a' })).toBe(true);
        expect(await read('dpop:k2', { now: T0, group: 'dpop:jkt-a' })).toBe(false);
        expect(await read('dpop:k1', { now: T0 + MINUTE, group: 'dpop:jkt-a' })).toBe(false);
        // The read changed nothing: k1 is still refused, and k2 still has no room.
        expect(await store.claimOnce('dpop:k1', inGroup(T0 + 1, T0 + MINUTE, 'dpop:jkt-a', 1))).toBe(false);
        expect(await store.claimOnce('dpop:k2', inGroup(T0 + 1, T0 + MINUTE, 'dpop:jkt-a', 1))).toBe(false);
      });

      test('isClaimed (when the store has it) refuses a non-finite now or a group that is not a string with a TypeError', async (store) => {
        const read = store.isClaimed?.bind(store);
        if (read === undefined) return;
        for (const options of [{ now: Number.NaN }, { now: T0, group: 42 as unknown as string }]) {
          let error: unknown;
          try {
            await read('dpop:k1', options);
          } catch (e) {
            error = e;
          }
          expect(error instanceof TypeError).toBe(true);
        }
      });

      if (concurrency > 0) {
        test(`${concurrency} parallel claims of distinct keys in a group capped at ${Math.max(1, Math.floor(concurrency / 4))}: exactly that many win`, async (store) => {
          const cap = Math.max(1, Math.floor(concurrency / 4));
          const results = await Promise.all(Array.from({ length: concurrency }, (_, i) => store.claimOnce(`dpop:k${i}`, inGroup(T0, T0 + MINUTE, 'dpop:jkt-a', cap))));
          expect(results.filter((r) => r === true).length).toBe(cap);
        });

        test(`${concurrency} parallel claims of one key: exactly one wins`, async (store) => {
          const results = await Promise.all(Array.from({ length: concurrency }, () => store.claimOnce('dpop:proof-1', until(T0, T0 + MINUTE))));
          expect(results.filter((r) => r === true).length).toBe(1);
          expect(results.filter((r) => r === false).length).toBe(concurrency - 1);
        });
      }
    });
  },

  failingCalls: (store) => ({
    // A claim a store cannot record must never read as "first use".
    claimOnce: () => store.claimOnce('dpop:proof-1', { now: T0, expiresAt: T0 + MINUTE }),
    // Nor may a read the store cannot answer pass for "not claimed".
    ...(store.isClaimed !== undefined && { isClaimed: () => store.isClaimed?.('dpop:proof-1', { now: T0 }) }),
  }),
};

/**
 * Registers the one-time claim part of the store conformance suite: a key is claimed once until it expires, a
 * refused claim changes nothing, a group never holds more than its cap, and parallel claims have one winner.
 *
 * Exported from `token-guard/testing`.
 */
export function claimsConformance(name: string, makeStore: () => Awaitable<ClaimsStore>, runner: ConformanceRunner, options: ConformanceOptions<ClaimsStore> = {}): void {
  runConcern(`${name} conforms to the one-time claim part of TokenStore`, claims, makeStore, runner, options);
}
