// RedisStore's options: their public types, their defaults, and the checks that refuse a mistake at construction.
import type { Cluster, Redis } from 'ioredis';
import { isProduction } from '../../leaf/warnings.js';
import { StoreArgumentError } from '../validate.js';
import type { RedisDurability } from './durability.js';
import { isValidPrefix } from './keys.js';

/** Near-cache tuning: a bounded, short-lived local copy of revocation lookups, invalidated through pub/sub. */
export interface RedisNearCacheOptions {
  /** Most token ids and subjects whose revocation state is kept locally. Default: 10 000. */
  max?: number;
  /** Longest a cached lookup is used, in ms: a backstop should an invalidation ever be missed. Default: 5000. */
  ttl?: number;
  /**
   * How often, in ms, an instance re-proves that its subscriber still hears the client's server and is counted there,
   * while its near-cache is in use. A subscriber that dies silently (a half-open connection) is noticed within
   * heartbeat + confirmTimeout, the longest it may answer from its cache after that. Default: 1000.
   */
  heartbeat?: number;
}

/** Options of RedisStore. */
export interface RedisStoreOptions {
  /** The app's ioredis client (`new Redis(…)` or `new Cluster(…)`). The store never connects, quits or duplicates it. */
  client: Redis | Cluster;
  /** Start of every key and channel name, so several apps can share one Redis. No `{` or `}` (hash tags are the store's). Default: `'tg:'`. */
  prefix?: string;
  /** Longest any Redis call may take, in ms, before it fails with StoreError (the guard answers 503). Default: 250. */
  commandTimeout?: number;
  /**
   * A second ioredis connection in subscriber mode (e.g. `client.duplicate()`, made by the app). With it the store
   * keeps a near-cache of revocation lookups and `revoke`/`revokeSubject` resolve only once every instance listening
   * has dropped its cached entry. Default: none (every lookup goes to Redis).
   */
  subscriber?: Redis | Cluster;
  /** Near-cache size, lifetime and heartbeat, or `false` to use `subscriber` only to confirm revocations. Default: `{ max: 10 000, ttl: 5000, heartbeat: 1000 }`. */
  nearCache?: RedisNearCacheOptions | false;
  /** Longest `revoke` waits for the other instances to confirm their near-cache dropped the token, in ms. Default: 1000. */
  confirmTimeout?: number;
  /** Usage write-behind: buffered uses are written at most this often, in ms. Default: 1000. */
  usageFlushInterval?: number;
  /** Usage write-behind: a buffer of this many distinct tokens is written at once. Default: 500. */
  usageBatchSize?: number;
  /** How long a token's usage is kept after its last use, in ms (`0` keeps it until deleted). Default: 30 days. */
  usageTtl?: number;
  /**
   * As the cache in front of a durable store (`composeStores({ …, cache })`): how long a record, or the fact that the
   * durable store holds no revocation of a token or subject, is kept in Redis, in ms. Changes made through the
   * composed store invalidate at once; this bounds only what a change made while Redis was unreachable leaves behind.
   * Default: 60 000.
   */
  readThroughTtl?: number;
  /**
   * What to do when the server's settings would let Redis drop a revocation or a claim (checked at construction with
   * CONFIG GET; see `ready()`): `'require'` refuses (ready() rejects with RedisDurabilityError, every call fails with
   * it unsent, 503, and one TOKEN_GUARD_REDIS_DURABILITY_REFUSED process warning per store says why); until the check
   * has answered, each call waits for it within `commandTimeout` before anything is sent, and a check that got no
   * answer is asked again (one TOKEN_GUARD_REDIS_DURABILITY_UNVERIFIED warning per store). `'warn'` emits a
   * TOKEN_GUARD_REDIS_DURABILITY process warning, `'ignore'` does not check. A server that refuses CONFIG (an error
   * reply) is warned about, never refused. Default: `'require'` when NODE_ENV is production, else `'warn'`.
   */
  durability?: RedisDurability;
  /** Most lifecycle events kept (`appendLifecycleEvent`); the oldest beyond it are dropped. Default: 10 000. */
  maxLifecycleEvents?: number;
}

/** Counters for monitoring a RedisStore. */
export interface RedisStoreStats {
  /**
   * Whether the near-cache is in use right now: off until the subscriber is proven to hear the client's server and be
   * counted there, whenever it is disconnected, and once a heartbeat fails or is overdue.
   */
  nearCacheEnabled: boolean;
  /** Revocation lookups answered from the near-cache. */
  nearCacheHits: number;
  /** Revocation lookups that went to Redis. */
  nearCacheMisses: number;
  /** Invalidation messages received (foreign ones included). */
  invalidations: number;
  /**
   * Messages on the store's channels that it could not have sent (wrong JSON, shape or size: someone else publishing
   * there). Each one dropped the whole near-cache, since something may have been revoked that it cannot name.
   */
  foreignMessages: number;
  /** Uses waiting to be written. */
  usageBuffered: number;
  /** Uses lost because their batch could not be written. */
  usageDropped: number;
}

/** The options once checked, with their defaults filled in. */
export interface ResolvedOptions {
  client: Redis | Cluster;
  subscriber: Redis | Cluster | undefined;
  prefix: string;
  commandTimeout: number;
  confirmTimeout: number;
  usageFlushInterval: number;
  usageBatchSize: number;
  usageTtl: number;
  readThroughTtl: number;
  durability: RedisDurability;
  maxLifecycleEvents: number;
  /** The near-cache's size, lifetime and heartbeat, or false when it is turned off. */
  nearCache: { max: number; ttl: number; heartbeat: number } | false;
}

const DAY = 86_400_000;

/** The longest delay setTimeout honours (2^31 − 1 ms, about 24.8 days): anything longer fires at once. */
const MAX_DELAY_MS = 2_147_483_647;

// A developer mistake in options is a StoreArgumentError at construction, never a surprise per request.
function option(name: string, value: unknown, fallback: number, expected: string, ok: (n: number) => boolean): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || !ok(value)) throw new StoreArgumentError(`RedisStore: ${name} must be ${expected} (got ${String(value)})`);
  return value;
}

/**
 * A delay handed to setTimeout (or used as a cache lifetime). Never 0 (a timeout that fires at once, a flush loop, or
 * for lru-cache "never expires") and never above 2^31 − 1 ms, which Node turns into 1 ms with only a warning.
 */
function delay(name: string, value: unknown, fallback: number): number {
  return option(name, value, fallback, `a number of milliseconds from 1 to ${MAX_DELAY_MS}`, (n) => n >= 1 && n <= MAX_DELAY_MS);
}

/** A count (a size or a batch): a positive integer. */
function count(name: string, value: unknown, fallback: number): number {
  return option(name, value, fallback, 'a positive integer', (n) => Number.isSafeInteger(n) && n >= 1);
}

/** Checks RedisStore's options in a fixed order (the first mistake is the one reported) and fills in the defaults. */
export function resolveOptions(options: RedisStoreOptions): ResolvedOptions {
  if (!options || typeof options !== 'object') throw new StoreArgumentError('RedisStore: expected options { client, … }');
  const { client, subscriber } = options;
  if (!client || typeof (client as { defineCommand?: unknown }).defineCommand !== 'function') {
    throw new StoreArgumentError('RedisStore: options.client must be an ioredis Redis or Cluster instance');
  }
  if (subscriber !== undefined && typeof (subscriber as { subscribe?: unknown }).subscribe !== 'function') {
    throw new StoreArgumentError('RedisStore: options.subscriber must be an ioredis Redis or Cluster instance');
  }
  if (subscriber === client) throw new StoreArgumentError('RedisStore: options.subscriber must be a second connection (a subscribed connection cannot run commands)');
  const prefix = options.prefix ?? 'tg:';
  if (!isValidPrefix(prefix)) throw new StoreArgumentError('RedisStore: prefix must be a string without { or } (the store adds its own hash tags)');
  const commandTimeout = delay('commandTimeout', options.commandTimeout, 250);
  const confirmTimeout = delay('confirmTimeout', options.confirmTimeout, 1000);
  const usageFlushInterval = delay('usageFlushInterval', options.usageFlushInterval, 1000);
  const usageBatchSize = count('usageBatchSize', options.usageBatchSize, 500);
  // PEXPIRE takes whole ms; 0 is documented as "kept until deleted" and never reaches Redis.
  const usageTtl = option('usageTtl', options.usageTtl, 30 * DAY, 'whole milliseconds (0 keeps usage until deleted)', (n) => Number.isSafeInteger(n) && n >= 0);
  const maxLifecycleEvents = count('maxLifecycleEvents', options.maxLifecycleEvents, 10_000);
  const nearCache = options.nearCache;
  if (nearCache !== undefined && nearCache !== false && (nearCache === null || typeof nearCache !== 'object')) {
    throw new StoreArgumentError('RedisStore: nearCache must be { max?, ttl?, heartbeat? } or false');
  }
  // Checked with or without a subscriber: an option that is silently ignored is a mistake waiting to surface.
  const max = nearCache ? count('nearCache.max', nearCache.max, 10_000) : 10_000;
  // Whole ms: lru-cache refuses a fractional ttl and reads 0 as "never expires".
  const ttl = nearCache
    ? option('nearCache.ttl', nearCache.ttl, 5000, `whole milliseconds from 1 to ${MAX_DELAY_MS}`, (n) => Number.isInteger(n) && n >= 1 && n <= MAX_DELAY_MS)
    : 5000;
  const heartbeat = nearCache ? delay('nearCache.heartbeat', nearCache.heartbeat, 1000) : 1000;
  const readThroughTtl = option(
    'readThroughTtl',
    options.readThroughTtl,
    60_000,
    `whole milliseconds from 1 to ${MAX_DELAY_MS}`,
    (n) => Number.isInteger(n) && n >= 1 && n <= MAX_DELAY_MS,
  );
  const durability = options.durability ?? (isProduction() ? 'require' : 'warn');
  if (durability !== 'require' && durability !== 'warn' && durability !== 'ignore') {
    throw new StoreArgumentError(`RedisStore: durability must be 'require', 'warn' or 'ignore' (got ${String(durability)})`);
  }
  return {
    durability,
    client,
    subscriber,
    prefix,
    commandTimeout,
    confirmTimeout,
    usageFlushInterval,
    usageBatchSize,
    usageTtl,
    readThroughTtl,
    maxLifecycleEvents,
    nearCache: nearCache === false ? false : { max, ttl, heartbeat },
  };
}
