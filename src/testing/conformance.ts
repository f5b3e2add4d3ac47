// token-guard/testing: the conformance suite every TokenStore must pass, runnable under any test runner, whole or by
// concern (keys, revocation, counters, usage, claims, lifecycle) for a store that implements part of the contract.
import type { Awaitable } from '../leaf/types.js';
import type { TokenStore } from '../leaf/store.js';
import { claims } from './conformance/claims.js';
import { counters } from './conformance/counters.js';
import { keys } from './conformance/keys.js';
import { BAD_ARGUMENTS, type ConformanceOptions, type ConformanceRunner, failingBackendTest, type Suite, suiteOf } from './conformance/kit.js';
import { lifecycle, type LifecycleStore } from './conformance/lifecycle.js';
import { revocation } from './conformance/revocation.js';
import { usage } from './conformance/usage.js';

export { type ClaimsStore, claimsConformance } from './conformance/claims.js';
export { type CountersStore, countersConformance } from './conformance/counters.js';
export { type KeysStore, keysConformance } from './conformance/keys.js';
export { type LifecycleStore, type LifecycleStoreMethod, lifecycleConformance } from './conformance/lifecycle.js';
export type { Closable, ConformanceMatchers, ConformanceOptions, ConformanceRunner } from './conformance/kit.js';
export { type RevocationStore, revocationConformance } from './conformance/revocation.js';
export { type UsageStore, usageConformance } from './conformance/usage.js';

/** Capability switches of `storeConformance` (each per-concern suite takes the same, for its part of a store). */
export type StoreConformanceOptions = ConformanceOptions<TokenStore>;

/**
 * Registers the store conformance suite: every method of `TokenStore`, its edge cases and its atomicity under
 * concurrent calls, concern by concern (the same tests as `keysConformance`, `revocationConformance`,
 * `countersConformance`, `claimsConformance` and `usageConformance`, plus those that need the whole store).
 * `makeStore` must return a fresh, empty store for each test (it may be async). The suite never imports a test
 * runner: pass yours.
 *
 * Exported from `token-guard/testing`.
 * @example
 * import { describe, it, expect } from 'vitest';
 * import { storeConformance } from 'token-guard/testing';
 * storeConformance('MyStore', () => new MyStore(), { describe, it, expect });
 */
export function storeConformance(name: string, makeStore: () => Awaitable<TokenStore>, runner: ConformanceRunner, options: StoreConformanceOptions = {}): void {
  const suite = suiteOf(makeStore, runner, options, true);
  // The lifecycle methods are optional in TokenStore: their concern runs when asked for, on the same store.
  const withLifecycle = options.lifecycle === true ? (suite as unknown as Suite<LifecycleStore>) : undefined;
  runner.describe(`${name} conforms to TokenStore`, () => {
    keys.tests(suite);
    revocation.tests(suite);
    counters.tests(suite);
    claims.tests(suite);
    if (withLifecycle) lifecycle.tests(withLifecycle);
    const { failingStore } = options;
    if (failingStore) {
      failingBackendTest(
        suite,
        failingStore,
        (store) => ({
          ...keys.failingCalls(store),
          ...revocation.failingCalls(store),
          ...counters.failingCalls(store),
          ...claims.failingCalls(store),
          ...usage.failingCalls(store),
          ...(withLifecycle ? lifecycle.failingCalls(store as LifecycleStore) : {}),
        }),
        options.timeout,
      );
    }
    usage.tests(suite);
    if (options.argumentChecks !== false) {
      // A store that accepts these stores something that silently does nothing: `revoke(id, { expiresAt })` without
      // `now` recorded `revokedAt: undefined` and the token stayed valid. Each must be refused with a TypeError.
      runner.describe(BAD_ARGUMENTS, () => {
        for (const concern of [revocation, counters, usage, keys, claims]) concern.badArguments?.(suite);
        if (withLifecycle) lifecycle.badArguments?.(withLifecycle);
      });
    }
  });
}
