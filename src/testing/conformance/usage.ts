// Conformance of the usage part of a store: recordUsage (possibly buffered, written by flush) and getUsage.
import type { Awaitable } from '../../leaf/types.js';
import type { TokenStore } from '../../leaf/store.js';
import { RECENT_IPS_KEPT } from '../../leaf/store.js';
import { T0, allTypeErrors, bad, part, refusals, runConcern, type Concern, type ConformanceOptions, type ConformanceRunner } from './kit.js';

/** The usage part of a TokenStore: what `usageConformance` tests. */
export type UsageStore = Pick<TokenStore, 'recordUsage' | 'getUsage' | 'flush' | 'close'>;

/** The tests of this concern, for `usageConformance` and `storeConformance`. */
export const usage: Concern<UsageStore> = {
  tests({ describe, expect, test }) {
    describe('usage', () => {
      test('getUsage of a token never used is undefined', async (store) => {
        expect(await store.getUsage('tok-1')).toBeUndefined();
      });

      test('recordUsage counts uses and keeps the last time and IP, visible after flush', async (store) => {
        await store.recordUsage('tok-1', { at: T0, ip: '203.0.113.9' });
        await store.recordUsage('tok-1', { at: T0 + 1000, ip: '2001:db8::1' });
        await store.recordUsage('tok-1', { at: T0 + 2000, ip: '198.51.100.4' });
        await store.flush?.();
        expect(part(await store.getUsage('tok-1'), ['count', 'firstUsedAt', 'lastUsedAt', 'lastIp'])).toEqual({
          count: 3,
          firstUsedAt: T0,
          lastUsedAt: T0 + 2000,
          lastIp: '198.51.100.4',
        });
      });

      test('a use recorded out of order does not move the last use back', async (store) => {
        await store.recordUsage('tok-1', { at: T0 + 1000, ip: '203.0.113.9' });
        await store.recordUsage('tok-1', { at: T0, ip: '198.51.100.4' });
        await store.flush?.();
        expect(part(await store.getUsage('tok-1'), ['count', 'firstUsedAt', 'lastUsedAt', 'lastIp'])).toEqual({
          count: 2,
          firstUsedAt: T0,
          lastUsedAt: T0 + 1000,
          lastIp: '203.0.113.9',
        });
      });

      test('a use without an IP keeps the last known IP', async (store) => {
        await store.recordUsage('tok-1', { at: T0, ip: '203.0.113.9' });
        await store.recordUsage('tok-1', { at: T0 + 1000 });
        await store.flush?.();
        expect(part(await store.getUsage('tok-1'), ['count', 'lastUsedAt', 'lastIp'])).toEqual({ count: 2, lastUsedAt: T0 + 1000, lastIp: '203.0.113.9' });
      });

      test('uses recorded in separate flushes add up', async (store) => {
        await store.recordUsage('tok-1', { at: T0 });
        await store.flush?.();
        await store.recordUsage('tok-1', { at: T0 + 1 });
        await store.flush?.();
        const u = await store.getUsage('tok-1');
        expect(u?.count).toBe(2);
        expect(u?.lastUsedAt).toBe(T0 + 1);
        expect(u?.lastIp).toBeUndefined();
      });

      test('usage is kept per token', async (store) => {
        await store.recordUsage('tok-1', { at: T0 });
        await store.recordUsage('tok-1', { at: T0 });
        await store.recordUsage('tok-2', { at: T0 + 5 });
        await store.flush?.();
        expect((await store.getUsage('tok-1'))?.count).toBe(2);
        expect(await store.getUsage('tok-2')).toEqual({ count: 1, firstUsedAt: T0 + 5, lastUsedAt: T0 + 5, recentIps: [], minute: T0, minuteCount: 1 });
      });

      test('recent IPs are distinct, most recent first, and capped at RECENT_IPS_KEPT, across flushes', async (store) => {
        for (let i = 0; i < 10; i++) {
          await store.recordUsage('tok-1', { at: T0 + i, ip: `198.51.100.${i}` });
          if (i === 4) await store.flush?.();
        }
        await store.recordUsage('tok-1', { at: T0 + 20, ip: '198.51.100.5' });
        await store.flush?.();
        const u = await store.getUsage('tok-1');
        expect(u?.recentIps).toEqual(['198.51.100.5', '198.51.100.9', '198.51.100.8', '198.51.100.7', '198.51.100.6', '198.51.100.4', '198.51.100.3', '198.51.100.2']);
        expect(u?.recentIps.length).toBe(RECENT_IPS_KEPT);
      });

      test('an older batch of IPs goes after the newer ones', async (store) => {
        await store.recordUsage('tok-1', { at: T0 + 5000, ip: '203.0.113.1' });
        await store.flush?.();
        await store.recordUsage('tok-1', { at: T0, ip: '203.0.113.2' });
        await store.flush?.();
        expect((await store.getUsage('tok-1'))?.recentIps).toEqual(['203.0.113.1', '203.0.113.2']);
      });

      test('the latest User-Agent is kept, and a use without one keeps it', async (store) => {
        await store.recordUsage('tok-1', { at: T0, userAgent: 'curl/8.0' });
        await store.recordUsage('tok-1', { at: T0 + 2, userAgent: 'app/2.1 (iOS)' });
        await store.recordUsage('tok-1', { at: T0 + 1, userAgent: 'old/1.0' });
        await store.flush?.();
        await store.recordUsage('tok-1', { at: T0 + 3 });
        await store.flush?.();
        expect((await store.getUsage('tok-1'))?.lastUserAgent).toBe('app/2.1 (iOS)');
      });

      test('uses in the latest minute add up across flushes and start over in a new minute', async (store) => {
        await store.recordUsage('tok-1', { at: T0 + 1000 });
        await store.recordUsage('tok-1', { at: T0 + 2000 });
        await store.flush?.();
        await store.recordUsage('tok-1', { at: T0 + 59_000 });
        await store.flush?.();
        expect(part(await store.getUsage('tok-1'), ['minute', 'minuteCount'])).toEqual({ minute: T0, minuteCount: 3 });
        await store.recordUsage('tok-1', { at: T0 + 60_000 });
        await store.flush?.();
        expect(part(await store.getUsage('tok-1'), ['minute', 'minuteCount', 'count'])).toEqual({ minute: T0 + 60_000, minuteCount: 1, count: 4 });
        await store.recordUsage('tok-1', { at: T0 + 30_000 });
        await store.flush?.();
        expect(part(await store.getUsage('tok-1'), ['minute', 'minuteCount', 'count', 'firstUsedAt'])).toEqual({
          minute: T0 + 60_000,
          minuteCount: 1,
          count: 5,
          firstUsedAt: T0 + 1000,
        });
      });
    });
  },

  badArguments({ expect, test }) {
    const date = new Date(T0);

    test('recordUsage with a Date, NaN or missing time, or an empty or ill-formed token id, and getUsage of one', async (store) => {
      const cases: Record<string, () => unknown> = {
        'at as a Date': () => store.recordUsage('tok-1', bad({ at: date })),
        'at NaN': () => store.recordUsage('tok-1', { at: Number.NaN }),
        'no usage': () => store.recordUsage('tok-1', bad(undefined)),
        'no at': () => store.recordUsage('tok-1', bad({ ip: '203.0.113.9' })),
        'an empty token id': () => store.recordUsage('', { at: T0 }),
        'getUsage empty': () => store.getUsage(''),
        'a token id with a lone surrogate': () => store.recordUsage('tok-\ud800', { at: T0 }),
        'getUsage of a lone surrogate': () => store.getUsage('tok-\ud800'),
      };
      expect(await refusals(cases)).toEqual(allTypeErrors(cases));
      await store.flush?.();
      expect(await store.getUsage('tok-1')).toBeUndefined();
    });
  },

  failingCalls: (store) => ({
    getUsage: () => store.getUsage('tok-1'),
    // Usage may be buffered: then it is the write-out that must fail.
    'recordUsage + flush': async () => {
      await store.recordUsage('tok-1', { at: T0 });
      await store.flush?.();
    },
  }),
};

/**
 * Registers the usage part of the store conformance suite: uses add up across flushes, the latest use keeps its
 * time, IP and User-Agent, recent IPs are distinct and capped.
 *
 * Exported from `token-guard/testing`.
 */
export function usageConformance(name: string, makeStore: () => Awaitable<UsageStore>, runner: ConformanceRunner, options: ConformanceOptions<UsageStore> = {}): void {
  runConcern(`${name} conforms to the usage part of TokenStore`, usage, makeStore, runner, options);
}
