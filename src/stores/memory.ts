// MemoryStore: token state in this process, bounded. For one instance and for tests.
import { LRUCache } from 'lru-cache';
import { StoreError } from '../leaf/errors.js';
import { gcraResult, gcraStep, type GcraTat } from './gcra.js';
import { addUse, freshUsage, publicUsage } from './usage.js';
import { BoundedMap } from '../leaf/bounded-map.js';
import {
  checkConsume,
  checkGetRevocation,
  checkId,
  checkPutApiKey,
  checkRecordUsage,
  checkRevoke,
  checkRevokeSubject,
  checkUpdateApiKey,
  failsCondition,
  checkLifecycleEvent,
  checkLifecycleQuery,
  DEFAULT_EVENT_LIMIT,
  matchesQuery,
  StoreArgumentError,
} from './validate.js';
import { checkClaimGroup } from './claims.js';
import type {
  ApiKeyPatch,
  ApiKeyRecord,
  ApiKeyUpdateCondition,
  ClaimOptions,
  ClaimQuery,
  RateLimitCheck,
  RateLimitResult,
  RevocationState,
  RevokeOptions,
  RevokeSubjectOptions,
  TokenStore,
  TokenUsage,
  UsageEvent,
} from '../leaf/store.js';
import type { LifecycleEvent, LifecycleQuery, RevocationReason } from '../leaf/lifecycle.js';
import { deepFreeze } from '../leaf/freeze.js';

/** Options of MemoryStore. */
export interface MemoryStoreOptions {
  /** Most API key records kept; the least recently used beyond it are dropped (their keys then fail). Default: 100 000. */
  maxApiKeys?: number;
  /**
   * Most live revocations (token ids plus subjects). Revocations are never dropped to make room: when full
   * of unexpired entries, `revoke` throws, so a revoked token can never come back to life. Default: 1 000 000.
   */
  maxRevocations?: number;
  /** Most rate-limit counters kept (least recently used beyond it are dropped, i.e. reset). Default: 100 000. */
  maxCounters?: number;
  /** Most tokens whose usage is kept. Default: 100 000. */
  maxUsage?: number;
  /**
   * Most live one-time claims (`claimOnce`, e.g. DPoP proofs). Like revocations, claims are never dropped to make
   * room: when full of unexpired claims, `claimOnce` throws (the guard answers 503), so a claimed value can never
   * be claimed twice. Default: 1 000 000. The guard also caps each DPoP key's live claims (`dpop.maxClaimsPerKey`),
   * so one client cannot fill this.
   */
  maxClaims?: number;
  /** Most lifecycle events kept (`appendLifecycleEvent`); the oldest beyond it are dropped. Default: 10 000. */
  maxLifecycleEvents?: number;
}

const NEVER = Number.POSITIVE_INFINITY;

// A bound of NaN or 0 would never be reached (or never leave room): a mistake refused at construction.
function bound(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new StoreArgumentError(`MemoryStore: ${name} must be a positive integer (got ${String(value)})`);
  }
  return value;
}

function freezeRecord(record: ApiKeyRecord): ApiKeyRecord {
  // Records are handed out as-is on the hot path; freezing makes that safe without copying on every read.
  const copy: ApiKeyRecord = structuredClone(record);
  return deepFreeze(copy);
}

// An entry past its expiry is gone in effect (getRevocation drops it lazily): a new revocation must replace it,
// not inherit its time or cut-off.
function live<T extends { until: number }>(entry: T | undefined, now: number): T | undefined {
  return entry && entry.until > now ? entry : undefined;
}

/** Deletes the entries of `map` whose end (`until` of a value) is at or before `now`; the earliest end left (Infinity: none). */
function dropExpired<V>(map: Map<string, V>, now: number, until: (value: V) => number): number {
  let earliest = Number.POSITIVE_INFINITY;
  for (const [k, v] of map) {
    const end = until(v);
    if (end <= now) map.delete(k);
    else if (end < earliest) earliest = end;
  }
  return earliest;
}
const untilOf = (v: { until: number }): number => v.until;
const itself = (v: number): number => v;

/**
 * Keeps token state in this process: API key records, revocations, rate-limit counters, usage and one-time claims.
 * Bounded; answers synchronously. Use RedisStore (`token-guard/redis`) when several instances share state.
 *
 * Exported from `token-guard`.
 * @example
 * const store = new MemoryStore();
 * const { key, record } = issueApiKey({ prefix: 'tg_', subject: 'svc-billing', scopes: ['orders:read'], expiresIn: '90d' });
 * await store.putApiKey(record);
 */
export class MemoryStore implements TokenStore {
  private readonly apiKeys: LRUCache<string, ApiKeyRecord>;
  /** The key inventory: record id → hash, and subject → hashes, kept in step with `apiKeys` (evictions included). */
  private readonly hashById = new Map<string, string>();
  private readonly hashesBySubject = new Map<string, Set<string>>();
  private readonly events: LifecycleEvent[] = [];
  private readonly eventIds = new Set<string>();
  private readonly maxEvents: number;
  private readonly revokedTokens = new Map<string, { at: number; until: number; reason?: RevocationReason }>();
  private readonly revokedSubjects = new Map<string, { before: number; until: number; reason?: RevocationReason }>();
  private readonly counters: LRUCache<string, GcraTat>;
  private readonly usage: BoundedMap<string, TokenUsage>;
  private readonly maxRevocations: number;
  // Not an LRU on purpose: evicting a live claim under pressure (a flood of fresh claims) would let it be claimed again.
  private readonly claims = new Map<string, number>();
  /** Each group's live claims (key → expiry) in insertion order, to count them against `maxPerGroup`. */
  private readonly claimGroups = new Map<string, Map<string, number>>();
  private readonly maxClaims: number;
  // Lower bounds of the earliest expiry among the revocations (claims) held: lowered by every insert, recomputed by a
  // sweep. While `now` is below it nothing has expired, so a full store refuses at once instead of walking every entry
  // to free none: at capacity, a flood of new claims would otherwise cost a full sweep each.
  private revocationsExpireFrom = Number.POSITIVE_INFINITY;
  private claimsExpireFrom = Number.POSITIVE_INFINITY;

  constructor(options: MemoryStoreOptions = {}) {
    this.apiKeys = new LRUCache({
      max: bound('maxApiKeys', options.maxApiKeys, 100_000),
      // A record dropped to make room leaves the inventory too (replacements and deletes are unindexed by hand).
      dispose: (record, _hash, reason) => {
        if (reason === 'evict') this.unindex(record);
      },
    });
    this.maxEvents = bound('maxLifecycleEvents', options.maxLifecycleEvents, 10_000);
    this.counters = new LRUCache({ max: bound('maxCounters', options.maxCounters, 100_000) });
    // Read and updated on every allowed request: a BoundedMap's hit is one Map lookup, where lru-cache also moves the
    // entry in its recency lists. `refresh` keeps a token used at least once per maxUsage / 2 new tokens, as an LRU would.
    this.usage = new BoundedMap(bound('maxUsage', options.maxUsage, 100_000), { refresh: true });
    this.maxRevocations = bound('maxRevocations', options.maxRevocations, 1_000_000);
    this.maxClaims = bound('maxClaims', options.maxClaims, 1_000_000);
  }

  getApiKey(hash: string): ApiKeyRecord | undefined {
    checkId('getApiKey', 'hash', hash);
    return this.apiKeys.get(hash);
  }

  putApiKey(record: ApiKeyRecord): void {
    checkPutApiKey(record);
    this.store(freezeRecord(record));
  }

  updateApiKey(hash: string, patch: ApiKeyPatch, condition?: ApiKeyUpdateCondition): ApiKeyRecord | undefined {
    checkUpdateApiKey(hash, patch, condition);
    const current = this.apiKeys.get(hash);
    if (!current || failsCondition(current, condition)) return undefined;
    const next = freezeRecord({ ...current, ...patch, id: current.id, hash: current.hash, prefix: current.prefix, createdAt: current.createdAt });
    this.store(next);
    return next;
  }

  deleteApiKey(hash: string): boolean {
    checkId('deleteApiKey', 'hash', hash);
    const current = this.apiKeys.peek(hash);
    if (current) this.unindex(current);
    return this.apiKeys.delete(hash);
  }

  listApiKeys(subject: string): ApiKeyRecord[] {
    checkId('listApiKeys', 'subject', subject);
    const out: ApiKeyRecord[] = [];
    for (const hash of this.hashesBySubject.get(subject) ?? []) {
      const r = this.apiKeys.peek(hash);
      if (r?.subject === subject) out.push(r);
    }
    return out;
  }

  getApiKeyById(id: string): ApiKeyRecord | undefined {
    checkId('getApiKeyById', 'id', id);
    const hash = this.hashById.get(id);
    const r = hash === undefined ? undefined : this.apiKeys.peek(hash);
    return r?.id === id ? r : undefined;
  }

  /** Stores a record under its hash, moving it in the inventory when it replaces one. */
  private store(record: ApiKeyRecord): void {
    const previous = this.apiKeys.peek(record.hash);
    if (previous) this.unindex(previous);
    this.apiKeys.set(record.hash, record);
    this.hashById.set(record.id, record.hash);
    let hashes = this.hashesBySubject.get(record.subject);
    if (!hashes) this.hashesBySubject.set(record.subject, (hashes = new Set()));
    hashes.add(record.hash);
  }

  private unindex(record: ApiKeyRecord): void {
    if (this.hashById.get(record.id) === record.hash) this.hashById.delete(record.id);
    const hashes = this.hashesBySubject.get(record.subject);
    hashes?.delete(record.hash);
    if (hashes?.size === 0) this.hashesBySubject.delete(record.subject);
  }

  appendLifecycleEvent(event: LifecycleEvent): void {
    checkLifecycleEvent(event);
    if (this.eventIds.has(event.id)) return;
    const kept = Object.freeze(Object.fromEntries(Object.entries(event).filter(([, v]) => v !== undefined))) as LifecycleEvent;
    this.events.push(kept);
    this.eventIds.add(kept.id);
    // Oldest first out; a shift per append is O(n) but only once the cap is reached, and the cap is small.
    while (this.events.length > this.maxEvents) this.eventIds.delete((this.events.shift() as LifecycleEvent).id);
  }

  listLifecycleEvents(query: LifecycleQuery): LifecycleEvent[] {
    checkLifecycleQuery(query);
    const limit = query.limit ?? DEFAULT_EVENT_LIMIT;
    const out: LifecycleEvent[] = [];
    for (let i = this.events.length - 1; i >= 0 && out.length < limit; i--) {
      const e = this.events[i] as LifecycleEvent;
      if (matchesQuery(e, query)) out.push({ ...e });
    }
    return out.reverse();
  }

  useApiKey(hash: string): number | undefined {
    checkId('useApiKey', 'hash', hash);
    const current = this.apiKeys.get(hash);
    if (!current || current.remaining === undefined) return undefined;
    // Rotated (always with grace 0 when limited): its uses went to the successor, so a request still on it spends none.
    if (current.remaining <= 0 || current.rotatedTo !== undefined) return -1;
    const remaining = current.remaining - 1;
    // Same id and subject: the inventory needs no change.
    this.apiKeys.set(hash, Object.freeze({ ...current, remaining }));
    return remaining;
  }

  private makeRoom(now: number): void {
    if (this.revokedTokens.size + this.revokedSubjects.size < this.maxRevocations) return;
    if (now >= this.revocationsExpireFrom) {
      this.revocationsExpireFrom = Math.min(dropExpired(this.revokedTokens, now, untilOf), dropExpired(this.revokedSubjects, now, untilOf));
    }
    if (this.revokedTokens.size + this.revokedSubjects.size >= this.maxRevocations) {
      throw new StoreError(`MemoryStore holds ${this.maxRevocations} unexpired revocations (maxRevocations); refusing to drop any`);
    }
  }

  revoke(tokenId: string, options: RevokeOptions): void {
    checkRevoke(tokenId, options);
    const until = options.expiresAt ?? NEVER;
    if (until <= options.now) return;
    const existing = live(this.revokedTokens.get(tokenId), options.now);
    if (!existing) this.makeRoom(options.now);
    const reason = options.reason ?? existing?.reason;
    const held = Math.max(until, existing?.until ?? 0);
    this.revokedTokens.set(tokenId, { at: existing?.at ?? options.now, until: held, ...(reason !== undefined && { reason }) });
    if (held < this.revocationsExpireFrom) this.revocationsExpireFrom = held;
  }

  revokeSubject(subject: string, options: RevokeSubjectOptions): void {
    checkRevokeSubject(subject, options);
    const until = options.expiresAt ?? NEVER;
    if (until <= options.now) return;
    const existing = live(this.revokedSubjects.get(subject), options.now);
    if (!existing) this.makeRoom(options.now);
    const reason = options.reason ?? existing?.reason;
    const held = Math.max(until, existing?.until ?? 0);
    this.revokedSubjects.set(subject, {
      before: Math.max(options.before, existing?.before ?? Number.NEGATIVE_INFINITY),
      until: held,
      ...(reason !== undefined && { reason }),
    });
    if (held < this.revocationsExpireFrom) this.revocationsExpireFrom = held;
  }

  getRevocation(tokenId: string, subject: string | undefined, now: number): RevocationState | undefined {
    checkGetRevocation(tokenId, subject, now);
    let state: RevocationState | undefined;
    const t = this.revokedTokens.get(tokenId);
    if (t) {
      if (t.until > now) state = t.reason === undefined ? { revokedAt: t.at } : { revokedAt: t.at, reason: t.reason };
      else this.revokedTokens.delete(tokenId);
    }
    if (subject !== undefined) {
      const s = this.revokedSubjects.get(subject);
      if (s) {
        if (s.until > now) {
          state ??= {};
          state.subjectRevokedBefore = s.before;
          if (s.reason !== undefined) state.subjectReason = s.reason;
        } else this.revokedSubjects.delete(subject);
      }
    }
    return state;
  }

  consume(tokenId: string, checks: readonly RateLimitCheck[], now: number): RateLimitResult {
    return this.rateLimit(tokenId, checks, now, true);
  }
  peekRateLimit(tokenId: string, checks: readonly RateLimitCheck[], now: number): RateLimitResult {
    return this.rateLimit(tokenId, checks, now, false);
  }

  /** `consume`'s answer; `charge`: whether an allowed request is charged (false: a peek). */
  private rateLimit(tokenId: string, checks: readonly RateLimitCheck[], now: number, charge: boolean): RateLimitResult {
    checkConsume(tokenId, checks, now);
    const steps = checks.map((c) => gcraStep(this.counters.get(`${tokenId}\u0000${c.name}`), now, c.limit, c.windowMs));
    const allowed = steps.every((s) => s.allowed);
    if (allowed && charge) {
      checks.forEach((c, i) => {
        const s = steps[i]!;
        // The counter is worthless once its TAT has passed: let it expire with it.
        // ttlMs is never 0, which lru-cache reads as "never expires".
        this.counters.set(`${tokenId}\u0000${c.name}`, s.tat, { ttl: s.ttlMs });
      });
    }
    return gcraResult(checks, steps, allowed);
  }

  isClaimed(key: string, options: ClaimQuery): boolean {
    if (!Number.isFinite(options.now)) throw new StoreArgumentError('MemoryStore: isClaimed needs a finite now');
    checkClaimGroup('MemoryStore', options.group, undefined, 'isClaimed');
    const until = this.claims.get(key);
    return until !== undefined && until > options.now;
  }

  claimOnce(key: string, options: ClaimOptions): boolean {
    const { now, expiresAt, group, maxPerGroup } = options;
    // NaN compares false both ways and would make a claim that never holds: a caller bug, refused loudly.
    if (!Number.isFinite(now) || !Number.isFinite(expiresAt)) throw new StoreArgumentError('MemoryStore: claimOnce needs finite now and expiresAt');
    checkClaimGroup('MemoryStore', group, maxPerGroup);
    const until = this.claims.get(key);
    if (until !== undefined) {
      if (until > now) return false;
      this.claims.delete(key);
    }
    // Already over: nothing could replay it inside a window that has passed, so there is nothing to keep.
    if (expiresAt <= now) return true;
    let members: Map<string, number> | undefined;
    if (group !== undefined) {
      members = this.claimGroups.get(group);
      if (members) {
        members.delete(key);
        // Claims mostly arrive in expiry order: dropping expired ones from the front keeps this O(1) per claim.
        // One that expired out of order is counted a little longer, which errs on the side of the cap.
        for (const [k, v] of members) {
          if (v > now) break;
          members.delete(k);
        }
        if (maxPerGroup !== undefined && members.size >= maxPerGroup) return false;
      }
    }
    if (this.claims.size >= this.maxClaims) {
      if (now >= this.claimsExpireFrom) {
        this.claimsExpireFrom = dropExpired(this.claims, now, itself);
        for (const [g, m] of this.claimGroups) {
          dropExpired(m, now, itself);
          if (m.size === 0) this.claimGroups.delete(g);
        }
      }
      if (this.claims.size >= this.maxClaims) {
        throw new StoreError(`MemoryStore holds ${this.maxClaims} unexpired claims (maxClaims); refusing to drop any`);
      }
    }
    this.claims.set(key, expiresAt);
    if (expiresAt < this.claimsExpireFrom) this.claimsExpireFrom = expiresAt;
    if (group !== undefined) {
      if (!members || !this.claimGroups.has(group)) {
        members = new Map();
        this.claimGroups.set(group, members);
      }
      members.set(key, expiresAt);
    }
    return true;
  }

  recordUsage(tokenId: string, usage: UsageEvent): void {
    checkRecordUsage(tokenId, usage);
    // Updated in place (getUsage hands out copies): a repeated use allocates nothing. get() marks it recently used.
    const current = this.usage.get(tokenId);
    if (current) addUse(current, usage);
    else this.usage.set(tokenId, freshUsage(usage));
  }

  getUsage(tokenId: string): TokenUsage | undefined {
    checkId('getUsage', 'tokenId', tokenId);
    const u = this.usage.get(tokenId);
    return u ? publicUsage(u) : undefined;
  }
}
