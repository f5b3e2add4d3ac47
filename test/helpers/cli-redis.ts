// The shared Redis as the CLI suites use it: useSharedRedis's client and prefix (cleaned up after the suite), and a
// RedisStore over them, for the test's own reads and writes beside what the command does under `--prefix`.
import { afterAll, beforeAll } from 'vitest';
import { RedisStore } from '../../src/stores/redis.js';
import { type SuiteRedis, useSharedRedis } from './redis.js';

/** What useCliRedis gives a suite. */
export interface CliRedis extends SuiteRedis {
  /** A RedisStore on the client under the suite's prefix, the one the command is given (read it in a test or hook). */
  readonly store: RedisStore;
}

/**
 * For the enclosing describe (put it under `describe.skipIf(!redisUp)`: unreachable fails on CI, else skips loudly):
 * useSharedRedis, and a RedisStore made before the tests and closed after them, before the prefix is deleted.
 */
export function useCliRedis(suite: string): CliRedis {
  const shared = useSharedRedis(suite);
  let store: RedisStore | undefined;
  beforeAll(() => {
    store = new RedisStore({ client: shared.client, prefix: shared.prefix });
  });
  // Registered after useSharedRedis's hooks, so it runs before them (vitest's default sequence.hooks is 'stack'): the
  // store flushes through the client, which must still be connected.
  afterAll(async () => {
    await store?.close();
  });
  return {
    prefix: shared.prefix,
    get client() {
      return shared.client;
    },
    get store() {
      if (!store) throw new Error(`useCliRedis('${suite}'): the store is made in beforeAll, read it in a test or hook`);
      return store;
    },
  };
}
