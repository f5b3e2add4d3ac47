// token-guard/redis: RedisStore, token state shared by every app instance through Redis (standalone or Cluster).
// The store lives in ./redis/: store.ts (the class), api-keys.ts (key records), events.ts (lifecycle events), lua.ts
// (its scripts), keys.ts (key layout), near-cache.ts (cached revocation lookups and their pub/sub invalidation),
// liveness.ts (the proof, renewed by a heartbeat, that the subscriber hears the client's server and is counted there),
// confirmations.ts (a revocation's wait for the other instances, ended by a timeout or by close), read-through.ts (a
// miss read once), usage-buffer.ts (usage write-behind), durability.ts (the start-up check that Redis keeps what it is
// given), options.ts, records.ts (what is kept in Redis, read and written) and command.ts (the time bound on every
// call, and the context the parts share).
export { RedisStore } from './redis/store.js';
export type { RedisNearCacheOptions, RedisStoreOptions, RedisStoreStats } from './redis/options.js';
export { RedisDurabilityError, type RedisDurability, type RedisDurabilityReport, type RedisDurabilityVerdict } from './redis/durability.js';
export { StoreArgumentError } from './validate.js';
