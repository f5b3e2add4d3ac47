// The conformance kit by concern: a store that implements only part of TokenStore (counters in Redis, keys in
// Postgres, …) runs just that part's suite, and each part's suite still catches a store that breaks its contract.
import { describe, expect, it } from 'vitest';
import { MemoryStore, StoreError } from '../../src/index.js';
import {
  claimsConformance,
  type ConformanceRunner,
  type CountersStore,
  countersConformance,
  keysConformance,
  revocationConformance,
  usageConformance,
} from '../../src/testing/conformance.js';

/** A counters-only store: nothing but consume (and close), backed by a MemoryStore it does not expose. */
function countersOnly(): CountersStore {
  const memory = new MemoryStore();
  return { consume: (tokenId, checks, now) => memory.consume(tokenId, checks, now) };
}

countersConformance('a counters-only store backed by MemoryStore', countersOnly, { describe, it, expect });

keysConformance(
  'a keys-only store backed by MemoryStore',
  () => {
    const m = new MemoryStore();
    return {
      getApiKey: (hash) => m.getApiKey(hash),
      putApiKey: (record) => m.putApiKey(record),
      updateApiKey: (hash, patch, condition) => m.updateApiKey(hash, patch, condition),
      deleteApiKey: (hash) => m.deleteApiKey(hash),
      useApiKey: (hash) => m.useApiKey(hash),
    };
  },
  { describe, it, expect },
);

revocationConformance(
  'a revocation-only store backed by MemoryStore',
  () => {
    const m = new MemoryStore();
    return {
      revoke: (id, o) => m.revoke(id, o),
      revokeSubject: (subject, o) => m.revokeSubject(subject, o),
      getRevocation: (id, subject, now) => m.getRevocation(id, subject, now),
    };
  },
  { describe, it, expect },
);

usageConformance(
  'a usage-only store backed by MemoryStore',
  () => {
    const m = new MemoryStore();
    return { recordUsage: (id, u) => m.recordUsage(id, u), getUsage: (id) => m.getUsage(id) };
  },
  { describe, it, expect },
);

claimsConformance(
  'a claims-only store backed by MemoryStore',
  () => {
    const m = new MemoryStore();
    return { claimOnce: (key, o) => m.claimOnce(key, o) };
  },
  { describe, it, expect },
);

/** A runner that collects the tests a suite registers, to run them here and see which fail. */
function collectingRunner(): { runner: ConformanceRunner; run: () => Promise<{ passed: string[]; failed: string[] }> } {
  const tests: [string, () => Promise<void>][] = [];
  const path: string[] = [];
  const runner: ConformanceRunner = {
    describe(name, fn) {
      path.push(name);
      fn();
      path.pop();
    },
    it(name, fn) {
      tests.push([[...path, name].join(' > '), fn]);
    },
    expect,
  };
  return {
    runner,
    async run() {
      const passed: string[] = [];
      const failed: string[] = [];
      for (const [name, fn] of tests) {
        try {
          await fn();
          passed.push(name);
        } catch {
          failed.push(name);
        }
      }
      return { passed, failed };
    },
  };
}

describe('a per-concern suite holds a partial store to its part of the contract', () => {
  it('countersConformance registers only rate-limit tests, all of which a correct counters-only store passes', async () => {
    const { runner, run } = collectingRunner();
    countersConformance('counters', countersOnly, runner, { concurrency: 20 });
    const { passed, failed } = await run();
    expect(failed).toEqual([]);
    expect(passed.length).toBeGreaterThan(10);
    expect(passed.every((name) => name.startsWith('counters conforms to the rate-limit part of TokenStore > '))).toBe(true);
    expect(passed.some((name) => /API key|revocation|claim|usage/i.test(name))).toBe(false);
  });

  it('fails a counters-only store that allows every request', async () => {
    const { runner, run } = collectingRunner();
    const generous: CountersStore = {
      consume: (_tokenId, checks) => ({ allowed: true, retryAfterMs: 0, limits: checks.map((c) => ({ name: c.name, limit: c.limit, remaining: c.limit, resetMs: 0 })) }),
    };
    countersConformance('generous', () => generous, runner, { concurrency: 20 });
    const { failed } = await run();
    expect(failed).toContain(
      'generous conforms to the rate-limit part of TokenStore > rate limits (consume) > a limit of N allows a burst of exactly N, counting remaining down to 0',
    );
    expect(failed).toContain('generous conforms to the rate-limit part of TokenStore > rate limits (consume) > 20 parallel consume calls on a limit of 5 allow exactly 5');
  });

  it('fails a counters-only store that accepts a Date where epoch milliseconds belong', async () => {
    const { runner, run } = collectingRunner();
    const lax = (): CountersStore => {
      const memory = new MemoryStore();
      // Converts what it is given instead of refusing it: a Date becomes its epoch ms.
      return { consume: (tokenId, checks, now) => memory.consume(tokenId, checks, typeof now === 'number' ? now : Number(now)) };
    };
    countersConformance('lax', lax, runner, { concurrency: 0 });
    const { failed } = await run();
    expect(failed).toEqual([
      'lax conforms to the rate-limit part of TokenStore > bad arguments are refused with a TypeError, never stored > consume with a Date or NaN now, checks that are not an array, or a limit or window that is not a positive number',
    ]);
  });

  it('with failingStore, checks that only the concern’s own methods fail when the backend is unreachable', async () => {
    const { runner, run } = collectingRunner();
    const down = (): CountersStore => ({ consume: () => Promise.reject(new StoreError('Redis consume timed out')) });
    countersConformance('down', countersOnly, runner, { concurrency: 0, failingStore: down });
    const { passed, failed } = await run();
    expect(failed).toEqual([]);
    expect(passed).toContain(
      'down conforms to the rate-limit part of TokenStore > errors > with its backend unreachable, every method throws or rejects rather than answering',
    );

    const answers = collectingRunner();
    countersConformance('answers', countersOnly, answers.runner, { concurrency: 0, failingStore: countersOnly });
    expect((await answers.run()).failed).toEqual([
      'answers conforms to the rate-limit part of TokenStore > errors > with its backend unreachable, every method throws or rejects rather than answering',
    ]);
  });
});
