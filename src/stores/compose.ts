// composeStores: one TokenStore made of a store per concern (records and revocations durable in PostgreSQL, counters,
// claims and usage in Redis), optionally with a shared cache (RedisStore) in front of the durable part.
import { EvictionCursor } from '../leaf/bounded-map.js';
import { StoreError } from '../leaf/errors.js';
import type { LifecycleEvent, LifecycleQuery } from '../leaf/lifecycle.js';
import type {
  ApiKeyPatch,
  ApiKeyRecord,
  ApiKeyUpdateCondition,
  ClaimOptions,
  ClaimQuery,
  RateLimitCheck,
  RevocationState,
  RevokeOptions,
  RevokeSubjectOptions,
  TokenStore,
  UsageEvent,
} from '../leaf/store.js';
import type {
  ClaimStore,
  CounterStore,
  KeyInventoryStore,
  KeyRecordStore,
  LifecycleEventStore,
  RevocationListStore,
  RevocationSource,
  StoreCache,
  UsageStore,
} from '../leaf/store-parts.js';
import { StoreArgumentError } from './validate.js';

/** The parts of a composed store: one store per concern (one store may serve several), and an optional cache. */
export interface ComposeStoresOptions {
  /** API key records (e.g. PostgresStore); its key inventory (`listApiKeys`, `getApiKeyById`) too, when it has one. */
  keys: KeyRecordStore & Partial<KeyInventoryStore>;
  /** Revocations (e.g. PostgresStore). With `cache`, it must also have `getRevocationEntries` (PostgresStore does). */
  revocations: RevocationListStore | RevocationSource;
  /** Rate-limit counters (e.g. RedisStore). */
  counters: CounterStore;
  /** One-time claims such as DPoP proofs (e.g. RedisStore). */
  claims: ClaimStore;
  /** Usage records (e.g. RedisStore). */
  usage: UsageStore;
  /** Lifecycle events (`appendLifecycleEvent`, `listLifecycleEvents`). Default: `keys`, when it keeps them (PostgresStore does). */
  lifecycle?: LifecycleEventStore;
  /**
   * A shared cache in front of `keys` and `revocations` (a RedisStore with a subscriber): records and revocation
   * lookups are read through it (revocations from its near-cache, synchronously), and every revocation is written to
   * `revocations` first, then fanned out through it so the next request on every instance refuses the token.
   * Default: none (every lookup goes to `keys` and `revocations`).
   */
  cache?: StoreCache;
}

/** Most revocations and record drops waiting to be sent to the cache again after it failed them (the oldest go first when full). */
const MAX_PENDING_FANOUTS = 10_000;
const FANOUT_RETRY_MS = 1000;

/** What the cache must take after a durable write: a revocation (token, subject) or a record's invalidation (`k`, by hash). */
type Fanout = { kind: 't'; id: string; options: RevokeOptions } | { kind: 's'; id: string; options: RevokeSubjectOptions } | { kind: 'k'; id: string };

/** Two missed fan-outs of one id as one, by the stores' merge rules: the later cut-off, kept for good if either is, else the later expiry, the latest reason. */
function mergeFanouts(a: Fanout, b: Fanout): Fanout {
  if (a.kind === 'k' || b.kind === 'k' || a.kind !== b.kind) return b;
  // As the stores do: an entry expired by the later write's `now` is replaced, not merged.
  if (a.options.expiresAt !== undefined && a.options.expiresAt <= b.options.now) return b;
  const expiresAt = a.options.expiresAt === undefined || b.options.expiresAt === undefined ? undefined : Math.max(a.options.expiresAt, b.options.expiresAt);
  const reason = b.options.reason ?? a.options.reason;
  const common = { ...(expiresAt !== undefined && { expiresAt }), ...(reason !== undefined && { reason }) };
  if (a.kind === 't') return { kind: 't', id: a.id, options: { now: Math.min(a.options.now, b.options.now), ...common } };
  const sb = b as Extract<Fanout, { kind: 's' }>;
  return { kind: 's', id: a.id, options: { now: Math.max(a.options.now, sb.options.now), before: Math.max(a.options.before, sb.options.before), ...common } };
}

const METHODS: Record<Exclude<keyof ComposeStoresOptions, 'cache' | 'lifecycle'>, readonly string[]> = {
  keys: ['getApiKey', 'putApiKey', 'updateApiKey', 'deleteApiKey', 'useApiKey'],
  revocations: ['revoke', 'revokeSubject', 'getRevocation'],
  counters: ['consume'],
  claims: ['claimOnce'],
  usage: ['recordUsage', 'getUsage'],
};

function hasMethods(value: unknown, methods: readonly string[]): boolean {
  return value !== null && typeof value === 'object' && methods.every((m) => typeof (value as Record<string, unknown>)[m] === 'function');
}

/**
 * One TokenStore from a store per concern, for durable token state: API key records and revocations in PostgreSQL,
 * counters, claims and usage in Redis, and Redis in front of PostgreSQL as a read-through cache.
 *
 * - With `cache`, `getApiKey` and `getRevocation` read through it (a revocation lookup the near-cache holds is
 *   answered synchronously, as by RedisStore alone); when the cache fails, the durable store answers alone.
 * - A revocation is written to `revocations` first, then fanned out through `cache` (which resolves once every
 *   listening instance has dropped its cached lookup). Should the fan-out fail, the call rejects with StoreError
 *   (the revocation itself is stored) and the fan-out is retried every second until the cache takes it.
 * - A record written through it (`putApiKey`, `updateApiKey`, `deleteApiKey`) is written to `keys`, then dropped from
 *   the cache; should that fail, the call rejects with StoreError (the write itself landed) and the drop joins the
 *   same retry queue as fan-outs. `useApiKey` goes to `keys` (records with uses left are never cached).
 * - `flush` and `close` reach every distinct part once. Parts are checked at construction (StoreArgumentError).
 *
 * Exported from `token-guard`.
 * @example
 * const durable = new PostgresStore({ pool });
 * const redis = new RedisStore({ client, subscriber: client.duplicate() });
 * const store = composeStores({ keys: durable, revocations: durable, counters: redis, claims: redis, usage: redis, cache: redis });
 */
export function composeStores(options: ComposeStoresOptions): TokenStore {
  if (options === null || typeof options !== 'object') throw new StoreArgumentError('composeStores: expected { keys, revocations, counters, claims, usage, cache? }');
  for (const [part, methods] of Object.entries(METHODS)) {
    if (!hasMethods((options as unknown as Record<string, unknown>)[part], methods)) {
      throw new StoreArgumentError(`composeStores: ${part} must be a store with ${methods.join(', ')}`);
    }
  }
  const { keys, revocations, counters, claims, usage, cache } = options;
  if (options.lifecycle !== undefined && !hasMethods(options.lifecycle, ['appendLifecycleEvent', 'listLifecycleEvents'])) {
    throw new StoreArgumentError('composeStores: lifecycle must be a store with appendLifecycleEvent, listLifecycleEvents');
  }
  const lifecycle = options.lifecycle ?? (hasMethods(keys, ['appendLifecycleEvent', 'listLifecycleEvents']) ? (keys as unknown as LifecycleEventStore) : undefined);
  const inventory = hasMethods(keys, ['listApiKeys', 'getApiKeyById']) ? (keys as KeyInventoryStore) : undefined;
  if (cache !== undefined && !hasMethods(cache, ['getApiKeyThrough', 'invalidateApiKey', 'getRevocationThrough', 'revoke', 'revokeSubject'])) {
    throw new StoreArgumentError('composeStores: cache must be a StoreCache (a RedisStore)');
  }
  if (cache !== undefined && !hasMethods(revocations, ['getRevocationEntries'])) {
    throw new StoreArgumentError('composeStores: with a cache, revocations must have getRevocationEntries (PostgresStore has) so the cache can keep their expiries');
  }
  if ((cache as unknown) === revocations) throw new StoreArgumentError('composeStores: the cache cannot be the store it caches');
  const source = revocations as RevocationSource;
  const loadRecord = (hash: string) => Promise.resolve(keys.getApiKey(hash));
  const loadRevocations = (tokenId: string, subject: string | undefined, now: number) => source.getRevocationEntries(tokenId, subject, now);

  // Fan-outs the cache failed: retried until it takes them, so that a cache that comes back unflushed cannot keep
  // answering "not revoked" from before the revocation, nor a record from before its change (a rotated, revoked or
  // deleted key kept working for up to readThroughTtl, and retrying the admin call could not help: it had landed).
  // One entry per record or revocation id. A record's drop that lands covers every earlier one. A revocation the
  // cache missed is merged with later misses of the same id (as the stores merge them), and stays even when a later
  // one lands: that one may be weaker (an earlier `before`, a shorter expiry), and the cache merges what it takes.
  // So re-revoking one subject while the cache is down adds nothing, and cannot push another revocation out.
  const pending = new Map<string, Fanout>();
  const oldestPending = new EvictionCursor(pending);
  let timer: NodeJS.Timeout | undefined;
  const send = (f: Fanout): Promise<void> => {
    const c = cache as StoreCache;
    return Promise.resolve(f.kind === 't' ? c.revoke(f.id, f.options) : f.kind === 's' ? c.revokeSubject(f.id, f.options) : c.invalidateApiKey(f.id));
  };
  const retry = async (): Promise<void> => {
    timer = undefined;
    for (const [k, f] of [...pending]) {
      try {
        await send(f);
        // Only what was sent: a fan-out that failed meanwhile under the same key stays for the next round.
        if (pending.get(k) === f) pending.delete(k);
      } catch {
        break;
      }
    }
    schedule();
  };
  const schedule = (): void => {
    if (timer !== undefined || pending.size === 0) return;
    timer = setTimeout(() => void retry(), FANOUT_RETRY_MS);
    timer.unref();
  };
  const fanOut = async (f: Fanout): Promise<void> => {
    const k = `${f.kind}:${f.id}`;
    // A drop that lands covers the drops that failed before it was sent, not one that fails while it is under way.
    const earlier = pending.get(k);
    try {
      await send(f);
      if (f.kind === 'k' && earlier !== undefined && pending.get(k) === earlier) pending.delete(k);
    } catch (e) {
      const prior = pending.get(k);
      pending.delete(k);
      pending.set(k, prior === undefined ? f : mergeFanouts(prior, f));
      if (pending.size > MAX_PENDING_FANOUTS) pending.delete(oldestPending.oldest() as string);
      schedule();
      const why = e instanceof Error ? e.message : String(e);
      throw new StoreError(
        f.kind === 'k'
          ? `API key record stored durably, but the cache did not drop its copy (${why}); retrying in the background. ` +
              'Until it does, instances may read the record as it was before this change.'
          : `revocation stored durably, but the cache did not take it (${why}); retrying in the background. ` +
              'Until it does, instances reading a cache that was not flushed may not refuse the token.',
        { cause: e },
      );
    }
  };

  const parts = [...new Set<Partial<TokenStore> | StoreCache>([keys, revocations, counters, claims, usage, ...(lifecycle ? [lifecycle] : []), ...(cache ? [cache] : [])])];

  const store: TokenStore = {
    getApiKey: cache ? (hash: string) => cache.getApiKeyThrough(hash, loadRecord) : (hash: string) => keys.getApiKey(hash),
    async putApiKey(record: ApiKeyRecord) {
      await keys.putApiKey(record);
      if (cache) await fanOut({ kind: 'k', id: record.hash });
    },
    async updateApiKey(hash: string, patch: ApiKeyPatch, condition?: ApiKeyUpdateCondition) {
      const updated = await keys.updateApiKey(hash, patch, condition);
      if (cache) await fanOut({ kind: 'k', id: hash });
      return updated;
    },
    async deleteApiKey(hash: string) {
      const deleted = await keys.deleteApiKey(hash);
      if (cache) await fanOut({ kind: 'k', id: hash });
      return deleted;
    },
    useApiKey: (hash: string) => keys.useApiKey(hash),
    async revoke(tokenId: string, o: RevokeOptions) {
      await revocations.revoke(tokenId, o);
      if (cache) await fanOut({ kind: 't', id: tokenId, options: o });
    },
    async revokeSubject(subject: string, o: RevokeSubjectOptions) {
      await revocations.revokeSubject(subject, o);
      if (cache) await fanOut({ kind: 's', id: subject, options: o });
    },
    getRevocation: cache
      ? (tokenId: string, subject: string | undefined, now: number): ReturnType<TokenStore['getRevocation']> =>
          cache.getRevocationThrough(tokenId, subject, now, loadRevocations) as RevocationState | undefined | Promise<RevocationState | undefined>
      : (tokenId: string, subject: string | undefined, now: number) => revocations.getRevocation(tokenId, subject, now),
    consume: (tokenId: string, checks: readonly RateLimitCheck[], now: number) => counters.consume(tokenId, checks, now),
    claimOnce: (key: string, o: ClaimOptions) => claims.claimOnce(key, o),
    recordUsage: (tokenId: string, event: UsageEvent) => usage.recordUsage(tokenId, event),
    getUsage: (tokenId: string) => usage.getUsage(tokenId),
    async flush() {
      for (const p of parts) await (p as Partial<TokenStore>).flush?.();
    },
    async close() {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      for (const p of parts) await (p as Partial<TokenStore>).close?.();
    },
  };
  // The optional parts of the contract exist on the composed store only when a part provides them, so the guard's
  // lifecycle functions see exactly what is there.
  if (inventory) {
    store.listApiKeys = (subject: string) => inventory.listApiKeys(subject);
    store.getApiKeyById = (id: string) => inventory.getApiKeyById(id);
  }
  const claimed = claims.isClaimed;
  if (typeof claimed === 'function') store.isClaimed = (key: string, o: ClaimQuery) => claimed.call(claims, key, o);
  const peek = counters.peekRateLimit;
  if (typeof peek === 'function') store.peekRateLimit = (tokenId: string, checks: readonly RateLimitCheck[], now: number) => peek.call(counters, tokenId, checks, now);
  if (lifecycle) {
    store.appendLifecycleEvent = (event: LifecycleEvent) => lifecycle.appendLifecycleEvent(event);
    store.listLifecycleEvents = (query: LifecycleQuery) => lifecycle.listLifecycleEvents(query);
  }
  return store;
}
