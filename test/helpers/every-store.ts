// One set of store cases run against MemoryStore, and against RedisStore and PostgresStore where they are up (each
// with its own prefix or database, cleaned up after): what every built-in store must do alike.
import { describe } from 'vitest';
import { MemoryStore, type TokenStore } from '../../src/index.js';
import { RedisStore } from '../../src/stores/redis.js';
import { pgUp, useTestDatabase } from './postgres.js';
import { redisUp, useSharedRedis } from './redis.js';

/** The key-record half of the store contract, which all three stores hold (PostgresStore holds no counters). */
export type KeyStore = Pick<TokenStore, 'putApiKey' | 'getApiKey' | 'updateApiKey'>;

/** Registers `cases` for each built-in store's key records; `suite` names the Redis prefix and the database. */
export function onEveryStore(suite: string, cases: (name: string, make: () => Promise<KeyStore>) => void): void {
  cases('MemoryStore', async () => new MemoryStore());
  describe.skipIf(!redisUp)('on Redis', () => {
    const redis = useSharedRedis(suite);
    cases('RedisStore', async () => new RedisStore({ client: redis.client, prefix: redis.prefix, durability: 'ignore' }));
  });
  describe.skipIf(!pgUp)('on PostgreSQL', () => {
    const db = useTestDatabase(suite);
    cases('PostgresStore', async () => (await db.store()).store);
  });
}
