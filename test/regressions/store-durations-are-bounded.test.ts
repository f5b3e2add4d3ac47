// Regression (issue 7 item 7, stores): RedisStore took any positive number for a duration that reaches setTimeout. Node
// fires a delay above 2^31 − 1 ms after 1 ms (with only a warning), so `commandTimeout: 30 * 86_400_000` failed every
// Redis call at once and `usageFlushInterval` of a month became a 1 ms flush loop; a fractional or zero near-cache ttl
// reached lru-cache, which throws on one and reads the other as "never expires". Each is now refused at construction.
import { describe, expect, it } from 'vitest';
import { MemoryStore, StoreArgumentError } from '../../src/index.js';
import { RedisStore, type RedisStoreOptions } from '../../src/stores/redis.js';

// Construction only defines the scripts on the client: no connection is needed to check the options.
const client = { defineCommand() {} } as unknown as RedisStoreOptions['client'];
const subscriber = { subscribe: () => new Promise(() => {}), on() {}, off() {} } as unknown as RedisStoreOptions['subscriber'];
const MAX = 2 ** 31 - 1;

describe('regression: store durations and sizes are refused at construction when out of range', () => {
  it.each([
    ['commandTimeout', { commandTimeout: 2 ** 31 }],
    ['commandTimeout', { commandTimeout: 30 * 86_400_000 }],
    ['commandTimeout', { commandTimeout: 0 }],
    ['commandTimeout', { commandTimeout: 0.5 }],
    ['commandTimeout', { commandTimeout: Number.NaN }],
    ['commandTimeout', { commandTimeout: Number.POSITIVE_INFINITY }],
    ['commandTimeout', { commandTimeout: '250' }],
    ['confirmTimeout', { confirmTimeout: 2 ** 31 }],
    ['confirmTimeout', { confirmTimeout: 0 }],
    ['usageFlushInterval', { usageFlushInterval: 2 ** 31 }],
    ['usageFlushInterval', { usageFlushInterval: 0 }],
    ['usageBatchSize', { usageBatchSize: 0 }],
    ['usageBatchSize', { usageBatchSize: 2.5 }],
    ['usageTtl', { usageTtl: -1 }],
    ['usageTtl', { usageTtl: 1.5 }],
    ['nearCache.ttl', { subscriber, nearCache: { ttl: 0 } }],
    ['nearCache.ttl', { subscriber, nearCache: { ttl: 0.5 } }],
    ['nearCache.ttl', { subscriber, nearCache: { ttl: 2 ** 31 } }],
    ['nearCache.ttl', { nearCache: { ttl: 0 } }],
    ['nearCache.max', { subscriber, nearCache: { max: 0 } }],
    ['nearCache.max', { subscriber, nearCache: { max: Number.NaN } }],
  ])('RedisStore refuses %s: %o', (name, options) => {
    const make = () => new RedisStore({ client, ...(options as Partial<RedisStoreOptions>) });
    expect(make).toThrow(StoreArgumentError);
    expect(make).toThrow(new RegExp(`^RedisStore: ${name.replace('.', '\\.')} must be `));
  });

  it('RedisStore accepts the longest delay setTimeout honours, 2^31 − 1 ms', () => {
    expect(() => new RedisStore({ client, commandTimeout: MAX, confirmTimeout: MAX, usageFlushInterval: MAX, subscriber, nearCache: { ttl: MAX } })).not.toThrow();
  });

  it('RedisStore keeps usageTtl: 0 as documented (usage kept until deleted)', () => {
    expect(() => new RedisStore({ client, usageTtl: 0 })).not.toThrow();
  });

  it.each([[{ maxRevocations: Number.NaN }], [{ maxRevocations: 0 }], [{ maxClaims: -1 }], [{ maxCounters: 1.5 }], [{ maxApiKeys: Number.POSITIVE_INFINITY }]])(
    'MemoryStore refuses a bound that could never be reached or never leave room: %o',
    (options) => {
      // NaN in particular: `size >= NaN` is never true, so the store would grow without bound.
      expect(() => new MemoryStore(options)).toThrow(StoreArgumentError);
    },
  );
});
