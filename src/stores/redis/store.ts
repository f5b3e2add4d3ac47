// RedisStore itself: the TokenStore methods, on the key layout, scripts, near-cache and usage buffer beside it.
import { randomBytes } from 'node:crypto';
// Types only: ioredis is an optional peer dependency, so nothing from it may be loaded at run time.
import type { Cluster, Redis } from 'ioredis';
import { StoreError } from '../../leaf/errors.js';
import type {
  ApiKeyPatch,
  ApiKeyRecord,
  ClaimOptions,
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
import type { LifecycleEvent, LifecycleQuery } from '../../leaf/lifecycle.js';
import { checkClaimGroup } from '../claims.js';
import { COUNTER_TTL_SLACK_MS } from '../gcra.js';
import {
  checkConsume,
  checkGetRevocation,
  checkId,
  checkPutApiKey,
  checkRecordUsage,
  checkRevoke,
  checkRevokeSubject,
  checkUpdateApiKey,
  checkLifecycleEvent,
  checkLifecycleQuery,
  DEFAULT_EVENT_LIMIT,
  matchesQuery,
  StoreArgumentError,
} from '../validate.js';
import { boundedCall, type Call } from './command.js';
import { KeyLayout } from './keys.js';
import { type Arg, defineScripts, type ScriptCommands } from './lua.js';
import { NearCache } from './near-cache.js';
import { type RedisStoreOptions, type RedisStoreStats, resolveOptions } from './options.js';
import { num, parseEntry, readUsage, recordJson, toRecord, toState, USAGE_FIELDS, usesLeft } from './records.js';
import { UsageBuffer } from './usage-buffer.js';

const UPDATE_ATTEMPTS = 8;

/** A kept lifecycle event; one we cannot read is a store failure, never skipped silently. */
function parseEvent(raw: string): LifecycleEvent {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch (e) {
    throw new StoreError('lifecycle event in Redis is not valid JSON', { cause: e });
  }
  if (!v || typeof v !== 'object' || typeof (v as LifecycleEvent).id !== 'string' || typeof (v as LifecycleEvent).at !== 'number') {
    throw new StoreError('lifecycle event in Redis is malformed');
  }
  return v as LifecycleEvent;
}

/**
 * Keeps token state in Redis so that every app instance shares API key records, revocations, rate-limit counters
 * and usage. Takes the app's ioredis client (standalone `Redis` or `Cluster`); never opens a connection of its own.
 *
 * - Every key starts with `prefix` and carries a hash tag per token (`tg:{t:<id>}:…`), so one token's keys share
 *   a Cluster slot and multi-key scripts work on Cluster.
 * - Counters (GCRA, all-or-nothing across limits) and API key uses are atomic Lua scripts.
 * - Revocation entries expire with the token (TTL = expiresAt − now) and keep their times, so reads compare with
 *   the caller's `now`.
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
export class RedisStore implements TokenStore {
  private readonly client: Redis | Cluster;
  private readonly cmd: ScriptCommands;
  private readonly keys: KeyLayout;
  private readonly call: Call;
  private readonly nearCache: NearCache;
  private readonly usage: UsageBuffer;
  private readonly maxEvents: number;
  private closed = false;

  constructor(options: RedisStoreOptions) {
    const o = resolveOptions(options);
    this.client = o.client;
    this.keys = new KeyLayout(o.prefix);
    this.call = boundedCall(o.commandTimeout);
    this.cmd = defineScripts(o.client);
    this.maxEvents = o.maxLifecycleEvents;
    this.usage = new UsageBuffer({
      client: o.client,
      cmd: this.cmd,
      keys: this.keys,
      call: this.call,
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
      cache: o.nearCache,
      confirmTimeout: o.confirmTimeout,
    });
  }

  // --- API key records

  getApiKey(hash: string): Promise<ApiKeyRecord | undefined> {
    // A promise either way: a bad argument rejects, as every other failure of this method does.
    try {
      checkId('getApiKey', 'hash', hash);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.call('HMGET', this.client.hmget(this.keys.apiKey(hash), 'rec', 'rem')).then(([rec, rem]) => toRecord(rec ?? null, rem ?? null));
  }

  async putApiKey(record: ApiKeyRecord): Promise<void> {
    checkPutApiKey(record);
    const { remaining, ...rest } = record;
    // The inventory first (its keys live in other slots, so not in the same script): an index entry without its
    // record is dropped on read, while a record without its index entries would be missing from listings.
    await this.index(record.id, record.subject, record.hash);
    await this.call('put', this.cmd.tokenGuardPut(this.keys.apiKey(record.hash), JSON.stringify(rest), usesLeft(remaining)));
  }

  private async index(id: string | undefined, subject: string | undefined, hash: string): Promise<void> {
    await this.call(
      'index',
      Promise.all([
        id === undefined ? null : this.client.set(this.keys.keyId(id), hash),
        subject === undefined ? null : this.client.sadd(this.keys.subjectKeys(subject), hash),
      ]),
    );
  }

  async updateApiKey(hash: string, patch: ApiKeyPatch): Promise<ApiKeyRecord | undefined> {
    checkUpdateApiKey(hash, patch);
    const key = this.keys.apiKey(hash);
    const remaining = !('remaining' in patch) ? 'keep' : patch.remaining === undefined ? 'del' : usesLeft(patch.remaining);
    // A record moving to another subject joins its index first (the old subject's entry is pruned on read).
    if (typeof patch.subject === 'string') await this.index(undefined, patch.subject, hash);
    for (let attempt = 0; attempt < UPDATE_ATTEMPTS; attempt++) {
      const [rec] = await this.call('HMGET', this.client.hmget(key, 'rec'));
      if (rec === null || rec === undefined) return undefined;
      // Refused like a read: merging would drop its `remaining` and silently make the key unlimited.
      const current = recordJson(rec);
      const { remaining: _ignored, ...next } = { ...current, ...patch, id: current.id, hash: current.hash, prefix: current.prefix, createdAt: current.createdAt };
      const json = JSON.stringify(next);
      const reply = await this.call('update', this.cmd.tokenGuardUpdate(key, rec, json, remaining));
      if (reply[0] === 0) return undefined;
      if (reply[0] === 2) return toRecord(json, typeof reply[1] === 'string' || typeof reply[1] === 'number' ? String(reply[1]) : null);
      // Changed between read and write: read again.
    }
    throw new StoreError(`updateApiKey: the record kept changing; gave up after ${UPDATE_ATTEMPTS} attempts`);
  }

  async deleteApiKey(hash: string): Promise<boolean> {
    checkId('deleteApiKey', 'hash', hash);
    // The index entries go stale with it and are ignored (and pruned) on read.
    return (await this.call('DEL', this.client.del(this.keys.apiKey(hash)))) > 0;
  }

  async listApiKeys(subject: string): Promise<ApiKeyRecord[]> {
    checkId('listApiKeys', 'subject', subject);
    const setKey = this.keys.subjectKeys(subject);
    const hashes = await this.call('SMEMBERS', this.client.smembers(setKey));
    const records = await this.call('HMGET', Promise.all(hashes.map((h) => this.client.hmget(this.keys.apiKey(h), 'rec', 'rem'))));
    const out: ApiKeyRecord[] = [];
    const stale: string[] = [];
    records.forEach(([rec, rem], i) => {
      const r = toRecord(rec ?? null, rem ?? null);
      // Deleted, or moved to another subject: the index entry is stale.
      if (r && r.subject === subject && r.hash === hashes[i]) out.push(r);
      else stale.push(hashes[i] as string);
    });
    // Pruning is housekeeping: a failure leaves entries that the next read drops again.
    if (stale.length) this.client.srem(setKey, ...stale).catch(() => undefined);
    return out;
  }

  async getApiKeyById(id: string): Promise<ApiKeyRecord | undefined> {
    checkId('getApiKeyById', 'id', id);
    const hash = await this.call('GET', this.client.get(this.keys.keyId(id)));
    if (hash === null) return undefined;
    const [rec, rem] = await this.call('HMGET', this.client.hmget(this.keys.apiKey(hash), 'rec', 'rem'));
    const r = toRecord(rec ?? null, rem ?? null);
    return r && r.id === id && r.hash === hash ? r : undefined;
  }

  async useApiKey(hash: string): Promise<number | undefined> {
    checkId('useApiKey', 'hash', hash);
    const left = await this.call('use', this.cmd.tokenGuardUse(this.keys.apiKey(hash)));
    return left === null ? undefined : Number(left);
  }

  // --- Revocation

  async revoke(tokenId: string, options: RevokeOptions): Promise<void> {
    checkRevoke(tokenId, options);
    const { now, expiresAt, reason } = options;
    if (expiresAt !== undefined && expiresAt <= now) return;
    const key = this.keys.tokenRevocation(tokenId);
    const channel = this.keys.invalidationChannel;
    await this.nearCache.revoke('t', tokenId, (msg) => this.cmd.tokenGuardRevoke(key, now, now, expiresAt ?? '', channel, msg, reason ?? ''));
  }

  async revokeSubject(subject: string, options: RevokeSubjectOptions): Promise<void> {
    checkRevokeSubject(subject, options);
    const { now, before, expiresAt, reason } = options;
    if (expiresAt !== undefined && expiresAt <= now) return;
    const key = this.keys.subjectRevocation(subject);
    const channel = this.keys.invalidationChannel;
    await this.nearCache.revoke('s', subject, (msg) => this.cmd.tokenGuardRevokeSubject(key, now, before, expiresAt ?? '', channel, msg, reason ?? ''));
  }

  getRevocation(tokenId: string, subject: string | undefined, now: number): RevocationState | undefined | Promise<RevocationState | undefined> {
    // Synchronous like a cached answer (this method may answer either way).
    checkGetRevocation(tokenId, subject, now);
    const cached = this.nearCache.lookup(tokenId, subject);
    // Answered locally, without a promise: the guard's hot path then costs no round trip at all.
    if (cached) return toState(cached.token, cached.subject, now);
    return this.readRevocation(tokenId, subject, now);
  }

  private async readRevocation(tokenId: string, subject: string | undefined, now: number): Promise<RevocationState | undefined> {
    const ticket = this.nearCache.beforeRead();
    // Two keys in two slots (a token's and a subject's): two GETs, sent together.
    const [t, s] = await this.call(
      'GET',
      Promise.all([this.client.get(this.keys.tokenRevocation(tokenId)), subject === undefined ? Promise.resolve(null) : this.client.get(this.keys.subjectRevocation(subject))]),
    );
    const token = parseEntry(t, 'at');
    const subj = parseEntry(s, 'before');
    this.nearCache.keep(ticket, tokenId, token, subject, subj);
    return toState(token, subj, now);
  }

  // --- Rate limits

  async consume(tokenId: string, checks: readonly RateLimitCheck[], now: number): Promise<RateLimitResult> {
    checkConsume(tokenId, checks, now);
    if (checks.length === 0) return { allowed: true, retryAfterMs: 0, limits: [] };
    const args: Arg[] = [checks.length];
    for (const c of checks) args.push(this.keys.counter(tokenId, c.name));
    args.push(now);
    for (const c of checks) args.push(c.limit, c.windowMs);
    args.push(COUNTER_TTL_SLACK_MS);
    const reply = await this.call('consume', this.cmd.tokenGuardConsume(...(args as [number, ...Arg[]])));
    if (!Array.isArray(reply) || reply.length !== 2 + 2 * checks.length) throw new StoreError('Redis returned a malformed rate-limit reply');
    const allowed = reply[0] === 1;
    const limits: RateLimitState[] = checks.map((c, i) => ({ name: c.name, limit: c.limit, remaining: num(reply[2 + 2 * i]), resetMs: num(reply[3 + 2 * i]) }));
    return { allowed, retryAfterMs: allowed ? 0 : num(reply[1]), limits };
  }

  // --- One-time claims

  async claimOnce(key: string, options: ClaimOptions): Promise<boolean> {
    const { now, expiresAt, group, maxPerGroup } = options;
    // NaN would reach Lua as a nil comparison error at best, a claim that never holds at worst: a caller bug.
    if (!Number.isFinite(now) || !Number.isFinite(expiresAt)) throw new StoreArgumentError('RedisStore: claimOnce needs finite now and expiresAt');
    checkClaimGroup('RedisStore', group, maxPerGroup);
    // A group's claims share one sorted set (one Cluster slot), so the cap and the claim are one atomic step.
    const won = await this.call(
      'claim',
      group === undefined
        ? this.cmd.tokenGuardClaim(this.keys.claim(key), now, expiresAt)
        : this.cmd.tokenGuardClaimInGroup(this.keys.claimGroup(group), now, expiresAt, key, maxPerGroup ?? 0),
    );
    if (won !== 0 && won !== 1) throw new StoreError('Redis returned a malformed claim reply');
    return won === 1;
  }

  // --- Lifecycle events

  async appendLifecycleEvent(event: LifecycleEvent): Promise<void> {
    checkLifecycleEvent(event);
    await this.call('append', this.cmd.tokenGuardAppendEvent(this.keys.eventLog, this.keys.eventIds, event.id, JSON.stringify(event), this.maxEvents));
  }

  async listLifecycleEvents(query: LifecycleQuery): Promise<LifecycleEvent[]> {
    checkLifecycleQuery(query);
    const limit = query.limit ?? DEFAULT_EVENT_LIMIT;
    // The log is capped (maxLifecycleEvents), so reading it whole is bounded; filtering happens here.
    const raw = await this.call('LRANGE', this.client.lrange(this.keys.eventLog, 0, -1));
    const out: LifecycleEvent[] = [];
    for (let i = raw.length - 1; i >= 0 && out.length < limit; i--) {
      const e = parseEvent(raw[i] as string);
      if (matchesQuery(e, query)) out.push(e);
    }
    return out.reverse();
  }

  // --- Usage

  recordUsage(tokenId: string, usage: UsageEvent): void {
    checkRecordUsage(tokenId, usage);
    this.usage.add(tokenId, usage);
  }

  async getUsage(tokenId: string): Promise<TokenUsage | undefined> {
    checkId('getUsage', 'tokenId', tokenId);
    return readUsage(await this.call('HMGET', this.client.hmget(this.keys.usage(tokenId), ...USAGE_FIELDS)));
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

  /** Writes buffered usage, stops timers and unsubscribes. Never quits the clients the app passed in. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.nearCache.close();
    await this.flush();
  }
}
