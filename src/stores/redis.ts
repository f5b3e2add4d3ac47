// token-guard/redis: RedisStore, token state shared by every app instance through Redis (standalone or Cluster).
// The store lives in ./redis/: store.ts (the class), lua.ts (its scripts), keys.ts (key layout), near-cache.ts
// (cached revocation lookups and their pub/sub invalidation), usage-buffer.ts (usage write-behind), options.ts,
// records.ts (what is kept in Redis, read and written) and command.ts (the time bound on every call).
export { RedisStore } from './redis/store.js';
export type { RedisNearCacheOptions, RedisStoreOptions, RedisStoreStats } from './redis/options.js';
export { RedisDurabilityError, type RedisDurability, type RedisDurabilityReport } from './redis/durability.js';
export { StoreArgumentError } from './validate.js';
