// token-guard/testing: the conformance suite every TokenStore must pass, runnable under any test runner.
import type { Awaitable } from '../leaf/types.js';
import type { ApiKeyRecord, RateLimitCheck, TokenStore, TokenUsage } from '../leaf/store.js';
import { RECENT_IPS_KEPT } from '../leaf/store.js';

/** The assertions the suite uses: a subset that vitest's, Jest's and similar `expect` functions all provide. */
export interface ConformanceMatchers {
  /** Same value (`Object.is`). */
  toBe(expected: unknown): void;
  /** Deep equality, ignoring properties that are undefined. */
  toEqual(expected: unknown): void;
  /** Strictly undefined. */
  toBeUndefined(): void;
  /** A number greater than `n`. */
  toBeGreaterThan(n: number): void;
  /** A number at most `n`. */
  toBeLessThanOrEqual(n: number): void;
  /** The negated matchers. */
  readonly not: ConformanceMatchers;
}

/** The runner functions the suite registers its tests with: pass your runner's own (`{ describe, it, expect }`). */
export interface ConformanceRunner {
  /** Groups tests (vitest/Jest/Mocha `describe`). */
  describe(name: string, fn: () => void): void;
  /** Registers one async test; the third argument is a timeout in ms (vitest/Jest `it`). */
  it(name: string, fn: () => Promise<void>, timeout?: number): void;
  /** Starts an assertion (vitest/Jest `expect`). */
  expect(actual: unknown): ConformanceMatchers;
}

/** Capability switches of `storeConformance`. */
export interface StoreConformanceOptions {
  /** Parallel calls in the atomicity tests: `consume` on a limit of a quarter of it, `useApiKey` with half of it on 15 % uses left, `claimOnce` of one key. Default: 200. */
  concurrency?: number;
  /** Runs after each test with the store it used (after its `close`), e.g. to delete the keys it wrote. Default: none. */
  cleanup?: (store: TokenStore) => Awaitable<void>;
  /** Timeout of each test in ms, passed to `it` (for remote stores). Default: the runner's. */
  timeout?: number;
  /** Makes a store whose backend is unreachable, to check that every method then fails instead of answering. Default: none (not tested). */
  failingStore?: () => Awaitable<TokenStore>;
  /**
   * Runs the bad-argument cases: a missing `now`, a Date where epoch ms belong, NaN or Infinity, an empty or
   * non-string id, a limit of 0, each must throw or reject with a `TypeError` and store nothing. Turn off only while
   * migrating a store that does not check yet. Default: true.
   */
  argumentChecks?: boolean;
}

/** A fixed instant the suite runs at: stores never read the clock, times are passed in. */
const T0 = Date.UTC(2026, 10, 25, 10, 0, 0);

/** How a call ended: refused with a TypeError (sync or async), another error, or an answer. */
async function refusal(call: () => unknown): Promise<string> {
  try {
    await call();
    return 'answered';
  } catch (e) {
    return e instanceof TypeError ? 'TypeError' : `${e instanceof Error ? e.name : typeof e}: ${e instanceof Error ? e.message : String(e)}`;
  }
}

/** Runs every call of `cases` and returns how each ended, to compare with one expect (so a failure names its case). */
async function refusals(cases: Record<string, () => unknown>): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [name, call] of Object.entries(cases)) out[name] = await refusal(call);
  return out;
}

/** `cases` with every outcome a TypeError: what `refusals` must return. */
function allTypeErrors(cases: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.keys(cases).map((k) => [k, 'TypeError']));
}

/** The named fields of a usage record, to compare without pinning the fields a test is not about. */
function part(u: TokenUsage | undefined, keys: (keyof TokenUsage)[]): Partial<TokenUsage> {
  return Object.fromEntries(keys.map((k) => [k, u?.[k]]));
}
const MINUTE = 60_000;

function record(overrides: Partial<ApiKeyRecord> = {}): ApiKeyRecord {
  return {
    id: 'key_conformance1',
    hash: 'a3f1c9e2b7d4a6c8e0f2b4d6a8c0e2f4b6d8a0c2e4f6b8d0a2c4e6f8b0d2a4c6',
    prefix: 'tg_',
    subject: 'svc-billing',
    scopes: ['orders:read', 'orders:write'],
    createdAt: T0 - 86_400_000,
    expiresAt: T0 + 30 * 86_400_000,
    ...overrides,
  };
}

/** Every optional field set, so a store that drops or mangles one fails the round trip. */
function fullRecord(): ApiKeyRecord {
  return record({
    id: 'key_full',
    hash: 'f'.repeat(64),
    expiresAt: null,
    ip: { allow: ['203.0.113.0/24', '2001:db8::/32'], deny: ['203.0.113.7'] },
    hours: { timezone: 'Europe/Berlin', windows: [{ days: ['mon', 'fri'], from: '22:00', to: '06:00' }] },
    rateLimit: { limit: 100, window: '1m' },
    remaining: 12,
    revokedAt: T0 + 1,
    rotatedFrom: 'key_old',
    rotatedTo: 'key_new',
    name: 'billing — nightly export',
    metadata: { team: 'billing', tier: 3, internal: true },
    scopes: [],
  });
}

/**
 * Registers the store conformance suite: every method of `TokenStore`, its edge cases and its atomicity under
 * concurrent calls. `makeStore` must return a fresh, empty store for each test (it may be async). The suite never
 * imports a test runner: pass yours.
 *
 * Exported from `token-guard/testing`.
 * @example
 * import { describe, it, expect } from 'vitest';
 * import { storeConformance } from 'token-guard/testing';
 * storeConformance('MyStore', () => new MyStore(), { describe, it, expect });
 */
export function storeConformance(
  name: string,
  makeStore: () => Awaitable<TokenStore>,
  runner: ConformanceRunner,
  options: StoreConformanceOptions = {},
): void {
  const { describe, it, expect } = runner;
  const concurrency = options.concurrency ?? 200;

  /** One test on a fresh store, closed and cleaned up afterwards whatever happened. */
  function test(title: string, body: (store: TokenStore) => Promise<void>): void {
    it(
      title,
      async () => {
        const store = await makeStore();
        try {
          await body(store);
        } finally {
          try {
            await store.close?.();
          } finally {
            await options.cleanup?.(store);
          }
        }
      },
      options.timeout,
    );
  }

  describe(`${name} conforms to TokenStore`, () => {
    describe('API key records', () => {
      test('getApiKey of an unknown hash is undefined', async (store) => {
        expect(await store.getApiKey('0'.repeat(64))).toBeUndefined();
      });

      test('putApiKey then getApiKey returns the record with every field intact', async (store) => {
        const r = fullRecord();
        await store.putApiKey(r);
        expect(await store.getApiKey(r.hash)).toEqual(r);
      });

      test('putApiKey replaces the record stored under the same hash', async (store) => {
        await store.putApiKey(record({ remaining: 5 }));
        await store.putApiKey(record({ scopes: ['reports:read'] }));
        const got = await store.getApiKey(record().hash);
        expect(got?.scopes).toEqual(['reports:read']);
        expect(got?.remaining).toBeUndefined();
      });

      test('records under different hashes are separate', async (store) => {
        await store.putApiKey(record());
        await store.putApiKey(record({ id: 'key_other', hash: 'b'.repeat(64), subject: 'svc-other' }));
        expect((await store.getApiKey(record().hash))?.subject).toBe('svc-billing');
        expect((await store.getApiKey('b'.repeat(64)))?.subject).toBe('svc-other');
      });

      test('changing a returned record does not change the stored one', async (store) => {
        await store.putApiKey(record());
        const got = (await store.getApiKey(record().hash)) as ApiKeyRecord;
        try {
          got.scopes.push('admin');
          got.subject = 'mallory';
        } catch {
          // A frozen record refuses the change: just as good.
        }
        const again = await store.getApiKey(record().hash);
        expect(again?.scopes).toEqual(['orders:read', 'orders:write']);
        expect(again?.subject).toBe('svc-billing');
      });

      test('updateApiKey merges the patch and returns the updated record', async (store) => {
        await store.putApiKey(record());
        const updated = await store.updateApiKey(record().hash, { scopes: ['orders:read'], revokedAt: T0, name: 'renamed' });
        const expected = record({ scopes: ['orders:read'], revokedAt: T0, name: 'renamed' });
        expect(updated).toEqual(expected);
        expect(await store.getApiKey(record().hash)).toEqual(expected);
      });

      test('updateApiKey cannot change id, hash, prefix or createdAt', async (store) => {
        await store.putApiKey(record());
        const sneaky = { id: 'key_forged', hash: 'c'.repeat(64), prefix: 'xx_', createdAt: 1, subject: 'svc-new' } as unknown as Parameters<TokenStore['updateApiKey']>[1];
        const updated = await store.updateApiKey(record().hash, sneaky);
        expect(updated).toEqual(record({ subject: 'svc-new' }));
        expect(await store.getApiKey(record().hash)).toEqual(record({ subject: 'svc-new' }));
        expect(await store.getApiKey('c'.repeat(64))).toBeUndefined();
      });

      test('updateApiKey of an unknown hash returns undefined and stores nothing', async (store) => {
        expect(await store.updateApiKey(record().hash, { subject: 'ghost' })).toBeUndefined();
        expect(await store.getApiKey(record().hash)).toBeUndefined();
      });

      test('updateApiKey can set uses left on a key and take the limit away again', async (store) => {
        await store.putApiKey(record());
        expect((await store.updateApiKey(record().hash, { remaining: 2 }))?.remaining).toBe(2);
        expect(await store.useApiKey(record().hash)).toBe(1);
        expect((await store.updateApiKey(record().hash, { remaining: undefined }))?.remaining).toBeUndefined();
        expect(await store.useApiKey(record().hash)).toBeUndefined();
        expect((await store.getApiKey(record().hash))?.remaining).toBeUndefined();
      });

      test('updateApiKey without remaining keeps the uses left', async (store) => {
        await store.putApiKey(record({ remaining: 3 }));
        await store.useApiKey(record().hash);
        expect((await store.updateApiKey(record().hash, { name: 'x' }))?.remaining).toBe(2);
      });

      test('deleteApiKey removes the record and returns true, then false', async (store) => {
        await store.putApiKey(record());
        expect(await store.deleteApiKey(record().hash)).toBe(true);
        expect(await store.getApiKey(record().hash)).toBeUndefined();
        expect(await store.deleteApiKey(record().hash)).toBe(false);
      });

      test('deleteApiKey of an unknown hash returns false', async (store) => {
        expect(await store.deleteApiKey('d'.repeat(64))).toBe(false);
      });
    });

    describe('API key uses (useApiKey)', () => {
      test('takes one use per call and returns the uses left', async (store) => {
        await store.putApiKey(record({ remaining: 3 }));
        expect(await store.useApiKey(record().hash)).toBe(2);
        expect(await store.useApiKey(record().hash)).toBe(1);
        expect(await store.useApiKey(record().hash)).toBe(0);
      });

      test('returns -1 at zero uses left without going negative', async (store) => {
        await store.putApiKey(record({ remaining: 1 }));
        expect(await store.useApiKey(record().hash)).toBe(0);
        expect(await store.useApiKey(record().hash)).toBe(-1);
        expect(await store.useApiKey(record().hash)).toBe(-1);
        expect((await store.getApiKey(record().hash))?.remaining).toBe(0);
      });

      test('getApiKey reflects the uses taken', async (store) => {
        await store.putApiKey(record({ remaining: 10 }));
        await store.useApiKey(record().hash);
        await store.useApiKey(record().hash);
        expect((await store.getApiKey(record().hash))?.remaining).toBe(8);
      });

      test('returns undefined for an unknown key', async (store) => {
        expect(await store.useApiKey('e'.repeat(64))).toBeUndefined();
        expect(await store.getApiKey('e'.repeat(64))).toBeUndefined();
      });

      test('returns undefined for a key without a use limit and leaves it unlimited', async (store) => {
        await store.putApiKey(record());
        expect(await store.useApiKey(record().hash)).toBeUndefined();
        expect(await store.getApiKey(record().hash)).toEqual(record());
      });

      if (concurrency > 0) {
        const calls = Math.max(2, Math.floor(concurrency / 2));
        const left = Math.max(1, Math.floor((concurrency * 3) / 20));
        test(`${calls} parallel uses of a key with ${left} left: exactly ${left} succeed, each count handed out once`, async (store) => {
          await store.putApiKey(record({ remaining: left }));
          const results = await Promise.all(Array.from({ length: calls }, () => store.useApiKey(record().hash)));
          const granted = results.filter((r) => r !== undefined && r >= 0).sort((a, b) => (a as number) - (b as number));
          expect(granted).toEqual(Array.from({ length: left }, (_, i) => i));
          expect(results.filter((r) => r === -1).length).toBe(calls - left);
          expect((await store.getApiKey(record().hash))?.remaining).toBe(0);
        });
      }
    });

    describe('revocation by token id', () => {
      test('a token never revoked reads as not revoked', async (store) => {
        expect(await store.getRevocation('tok-1', undefined, T0)).toBeUndefined();
        expect(await store.getRevocation('tok-1', 'alice', T0)).toBeUndefined();
      });

      test('revoke without an expiry revokes the token from then on, with the time it was revoked', async (store) => {
        await store.revoke('tok-1', { now: T0 });
        expect(await store.getRevocation('tok-1', undefined, T0)).toEqual({ revokedAt: T0 });
        expect(await store.getRevocation('tok-1', 'alice', T0 + 365 * 86_400_000)).toEqual({ revokedAt: T0 });
      });

      test('revoke with a future expiry holds until then and reads as not revoked from expiresAt on', async (store) => {
        await store.revoke('tok-1', { now: T0, expiresAt: T0 + 10 * MINUTE });
        expect(await store.getRevocation('tok-1', undefined, T0 + 10 * MINUTE - 1)).toEqual({ revokedAt: T0 });
        expect(await store.getRevocation('tok-1', undefined, T0 + 10 * MINUTE)).toBeUndefined();
      });

      test('revoke with an elapsed expiry does not persist', async (store) => {
        await store.revoke('tok-1', { now: T0, expiresAt: T0 });
        await store.revoke('tok-2', { now: T0, expiresAt: T0 - MINUTE });
        expect(await store.getRevocation('tok-1', undefined, T0 - 2 * MINUTE)).toBeUndefined();
        expect(await store.getRevocation('tok-2', undefined, T0 - 2 * MINUTE)).toBeUndefined();
      });

      test('a second revoke with an earlier expiry never shortens the first', async (store) => {
        await store.revoke('tok-1', { now: T0, expiresAt: T0 + 10 * MINUTE });
        await store.revoke('tok-1', { now: T0 + MINUTE, expiresAt: T0 + 2 * MINUTE });
        expect(await store.getRevocation('tok-1', undefined, T0 + 5 * MINUTE)).toEqual({ revokedAt: T0 });
      });

      test('a second revoke with a later expiry extends the first', async (store) => {
        await store.revoke('tok-1', { now: T0, expiresAt: T0 + MINUTE });
        await store.revoke('tok-1', { now: T0, expiresAt: T0 + 10 * MINUTE });
        expect(await store.getRevocation('tok-1', undefined, T0 + 5 * MINUTE)).toEqual({ revokedAt: T0 });
      });

      test('a revoke without an expiry after one with an expiry keeps the token revoked for good', async (store) => {
        await store.revoke('tok-1', { now: T0, expiresAt: T0 + MINUTE });
        await store.revoke('tok-1', { now: T0 });
        expect(await store.getRevocation('tok-1', undefined, T0 + 60 * MINUTE)).toEqual({ revokedAt: T0 });
      });

      test('a revoke after an earlier revocation expired starts afresh, with the new time', async (store) => {
        await store.revoke('tok-1', { now: T0, expiresAt: T0 + MINUTE });
        await store.revoke('tok-1', { now: T0 + 2 * MINUTE, expiresAt: T0 + 10 * MINUTE });
        expect(await store.getRevocation('tok-1', undefined, T0 + 3 * MINUTE)).toEqual({ revokedAt: T0 + 2 * MINUTE });
      });

      test('revoking one token leaves every other token alone', async (store) => {
        await store.revoke('tok-1', { now: T0 });
        expect(await store.getRevocation('tok-2', 'alice', T0)).toBeUndefined();
        expect(await store.getRevocation('tok-10', undefined, T0)).toBeUndefined();
      });

      test('token ids with separators and braces are kept apart', async (store) => {
        await store.revoke('a}:b', { now: T0 });
        await store.revoke('{x}', { now: T0 });
        expect(await store.getRevocation('a', undefined, T0)).toBeUndefined();
        expect(await store.getRevocation('a}', undefined, T0)).toBeUndefined();
        expect(await store.getRevocation('x', undefined, T0)).toBeUndefined();
        expect(await store.getRevocation('a}:b', undefined, T0)).toEqual({ revokedAt: T0 });
        expect(await store.getRevocation('{x}', undefined, T0)).toEqual({ revokedAt: T0 });
      });

      test('a token id spelled like a subject does not revoke that subject', async (store) => {
        await store.revoke('alice', { now: T0 });
        expect(await store.getRevocation('tok-1', 'alice', T0)).toBeUndefined();
        expect(await store.getRevocation('alice', undefined, T0)).toEqual({ revokedAt: T0 });
      });
    });

    describe('revocation by subject', () => {
      test('revokeSubject records the cut-off for every token of that subject', async (store) => {
        await store.revokeSubject('alice', { now: T0, before: T0 });
        expect(await store.getRevocation('tok-1', 'alice', T0)).toEqual({ subjectRevokedBefore: T0 });
        expect(await store.getRevocation('tok-2', 'alice', T0 + MINUTE)).toEqual({ subjectRevokedBefore: T0 });
      });

      test('getRevocation without a subject ignores subject revocations', async (store) => {
        await store.revokeSubject('alice', { now: T0, before: T0 });
        expect(await store.getRevocation('tok-1', undefined, T0)).toBeUndefined();
      });

      test('revoking one subject leaves other subjects alone', async (store) => {
        await store.revokeSubject('alice', { now: T0, before: T0 });
        expect(await store.getRevocation('tok-1', 'bob', T0)).toBeUndefined();
        expect(await store.getRevocation('tok-1', 'alice2', T0)).toBeUndefined();
      });

      test('the latest cut-off wins: an earlier one never shortens it', async (store) => {
        await store.revokeSubject('alice', { now: T0, before: T0 + 1000 });
        await store.revokeSubject('alice', { now: T0, before: T0 - 1000 });
        expect(await store.getRevocation('tok-1', 'alice', T0)).toEqual({ subjectRevokedBefore: T0 + 1000 });
        await store.revokeSubject('alice', { now: T0, before: T0 + 2000 });
        expect(await store.getRevocation('tok-1', 'alice', T0)).toEqual({ subjectRevokedBefore: T0 + 2000 });
      });

      test('a subject revocation with an expiry reads as absent from expiresAt on', async (store) => {
        await store.revokeSubject('alice', { now: T0, before: T0, expiresAt: T0 + MINUTE });
        expect(await store.getRevocation('tok-1', 'alice', T0 + MINUTE - 1)).toEqual({ subjectRevokedBefore: T0 });
        expect(await store.getRevocation('tok-1', 'alice', T0 + MINUTE)).toBeUndefined();
      });

      test('a later subject revocation never shortens the expiry of an earlier one', async (store) => {
        await store.revokeSubject('alice', { now: T0, before: T0, expiresAt: T0 + 10 * MINUTE });
        await store.revokeSubject('alice', { now: T0, before: T0 + 1, expiresAt: T0 + MINUTE });
        expect(await store.getRevocation('tok-1', 'alice', T0 + 5 * MINUTE)).toEqual({ subjectRevokedBefore: T0 + 1 });
      });

      test('a subject revocation after an earlier one expired replaces its cut-off instead of keeping the old one', async (store) => {
        await store.revokeSubject('alice', { now: T0, before: T0 + 10 * MINUTE, expiresAt: T0 + MINUTE });
        await store.revokeSubject('alice', { now: T0 + 2 * MINUTE, before: T0 + 2 * MINUTE, expiresAt: T0 + 60 * MINUTE });
        expect(await store.getRevocation('tok-1', 'alice', T0 + 3 * MINUTE)).toEqual({ subjectRevokedBefore: T0 + 2 * MINUTE });
      });

      test('revokeSubject with an elapsed expiry does not persist', async (store) => {
        await store.revokeSubject('alice', { now: T0, before: T0, expiresAt: T0 });
        expect(await store.getRevocation('tok-1', 'alice', T0 - MINUTE)).toBeUndefined();
      });

      test('a revoked token of a revoked subject reports both', async (store) => {
        await store.revoke('tok-1', { now: T0 });
        await store.revokeSubject('alice', { now: T0 + 5, before: T0 + 5 });
        expect(await store.getRevocation('tok-1', 'alice', T0 + 10)).toEqual({ revokedAt: T0, subjectRevokedBefore: T0 + 5 });
      });
    });

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

      if (concurrency > 0) {
        const limit = Math.max(1, Math.floor(concurrency / 4));
        test(`${concurrency} parallel consume calls on a limit of ${limit} allow exactly ${limit}`, async (store) => {
          const results = await Promise.all(Array.from({ length: concurrency }, () => store.consume('tok-1', [perMinute(limit)], T0)));
          expect(results.filter((r) => r.allowed).length).toBe(limit);
          expect((await store.consume('tok-1', [perMinute(limit)], T0)).allowed).toBe(false);
        });
      }
    });

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

      test('claims are separate from revocations and rate-limit counters of the same name', async (store) => {
        expect(await store.claimOnce('tok-1', until(T0, T0 + MINUTE))).toBe(true);
        expect(await store.getRevocation('tok-1', 'tok-1', T0)).toBeUndefined();
        expect((await store.consume('tok-1', [{ name: 'policy', limit: 2, windowMs: MINUTE }], T0)).limits[0]?.remaining).toBe(1);
        await store.revoke('tok-2', { now: T0 });
        await store.consume('tok-3', [{ name: 'jti', limit: 1, windowMs: MINUTE }], T0);
        expect(await store.claimOnce('tok-2', until(T0, T0 + MINUTE))).toBe(true);
        expect(await store.claimOnce('tok-3', until(T0, T0 + MINUTE))).toBe(true);
      });

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

    const { failingStore } = options;
    if (failingStore) {
      describe('errors', () => {
        it(
          'with its backend unreachable, every method throws or rejects rather than answering',
          async () => {
            const store = await failingStore();
            const outcome = async (fn: () => unknown): Promise<string> => {
              try {
                await fn();
                return 'answered';
              } catch {
                return 'failed';
              }
            };
            const calls: Record<string, () => unknown> = {
              getApiKey: () => store.getApiKey(record().hash),
              putApiKey: () => store.putApiKey(record()),
              updateApiKey: () => store.updateApiKey(record().hash, { name: 'x' }),
              deleteApiKey: () => store.deleteApiKey(record().hash),
              useApiKey: () => store.useApiKey(record().hash),
              revoke: () => store.revoke('tok-1', { now: T0 }),
              revokeSubject: () => store.revokeSubject('alice', { now: T0, before: T0 }),
              getRevocation: () => store.getRevocation('tok-1', 'alice', T0),
              consume: () => store.consume('tok-1', [{ name: 'policy', limit: 5, windowMs: MINUTE }], T0),
              // A claim a store cannot record must never read as "first use".
              claimOnce: () => store.claimOnce('dpop:proof-1', { now: T0, expiresAt: T0 + MINUTE }),
              getUsage: () => store.getUsage('tok-1'),
              // Usage may be buffered: then it is the write-out that must fail.
              'recordUsage + flush': async () => {
                await store.recordUsage('tok-1', { at: T0 });
                await store.flush?.();
              },
            };
            const results = await Promise.all(Object.entries(calls).map(async ([method, fn]) => [method, await outcome(fn)] as const));
            expect(Object.fromEntries(results)).toEqual(Object.fromEntries(Object.keys(calls).map((m) => [m, 'failed'])));
            await outcome(() => store.close?.());
          },
          options.timeout,
        );
      });
    }

    describe('usage', () => {
      test('getUsage of a token never used is undefined', async (store) => {
        expect(await store.getUsage('tok-1')).toBeUndefined();
      });

      test('recordUsage counts uses and keeps the last time and IP, visible after flush', async (store) => {
        await store.recordUsage('tok-1', { at: T0, ip: '203.0.113.9' });
        await store.recordUsage('tok-1', { at: T0 + 1000, ip: '2001:db8::1' });
        await store.recordUsage('tok-1', { at: T0 + 2000, ip: '198.51.100.4' });
        await store.flush?.();
        expect(part(await store.getUsage('tok-1'), ['count', 'firstUsedAt', 'lastUsedAt', 'lastIp'])).toEqual({ count: 3, firstUsedAt: T0, lastUsedAt: T0 + 2000, lastIp: '198.51.100.4' });
      });

      test('a use recorded out of order does not move the last use back', async (store) => {
        await store.recordUsage('tok-1', { at: T0 + 1000, ip: '203.0.113.9' });
        await store.recordUsage('tok-1', { at: T0, ip: '198.51.100.4' });
        await store.flush?.();
        expect(part(await store.getUsage('tok-1'), ['count', 'firstUsedAt', 'lastUsedAt', 'lastIp'])).toEqual({ count: 2, firstUsedAt: T0, lastUsedAt: T0 + 1000, lastIp: '203.0.113.9' });
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
        expect(part(await store.getUsage('tok-1'), ['minute', 'minuteCount', 'count', 'firstUsedAt'])).toEqual({ minute: T0 + 60_000, minuteCount: 1, count: 5, firstUsedAt: T0 + 1000 });
      });
    });

    if (options.argumentChecks !== false) {
      // A store that accepts these stores something that silently does nothing: `revoke(id, { expiresAt })` without
      // `now` recorded `revokedAt: undefined` and the token stayed valid. Each must be refused with a TypeError.
      describe('bad arguments are refused with a TypeError, never stored', () => {
        // Values a caller passes by mistake. Cast: the types forbid them, JavaScript callers and `as any` do not.
        const bad = <T>(v: unknown): T => v as T;
        const date = new Date(T0);

        test('revoke without options, without now, or with a Date, NaN or Infinity, or a bad token id', async (store) => {
          const cases: Record<string, () => unknown> = {
            'no options': () => store.revoke('tok-1', bad(undefined)),
            'null options': () => store.revoke('tok-1', bad(null)),
            'expiresAt without now': () => store.revoke('tok-1', bad({ expiresAt: T0 + MINUTE })),
            'now as a Date': () => store.revoke('tok-1', bad({ now: date })),
            'now as a string': () => store.revoke('tok-1', bad({ now: String(T0) })),
            'now NaN': () => store.revoke('tok-1', { now: Number.NaN }),
            'now Infinity': () => store.revoke('tok-1', { now: Number.POSITIVE_INFINITY }),
            'expiresAt as a Date': () => store.revoke('tok-1', bad({ now: T0, expiresAt: new Date(T0 + MINUTE) })),
            'expiresAt NaN': () => store.revoke('tok-1', { now: T0, expiresAt: Number.NaN }),
            'expiresAt Infinity': () => store.revoke('tok-1', { now: T0, expiresAt: Number.POSITIVE_INFINITY }),
            'an empty token id': () => store.revoke('', { now: T0 }),
            'a token id that is a number': () => store.revoke(bad(42), { now: T0 }),
          };
          expect(await refusals(cases)).toEqual(allTypeErrors(cases));
          expect(await store.getRevocation('tok-1', undefined, T0)).toBeUndefined();
        });

        test('revokeSubject without before or now, or with Dates, NaN or a bad subject', async (store) => {
          const cases: Record<string, () => unknown> = {
            'no options': () => store.revokeSubject('alice', bad(undefined)),
            'no before': () => store.revokeSubject('alice', bad({ now: T0 })),
            'no now': () => store.revokeSubject('alice', bad({ before: T0 })),
            'before as a Date': () => store.revokeSubject('alice', bad({ now: T0, before: date })),
            'now as a Date': () => store.revokeSubject('alice', bad({ now: date, before: T0 })),
            'before NaN': () => store.revokeSubject('alice', { now: T0, before: Number.NaN }),
            'expiresAt as a Date': () => store.revokeSubject('alice', bad({ now: T0, before: T0, expiresAt: new Date(T0 + MINUTE) })),
            'expiresAt NaN': () => store.revokeSubject('alice', { now: T0, before: T0, expiresAt: Number.NaN }),
            'an empty subject': () => store.revokeSubject('', { now: T0, before: T0 }),
            'a subject that is not a string': () => store.revokeSubject(bad(['alice']), { now: T0, before: T0 }),
          };
          expect(await refusals(cases)).toEqual(allTypeErrors(cases));
          expect(await store.getRevocation('tok-1', 'alice', T0)).toBeUndefined();
        });

        test('getRevocation with a Date, NaN or missing now, an empty token id, or a subject that is not a string', async (store) => {
          const cases: Record<string, () => unknown> = {
            'now as a Date': () => store.getRevocation('tok-1', 'alice', bad(date)),
            'now NaN': () => store.getRevocation('tok-1', 'alice', Number.NaN),
            'now missing': () => store.getRevocation('tok-1', 'alice', bad(undefined)),
            'an empty token id': () => store.getRevocation('', 'alice', T0),
            'a subject that is a number': () => store.getRevocation('tok-1', bad(7), T0),
          };
          expect(await refusals(cases)).toEqual(allTypeErrors(cases));
        });

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
          };
          expect(await refusals(cases)).toEqual(allTypeErrors(cases));
          // Nothing was charged by the refused calls.
          expect((await store.consume('tok-1', [{ name: 'policy', limit: 5, windowMs: MINUTE }], T0)).limits[0]?.remaining).toBe(4);
        });

        test('recordUsage with a Date, NaN or missing time, or an empty token id', async (store) => {
          const cases: Record<string, () => unknown> = {
            'at as a Date': () => store.recordUsage('tok-1', bad({ at: date })),
            'at NaN': () => store.recordUsage('tok-1', { at: Number.NaN }),
            'no usage': () => store.recordUsage('tok-1', bad(undefined)),
            'no at': () => store.recordUsage('tok-1', bad({ ip: '203.0.113.9' })),
            'an empty token id': () => store.recordUsage('', { at: T0 }),
          };
          expect(await refusals(cases)).toEqual(allTypeErrors(cases));
          await store.flush?.();
          expect(await store.getUsage('tok-1')).toBeUndefined();
        });

        test('putApiKey and updateApiKey with Dates, NaN or fractional uses left in the record', async (store) => {
          await store.putApiKey(record());
          const cases: Record<string, () => unknown> = {
            'put: expiresAt as a Date': () => store.putApiKey(record({ hash: 'b'.repeat(64), expiresAt: bad(new Date(T0 + MINUTE)) })),
            'put: revokedAt as a Date': () => store.putApiKey(record({ hash: 'b'.repeat(64), revokedAt: bad(date) })),
            'put: createdAt NaN': () => store.putApiKey(record({ hash: 'b'.repeat(64), createdAt: Number.NaN })),
            'put: remaining 1.5': () => store.putApiKey(record({ hash: 'b'.repeat(64), remaining: 1.5 })),
            'put: an empty hash': () => store.putApiKey(record({ hash: '' })),
            'put: no record': () => store.putApiKey(bad(undefined)),
            'update: revokedAt as a Date': () => store.updateApiKey(record().hash, bad({ revokedAt: date })),
            'update: expiresAt NaN': () => store.updateApiKey(record().hash, { expiresAt: Number.NaN }),
            'update: remaining NaN': () => store.updateApiKey(record().hash, { remaining: Number.NaN }),
            'update: no patch': () => store.updateApiKey(record().hash, bad(undefined)),
          };
          expect(await refusals(cases)).toEqual(allTypeErrors(cases));
          expect(await store.getApiKey(record().hash)).toEqual(record());
          expect(await store.getApiKey('b'.repeat(64))).toBeUndefined();
        });

        test('API key lookups by an empty or non-string hash', async (store) => {
          const cases: Record<string, () => unknown> = {
            'getApiKey empty': () => store.getApiKey(''),
            'getApiKey a number': () => store.getApiKey(bad(1)),
            'useApiKey empty': () => store.useApiKey(''),
            'deleteApiKey empty': () => store.deleteApiKey(''),
            'updateApiKey empty': () => store.updateApiKey('', { name: 'x' }),
            'getUsage empty': () => store.getUsage(''),
          };
          expect(await refusals(cases)).toEqual(allTypeErrors(cases));
        });
      });
    }
  });
}
