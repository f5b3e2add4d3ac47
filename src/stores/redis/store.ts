// RedisStore itself: the TokenStore methods, on the key layout, scripts, near-cache and usage buffer beside it.
import { randomBytes } from 'node:crypto';
// Types only: ioredis is an optional peer dependency, so nothing from it may be loaded at run time.
import type { Cluster, Redis } from 'ioredis';
import { StoreError } from '../../leaf/errors.js';
import type {
  ApiKeyPatch,
  ApiKeyRecord,
  ApiKeyUpdateCondition,
  ClaimOptions,
  ClaimQuery,
  RateLimitCheck,
  RateLimitResult,
  RateLimitState,
  RevocationState,
  RevokeOptions,
  RevokeSubjectOptions,
  TokenStore,
  TokenUsage,
  UsageEvent,
} from '../../leaf/store.js';
import type { RevocationEntries, StoreCache } from '../../leaf/store-parts.js';
import type { LifecycleEvent, LifecycleQuery } from '../../leaf/lifecycle.js';
import { checkClaimGroup } from '../claims.js';
import { REVOCATION_TTL_SLACK_MS, revocationLapsed } from '../clock-skew.js';
import { COUNTER_TTL_SLACK_MS } from '../gcra.js';
import { checkConsume, checkGetRevocation, checkId, checkRecordUsage, checkRevoke, checkRevokeSubject, StoreArgumentError } from '../validate.js';
import { deleteApiKey, getApiKey, getApiKeyById, listApiKeys, putApiKey, updateApiKey, useApiKey } from './api-keys.js';
import { boundedCall, type Call, type RedisContext } from './command.js';
import { closedBeforeWrite } from './confirmations.js';
import { DurabilityGate, type RedisDurabilityReport } from './durability.js';
import { appendLifecycleEvent, listLifecycleEvents } from './events.js';
import { KeyLayout } from './keys.js';
import { type Arg, defineScripts, type ScriptCommands } from './lua.js';
import { NearCache } from './near-cache.js';
import { ReadThrough } from './read-through.js';
import { type RedisStoreOptions, type RedisStoreStats, resolveOptions } from './options.js';
import { num, parseEntry, readUsage, toState, USAGE_FIELDS } from './records.js';
import { UsageBuffer } from './usage-buffer.js';

/**
 * Keeps token state in Redis so that every app instance shares API key records, revocations, rate-limit counters
 * and usage. Takes the app's ioredis client (standalone `Redis` or `Cluster`); never opens a connection of its own.
 *
 * - Every key starts with `prefix` and carries a hash tag per token (`tg:{t:<id>}:…`), so one token's keys share
 *   a Cluster slot and multi-key scripts work on Cluster.
 * - Counters (GCRA, all-or-nothing across limits) and API key uses are atomic Lua scripts.
 * - Revocation entries expire with the token (TTL = expiresAt − now + REVOCATION_TTL_SLACK_MS, so a revoker whose
 *   clock runs ahead cannot drop them early) and keep their exact times, so reads compare with the caller's `now`.
 * - One-time claims (`claimOnce`, e.g. DPoP proofs) are `prefix{o:<key>}`, holding their expiry, with a TTL to match;
 *   claims in a group (the guard's DPoP proofs, one group per proof key) are members of the sorted set
 *   `prefix{g:<group>}` scored by expiry, so `maxPerGroup` bounds each group as MemoryStore's `maxClaims` bounds it.
 *   Revocations and claims must never be evicted: run Redis with `maxmemory-policy noeviction` (every `volatile-*`
 *   policy may drop them, since they carry a TTL).
 * - Every call is bounded by `commandTimeout`; a failure or timeout is a StoreError, which the guard answers
 *   with 503 `store.unavailable`. ioredis reconnects on its own, so the store recovers without a restart.
 * - Usage is buffered and written in pipelined batches (`usageFlushInterval`, `usageBatchSize`, `flush()`).
 * - With a `subscriber`, revocation lookups are near-cached and invalidated on every instance through pub/sub;
 *   `revoke` resolves only once every listening instance has confirmed, so the next request anywhere is refused.
 *
 * Exported from `token-guard/redis`.
 * @example
 * import { Redis } from 'ioredis';
 * import { RedisStore } from 'token-guard/redis';
 * const client = new Redis(process.env.REDIS_URL);
 * const store = new RedisStore({ client, subscriber: client.duplicate(), prefix: 'orders-api:' });
 * app.use(tokenGuard({ jwt, store }));
 */
export class RedisStore implements TokenStore, StoreCache {
  private readonly client: Redis | Cluster;
  private readonly cmd: ScriptCommands;
  private readonly keys: KeyLayout;
  private readonly call: Call;
  /** The four above as one object, so each part that needs them all (api-keys.ts, events.ts, usage, read-through) takes one argument. */
  private readonly ctx: RedisContext;
  private readonly nearCache: NearCache;
  private readonly usage: UsageBuffer;
  private readonly through: ReadThrough;
  /** The verdict on the server's settings, which every call under `durability: 'require'` waits for. */
  private readonly durability: DurabilityGate;
  private readonly maxEvents: number;
  /** The close in progress or done. */
  private closing: Promise<void> | undefined;

  constructor(options: RedisStoreOptions) {
    const o = resolveOptions(options);
    this.client = o.client;
    this.keys = new KeyLayout(o.prefix);
    this.durability = new DurabilityGate({
      client: o.client,
      mode: o.durability,
      defaulted: options.durability === undefined,
      timeoutMs: Math.max(o.commandTimeout, 2000),
      prefix: o.prefix,
    });
    // No command is sent before the verdict (within the call's bound), nor after a refusal: a write the caller is told
    // failed must not land (a retried useApiKey would spend two uses).
    this.call = boundedCall(o.commandTimeout, () => this.durability.wait());
    this.cmd = defineScripts(o.client);
    this.ctx = { client: o.client, cmd: this.cmd, keys: this.keys, call: this.call };
    this.maxEvents = o.maxLifecycleEvents;
    this.usage = new UsageBuffer({
      ...this.ctx,
      flushInterval: o.usageFlushInterval,
      batchSize: o.usageBatchSize,
      ttl: o.usageTtl,
    });
    this.nearCache = new NearCache({
      client: o.client,
      subscriber: o.subscriber,
      keys: this.keys,
      instanceId: randomBytes(8).toString('hex'),
      call: this.call,
      // Probes and UNSUBSCRIBE write nothing durable: they never wait for the verdict (a refusing store's subscriber
      // still leaves the channel on close, and its near-cache stays empty, since only reads through the gate fill it).
      pubsubCall: boundedCall(o.commandTimeout),
      cache: o.nearCache,
      confirmTimeout: o.confirmTimeout,
    });
    this.through = new ReadThrough({ ...this.ctx, nearCache: this.nearCache, ttl: o.readThroughTtl });
  }

  /**
   * The verdict on the server's settings (`report.verdict`). Under `durability: 'require'` it resolves once the store
   * serves from this Redis (`'passed'`, or `'unverifiable'` when the server refuses CONFIG), and rejects with
   * RedisDurabilityError when it does not: Redis could drop a revocation or a claim (`'refused'`: eviction at
   * maxmemory, no append-only file), or the check got no answer (`'unanswered'`: calling ready() again asks again).
   * Under `'warn'` and `'ignore'` it resolves with the first check's report. Await it before serving. Not awaiting it
   * is safe too: under `'require'` no call is sent before the verdict (each waits within `commandTimeout`).
   */
  ready(): Promise<RedisDurabilityReport> {
    return this.durability.ready();
  }

  // --- API key records (in api-keys.ts)

  getApiKey(hash: string): Promise<ApiKeyRecord | undefined> {
    return getApiKey(this.ctx, hash);
  }

  putApiKey(record: ApiKeyRecord): Promise<void> {
    return putApiKey(this.ctx, record);
  }

  updateApiKey(hash: string, patch: ApiKeyPatch, condition?: ApiKeyUpdateCondition): Promise<ApiKeyRecord | undefined> {
    return updateApiKey(this.ctx, hash, patch, condition);
  }

  deleteApiKey(hash: string): Promise<boolean> {
    return deleteApiKey(this.ctx, hash);
  }

  listApiKeys(subject: string): Promise<ApiKeyRecord[]> {
    return listApiKeys(this.ctx, subject);
  }

  getApiKeyById(id: string): Promise<ApiKeyRecord | undefined> {
    return getApiKeyById(this.ctx, id);
  }

  useApiKey(hash: string): Promise<number | undefined> {
    return useApiKey(this.ctx, hash);
  }

  // --- Revocation

  async revoke(tokenId: string, options: RevokeOptions): Promise<void> {
    checkRevoke(tokenId, options);
    // Even one that would store nothing: a closed store answers every revoke the same way.
    if (this.closing) throw closedBeforeWrite();
    const { now, expiresAt, reason } = options;
    // Just past on this clock may still be ahead on a reader's: stored, and the reader decides.
    if (revocationLapsed(expiresAt, now)) return;
    const key = this.keys.tokenRevocation(tokenId);
    const channel = this.keys.invalidationChannel;
    await this.nearCache.revoke('t', tokenId, (msg, ack) =>
      this.cmd.tokenGuardRevoke(key, now, now, expiresAt ?? '', channel, msg, reason ?? '', REVOCATION_TTL_SLACK_MS, ack),
    );
  }

  async revokeSubject(subject: string, options: RevokeSubjectOptions): Promise<void> {
    checkRevokeSubject(subject, options);
    if (this.closing) throw closedBeforeWrite();
    const { now, before, expiresAt, reason } = options;
    if (revocationLapsed(expiresAt, now)) return;
    const key = this.keys.subjectRevocation(subject);
    const channel = this.keys.invalidationChannel;
    await this.nearCache.revoke('s', subject, (msg, ack) =>
      this.cmd.tokenGuardRevokeSubject(key, now, before, expiresAt ?? '', channel, msg, reason ?? '', REVOCATION_TTL_SLACK_MS, ack),
    );
  }

  getRevocation(tokenId: string, subject: string | undefined, now: number): RevocationState | undefined | Promise<RevocationState | undefined> {
    // Synchronous like a cached answer (this method may answer either way).
    checkGetRevocation(tokenId, subject, now);
    if (this.durability.error) throw this.durability.error;
    const cached = this.nearCache.lookup(tokenId, subject);
    // Answered locally, without a promise: the guard's hot path then costs no round trip at all.
    if (cached) return toState(cached.token, cached.subject, now);
    return this.readRevocation(tokenId, subject, now);
  }

  private async readRevocation(tokenId: string, subject: string | undefined, now: number): Promise<RevocationState | undefined> {
    const ticket = this.nearCache.beforeRead();
    // Two keys in two slots (a token's and a subject's): two GETs, sent together.
    const [t, s] = await this.call('GET', () =>
      Promise.all([this.client.get(this.keys.tokenRevocation(tokenId)), subject === undefined ? Promise.resolve(null) : this.client.get(this.keys.subjectRevocation(subject))]),
    );
    const token = parseEntry(t, 'at');
    const subj = parseEntry(s, 'before');
    this.nearCache.keep(ticket, tokenId, token, subject, subj);
    return toState(token, subj, now);
  }

  // --- Read-through cache in front of a durable store (composeStores with `cache`)

  /**
   * The API key record under `hash` from Redis, or else from `load` (the durable store), then kept in Redis for
   * `readThroughTtl` unless it changed meanwhile. Records with uses left are never kept. When Redis fails, or may not
   * be used (`durability: 'require'` refused it, or has no verdict within `commandTimeout`), `load` answers alone. Used by `composeStores`; keep such records out of this store's own putApiKey.
   */
  getApiKeyThrough(hash: string, load: (hash: string) => Promise<ApiKeyRecord | undefined>): Promise<ApiKeyRecord | undefined> {
    return this.through.getApiKey(hash, load);
  }

  /** Drops the cached record under `hash` on every instance (after it changed in the durable store). */
  invalidateApiKey(hash: string): Promise<void> {
    return this.through.invalidateApiKey(hash);
  }

  /**
   * Revocation state from the near-cache (synchronously), else from Redis, else from `load` (the durable store), then
   * kept in Redis and the near-cache. When Redis fails, or may not be used (as for getApiKeyThrough), `load` answers
   * alone. Used by `composeStores`.
   */
  getRevocationThrough(
    tokenId: string,
    subject: string | undefined,
    now: number,
    load: (tokenId: string, subject: string | undefined, now: number) => Promise<RevocationEntries>,
  ): RevocationState | undefined | Promise<RevocationState | undefined> {
    // A refusal (durability: 'require') is not thrown here, as getRevocation throws it: the Redis read fails unsent and
    // the durable store answers alone, as in getApiKeyThrough (read-through.ts).
    return this.through.getRevocation(tokenId, subject, now, load);
  }

  // --- Rate limits

  consume(tokenId: string, checks: readonly RateLimitCheck[], now: number): Promise<RateLimitResult> {
    return this.rateLimit(tokenId, checks, now, false);
  }

  peekRateLimit(tokenId: string, checks: readonly RateLimitCheck[], now: number): Promise<RateLimitResult> {
    return this.rateLimit(tokenId, checks, now, true);
  }

  /** `consume`'s answer, from the one script; `peek`: charge nothing. */
  private async rateLimit(tokenId: string, checks: readonly RateLimitCheck[], now: number, peek: boolean): Promise<RateLimitResult> {
    checkConsume(tokenId, checks, now);
    if (checks.length === 0) return { allowed: true, retryAfterMs: 0, limits: [] };
    const args: Arg[] = [checks.length];
    for (const c of checks) args.push(this.keys.counter(tokenId, c.name));
    args.push(now);
    for (const c of checks) args.push(c.limit, c.windowMs);
    args.push(COUNTER_TTL_SLACK_MS);
    if (peek) args.push('1');
    const reply = await this.call(peek ? 'peek' : 'consume', () => this.cmd.tokenGuardConsume(...(args as [number, ...Arg[]])));
    if (!Array.isArray(reply) || reply.length !== 2 + 2 * checks.length) throw new StoreError('Redis returned a malformed rate-limit reply');
    const allowed = reply[0] === 1;
    const limits: RateLimitState[] = checks.map((c, i) => ({ name: c.name, limit: c.limit, remaining: num(reply[2 + 2 * i]), resetMs: num(reply[3 + 2 * i]) }));
    return { allowed, retryAfterMs: allowed ? 0 : num(reply[1]), limits };
  }

  // --- One-time claims

  async isClaimed(key: string, options: ClaimQuery): Promise<boolean> {
    const { now, group } = options;
    if (!Number.isFinite(now)) throw new StoreArgumentError('RedisStore: isClaimed needs a finite now');
    checkClaimGroup('RedisStore', group, undefined, 'isClaimed');
    // A plain read: the claim's own key, or its score (expiry) in its group's sorted set, judged on the caller's clock.
    const held = await this.call('claim read', () => (group === undefined ? this.client.get(this.keys.claim(key)) : this.client.zscore(this.keys.claimGroup(group), key)));
    if (held === null) return false;
    // Anything but a number as we write it (%.17g) was not written by us: fail rather than call a possible replay fresh
    // ('' or ' ' would read as 0 through Number()).
    if (!/^-?(?:inf|\d+(?:\.\d+)?(?:e[+-]?\d+)?)$/i.test(held)) throw new StoreError('Redis holds a claim that is not a number');
    return Number(held.replace(/inf$/i, 'Infinity')) > now;
  }

  async claimOnce(key: string, options: ClaimOptions): Promise<boolean> {
    const { now, expiresAt, group, maxPerGroup } = options;
    // NaN would reach Lua as a nil comparison error at best, a claim that never holds at worst: a caller bug.
    if (!Number.isFinite(now) || !Number.isFinite(expiresAt)) throw new StoreArgumentError('RedisStore: claimOnce needs finite now and expiresAt');
    checkClaimGroup('RedisStore', group, maxPerGroup);
    // A group's claims share one sorted set (one Cluster slot), so the cap and the claim are one atomic step.
    const won = await this.call('claim', () =>
      group === undefined
        ? this.cmd.tokenGuardClaim(this.keys.claim(key), now, expiresAt)
        : this.cmd.tokenGuardClaimInGroup(this.keys.claimGroup(group), now, expiresAt, key, maxPerGroup ?? 0),
    );
    if (won !== 0 && won !== 1) throw new StoreError('Redis returned a malformed claim reply');
    return won === 1;
  }

  // --- Lifecycle events (in events.ts)

  appendLifecycleEvent(event: LifecycleEvent): Promise<void> {
    return appendLifecycleEvent(this.ctx, event, this.maxEvents);
  }

  listLifecycleEvents(query: LifecycleQuery): Promise<LifecycleEvent[]> {
    return listLifecycleEvents(this.ctx, query);
  }

  // --- Usage

  recordUsage(tokenId: string, usage: UsageEvent): void {
    checkRecordUsage(tokenId, usage);
    this.usage.add(tokenId, usage);
  }

  async getUsage(tokenId: string): Promise<TokenUsage | undefined> {
    checkId('getUsage', 'tokenId', tokenId);
    return readUsage(await this.call('HMGET', () => this.client.hmget(this.keys.usage(tokenId), ...USAGE_FIELDS)));
  }

  /** Writes buffered usage now, in one pipeline (on Cluster, one script call per token, sent together). */
  flush(): Promise<void> {
    return this.usage.flush();
  }

  // --- Lifecycle

  /** Counters for monitoring: near-cache hits and misses, invalidations and foreign messages, usage buffered and dropped. */
  stats(): RedisStoreStats {
    const c = this.nearCache.counters;
    return {
      nearCacheEnabled: this.nearCache.enabled,
      nearCacheHits: c.hits,
      nearCacheMisses: c.misses,
      invalidations: c.invalidations,
      foreignMessages: c.foreign,
      usageBuffered: this.usage.buffered,
      usageDropped: this.usage.dropped,
    };
  }

  /**
   * Unsubscribes (confirming revocations until Redis has let go of the subscriber, at most `commandTimeout`), stops
   * timers and writes buffered usage. Never quits the clients the app passed in. A second call waits for the first.
   * A `revoke` still waiting for confirmations rejects at once with StoreError ("revocation stored, but …"); one whose
   * write has not been sent, or made after close, rejects with StoreError ("… not stored"). Never rejects because of
   * `durability`: usage the store may not write (it refuses this Redis, or never verified it) is dropped and counted
   * in `stats().usageDropped`, so the app's shutdown goes on to quit its clients.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    try {
      await this.nearCache.close();
      await this.flush();
    } catch (err) {
      if (this.durability.writable) throw err;
    } finally {
      // A check still in flight ends with its timer; calls made later without a verdict fail.
      await this.durability.close();
    }
  }
}
