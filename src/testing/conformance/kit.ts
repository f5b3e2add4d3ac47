// What every part of the conformance suite shares: the runner and option types, the fixed instant, sample records,
// and the way one test gets a fresh store and a failing call gets reported.
import type { Awaitable } from '../../leaf/types.js';
import type { ApiKeyRecord, TokenStore, TokenUsage } from '../../leaf/store.js';

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

/** What every store under test may have: a way to let go of its connections. */
export type Closable = Partial<Pick<TokenStore, 'close'>>;

/** Capability switches of a conformance suite, for a store (or the part of one) of type `S`. */
export interface ConformanceOptions<S extends Closable = TokenStore> {
  /** Parallel calls in the atomicity tests: `consume` on a limit of a quarter of it, `useApiKey` with half of it on 15 % uses left, `claimOnce` of one key. Default: 200. */
  concurrency?: number;
  /** Runs after each test with the store it used (after its `close`), e.g. to delete the keys it wrote. Default: none. */
  cleanup?: (store: S) => Awaitable<void>;
  /** Timeout of each test in ms, passed to `it` (for remote stores). Default: the runner's. */
  timeout?: number;
  /** Makes a store whose backend is unreachable, to check that every method then fails instead of answering. Default: none (not tested). */
  failingStore?: () => Awaitable<S>;
  /**
   * Runs the bad-argument cases: a missing `now`, a Date where epoch ms belong, NaN or Infinity, an empty or
   * non-string id, a limit of 0, each must throw or reject with a `TypeError` and store nothing. Turn off only while
   * migrating a store that does not check yet. Default: true.
   */
  argumentChecks?: boolean;
  /**
   * `storeConformance` only: also runs the lifecycle concern (`lifecycleConformance`: key inventory, lifecycle
   * events, revocation reasons) for a store that implements TokenStore's optional lifecycle methods. Default: false.
   */
  lifecycle?: boolean;
}

/** A fixed instant the suite runs at: stores never read the clock, times are passed in. */
export const T0 = Date.UTC(2026, 10, 25, 10, 0, 0);
export const MINUTE = 60_000;
/** One day in ms. */
export const DAY = 86_400_000;

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
export async function refusals(cases: Record<string, () => unknown>): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [name, call] of Object.entries(cases)) out[name] = await refusal(call);
  return out;
}

/** `cases` with every outcome a TypeError: what `refusals` must return. */
export function allTypeErrors(cases: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.keys(cases).map((k) => [k, 'TypeError']));
}

/** A value a caller passes by mistake. Cast: the types forbid it, JavaScript callers and `as any` do not. */
export const bad = <T>(v: unknown): T => v as T;

/** The named fields of a usage record, to compare without pinning the fields a test is not about. */
export function part(u: TokenUsage | undefined, keys: (keyof TokenUsage)[]): Partial<TokenUsage> {
  return Object.fromEntries(keys.map((k) => [k, u?.[k]]));
}

/** A plain API key record, with `overrides`. */
export function record(overrides: Partial<ApiKeyRecord> = {}): ApiKeyRecord {
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
export function fullRecord(): ApiKeyRecord {
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

/** What a part of the suite registers its tests with. */
export interface Suite<S extends Closable> extends ConformanceRunner {
  /** One test on a fresh store, closed and cleaned up afterwards whatever happened. */
  test(title: string, body: (store: S) => Promise<void>): void;
  /** Parallel calls in the atomicity tests (0: none). */
  concurrency: number;
  /** Whether the store is a whole TokenStore: then the tests that span concerns run too. */
  whole: boolean;
}

/** The tests of one concern of the store contract. */
export interface Concern<S extends Closable> {
  /** Registers what the concern's methods must do. */
  tests(suite: Suite<S>): void;
  /** Registers the cases where the concern's methods must refuse an argument with a TypeError (none: tested with the rest). */
  badArguments?(suite: Suite<S>): void;
  /** Every method of the concern, called once: each must fail when the backend is unreachable. */
  failingCalls(store: S): Record<string, () => unknown>;
}

/** Binds the runner, the store factory and the options into a Suite. */
export function suiteOf<S extends Closable>(makeStore: () => Awaitable<S>, runner: ConformanceRunner, options: ConformanceOptions<S>, whole: boolean): Suite<S> {
  const { describe, it, expect } = runner;
  return {
    describe,
    it,
    expect,
    concurrency: options.concurrency ?? 200,
    whole,
    test(title, body) {
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
    },
  };
}

/** Registers the test that every call in `calls` fails (throws or rejects) on a store whose backend is unreachable. */
export function failingBackendTest<S extends Closable>(
  suite: Suite<S>,
  failingStore: () => Awaitable<S>,
  calls: (store: S) => Record<string, () => unknown>,
  timeout: number | undefined,
): void {
  const { describe, it, expect } = suite;
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
        const all = calls(store);
        const results = await Promise.all(Object.entries(all).map(async ([method, fn]) => [method, await outcome(fn)] as const));
        expect(Object.fromEntries(results)).toEqual(Object.fromEntries(Object.keys(all).map((m) => [m, 'failed'])));
        await outcome(() => store.close?.());
      },
      timeout,
    );
  });
}

/** The title of the group that holds every concern's bad-argument cases. */
export const BAD_ARGUMENTS = 'bad arguments are refused with a TypeError, never stored';

/** Registers one concern on its own, as its public per-concern suite does. */
export function runConcern<S extends Closable>(
  title: string,
  concern: Concern<S>,
  makeStore: () => Awaitable<S>,
  runner: ConformanceRunner,
  options: ConformanceOptions<S>,
): void {
  const suite = suiteOf(makeStore, runner, options, false);
  runner.describe(title, () => {
    concern.tests(suite);
    if (options.failingStore) failingBackendTest(suite, options.failingStore, (store) => concern.failingCalls(store), options.timeout);
    if (options.argumentChecks !== false && concern.badArguments) runner.describe(BAD_ARGUMENTS, () => concern.badArguments?.(suite));
  });
}
