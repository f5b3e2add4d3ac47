// MemoryStore: token state in this process, bounded. For one instance and for tests.
import { LRUCache } from 'lru-cache';
import { StoreError } from '../leaf/errors.js';
import { gcraStep, type GcraTat } from './gcra.js';
import { addUse, freshUsage } from './usage.js';
import {
  checkConsume,
  checkGetRevocation,
  checkId,
  checkPutApiKey,
  checkRecordUsage,
  checkRevoke,
  checkRevokeSubject,
  checkUpdateApiKey,
  StoreArgumentError,
} from './validate.js';
import { checkClaimGroup } from './claims.js';
import type { ApiKeyPatch, ApiKeyRecord, ClaimOptions, RateLimitCheck, RateLimitResult, RevocationState, TokenStore, TokenUsage, UsageEvent } from '../leaf/store.js';

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

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

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
  private readonly revokedTokens = new Map<string, { at: number; until: number }>();
  private readonly revokedSubjects = new Map<string, { before: number; until: number }>();
  private readonly counters: LRUCache<string, GcraTat>;
  private readonly usage: LRUCache<string, TokenUsage>;
  private readonly maxRevocations: number;
  // Not an LRU on purpose: evicting a live claim under pressure (a flood of fresh claims) would let it be claimed again.
  private readonly claims = new Map<string, number>();
  /** Each group's live claims (key → expiry) in insertion order, to count them against `maxPerGroup`. */
  private readonly claimGroups = new Map<string, Map<string, number>>();
  private readonly maxClaims: number;

  constructor(options: MemoryStoreOptions = {}) {
    this.apiKeys = new LRUCache({ max: bound('maxApiKeys', options.maxApiKeys, 100_000) });
    this.counters = new LRUCache({ max: bound('maxCounters', options.maxCounters, 100_000) });
    this.usage = new LRUCache({ max: bound('maxUsage', options.maxUsage, 100_000) });
    this.maxRevocations = bound('maxRevocations', options.maxRevocations, 1_000_000);
    this.maxClaims = bound('maxClaims', options.maxClaims, 1_000_000);
  }

  getApiKey(hash: string): ApiKeyRecord | undefined {
    checkId('getApiKey', 'hash', hash);
    return this.apiKeys.get(hash);
  }

  putApiKey(record: ApiKeyRecord): void {
    checkPutApiKey(record);
    this.apiKeys.set(record.hash, freezeRecord(record));
  }

  updateApiKey(hash: string, patch: ApiKeyPatch): ApiKeyRecord | undefined {
    checkUpdateApiKey(hash, patch);
    const current = this.apiKeys.get(hash);
    if (!current) return undefined;
    const next = freezeRecord({ ...current, ...patch, id: current.id, hash: current.hash, prefix: current.prefix, createdAt: current.createdAt });
    this.apiKeys.set(hash, next);
    return next;
  }

  deleteApiKey(hash: string): boolean {
    checkId('deleteApiKey', 'hash', hash);
    return this.apiKeys.delete(hash);
  }

  useApiKey(hash: string): number | undefined {
    checkId('useApiKey', 'hash', hash);
    const current = this.apiKeys.get(hash);
    if (!current || current.remaining === undefined) return undefined;
    if (current.remaining <= 0) return -1;
    const remaining = current.remaining - 1;
    this.apiKeys.set(hash, Object.freeze({ ...current, remaining }));
    return remaining;
  }

  private makeRoom(now: number): void {
    if (this.revokedTokens.size + this.revokedSubjects.size < this.maxRevocations) return;
    for (const [k, v] of this.revokedTokens) if (v.until <= now) this.revokedTokens.delete(k);
    for (const [k, v] of this.revokedSubjects) if (v.until <= now) this.revokedSubjects.delete(k);
    if (this.revokedTokens.size + this.revokedSubjects.size >= this.maxRevocations) {
      throw new StoreError(`MemoryStore holds ${this.maxRevocations} unexpired revocations (maxRevocations); refusing to drop any`);
    }
  }

  revoke(tokenId: string, options: { now: number; expiresAt?: number }): void {
    checkRevoke(tokenId, options);
    const until = options.expiresAt ?? NEVER;
    if (until <= options.now) return;
    const existing = live(this.revokedTokens.get(tokenId), options.now);
    if (!existing) this.makeRoom(options.now);
    this.revokedTokens.set(tokenId, { at: existing?.at ?? options.now, until: Math.max(until, existing?.until ?? 0) });
  }

  revokeSubject(subject: string, options: { now: number; before: number; expiresAt?: number }): void {
    checkRevokeSubject(subject, options);
    const until = options.expiresAt ?? NEVER;
    if (until <= options.now) return;
    const existing = live(this.revokedSubjects.get(subject), options.now);
    if (!existing) this.makeRoom(options.now);
    this.revokedSubjects.set(subject, {
      before: Math.max(options.before, existing?.before ?? Number.NEGATIVE_INFINITY),
      until: Math.max(until, existing?.until ?? 0),
    });
  }

  getRevocation(tokenId: string, subject: string | undefined, now: number): RevocationState | undefined {
    checkGetRevocation(tokenId, subject, now);
    let state: RevocationState | undefined;
    const t = this.revokedTokens.get(tokenId);
    if (t) {
      if (t.until > now) state = { revokedAt: t.at };
      else this.revokedTokens.delete(tokenId);
    }
    if (subject !== undefined) {
      const s = this.revokedSubjects.get(subject);
      if (s) {
        if (s.until > now) (state ??= {}).subjectRevokedBefore = s.before;
        else this.revokedSubjects.delete(subject);
      }
    }
    return state;
  }

  consume(tokenId: string, checks: readonly RateLimitCheck[], now: number): RateLimitResult {
    checkConsume(tokenId, checks, now);
    const steps = checks.map((c) => gcraStep(this.counters.get(`${tokenId}\u0000${c.name}`), now, c.limit, c.windowMs));
    const allowed = steps.every((s) => s.allowed);
    if (allowed) {
      checks.forEach((c, i) => {
        const s = steps[i]!;
        // The counter is worthless once its TAT has passed: let it expire with it.
        // ttlMs is never 0, which lru-cache reads as "never expires".
        this.counters.set(`${tokenId}\u0000${c.name}`, s.tat, { ttl: s.ttlMs });
      });
    }
    return {
      allowed,
      retryAfterMs: allowed ? 0 : Math.max(...steps.map((s) => s.retryAfterMs)),
      limits: checks.map((c, i) => ({ name: c.name, limit: c.limit, remaining: steps[i]!.remaining, resetMs: steps[i]!.resetMs })),
    };
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
      for (const [k, v] of this.claims) if (v <= now) this.claims.delete(k);
      for (const [g, m] of this.claimGroups) {
        for (const [k, v] of m) if (v <= now) m.delete(k);
        if (m.size === 0) this.claimGroups.delete(g);
      }
      if (this.claims.size >= this.maxClaims) {
        throw new StoreError(`MemoryStore holds ${this.maxClaims} unexpired claims (maxClaims); refusing to drop any`);
      }
    }
    this.claims.set(key, expiresAt);
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
    return u ? { ...u, recentIps: [...u.recentIps] } : undefined;
  }
}
