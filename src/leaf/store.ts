// The store interface: where token state lives (API key records, revocations, counters, usage).
import type { Awaitable } from './types.js';
import type { HoursRule } from './hours-rule.js';
import type { IpRule } from './ip.js';
import type { Duration } from './duration.js';
import type { LifecycleEvent, LifecycleQuery, RevocationReason } from './lifecycle.js';

/** A rate limit: at most `limit` requests per `window`, per token or per verified subject. */
export interface RateLimitRule {
  limit: number;
  window: Duration;
  /**
   * What is counted: `'token'` (each token apart) or `'subject'` (every token of the verified subject together,
   * shared by every instance through the store). Default: `'token'`.
   */
  by?: 'token' | 'subject';
}

/**
 * What the store keeps for an API key. Never the key itself: only its SHA-256 (`hash`).
 * Times are milliseconds since the epoch, so records survive a JSON round trip unchanged.
 */
export interface ApiKeyRecord {
  /** Stable id (`key_…`): the token id in decisions, audit events, revocations and counters. */
  id: string;
  /** `hashApiKey(key)`: the lookup key. */
  hash: string;
  /** The key's prefix, e.g. `tg_`. */
  prefix: string;
  subject: string;
  scopes: string[];
  createdAt: number;
  /** Expiry time; `null` for a key that never expires. */
  expiresAt: number | null;
  /** Client addresses this key may be used from (narrows the policy, never widens it). */
  ip?: IpRule;
  /** Hours this key may be used in (narrows the policy). */
  hours?: HoursRule;
  /** A rate limit of this key's own (the tightest of policy, rule and key applies). */
  rateLimit?: RateLimitRule;
  /** Uses left; absent for unlimited. Decremented atomically by `useApiKey`. */
  remaining?: number;
  /**
   * When the key was revoked; a revoked key is refused from then on. A time still ahead is a scheduled revocation
   * (a rotated key's end of grace): until then the key works and answers carry `Deprecation` and `Sunset` headers.
   */
  revokedAt?: number;
  /** Why it was (or will be) revoked: `rotated`, `compromised`, `idle`, … Shown in decisions' `detail`. */
  revocationReason?: RevocationReason;
  /** Id of the key this one replaced. */
  rotatedFrom?: string;
  /** Id of the key that replaced this one. */
  rotatedTo?: string;
  /** When this key was rotated (its `Deprecation` date); its grace ends at `revokedAt`. */
  rotatedAt?: number;
  /** The last four characters of the key, for humans to tell keys apart in listings (never enough to use it). */
  lastFour?: string;
  /** Minted with a keyed checksum (`apiKeys.checksumSecret`): `rotateApiKey` then needs the same secret. */
  keyedChecksum?: boolean;
  /** A label for humans. */
  name?: string;
  /** Free-form metadata returned on `req.auth.token.metadata`. */
  metadata?: Record<string, string | number | boolean>;
}

/** Fields of an API key record that may be changed after it is stored. */
export type ApiKeyPatch = Partial<Omit<ApiKeyRecord, 'id' | 'hash' | 'prefix' | 'createdAt'>>;

/** A precondition of `updateApiKey`, checked and acted on in one atomic step with the write. */
export interface ApiKeyUpdateCondition {
  /**
   * Write only while the record has neither `rotatedTo` nor `revokedAt`. `rotateApiKey` sets it, so that of two
   * rotations (or a rotation and a revocation) of one key running at once, only one marks the key.
   */
  unrotatedAndUnrevoked?: boolean;
}

/** What the store knows about a token's revocation. */
export interface RevocationState {
  /** Set when this token id is revoked. */
  revokedAt?: number;
  /** Set when every token of the subject issued before this time is revoked. */
  subjectRevokedBefore?: number;
  /** The reason given with the token's revocation, when there was one. */
  reason?: RevocationReason;
  /** The reason given with the subject's revocation, when there was one. */
  subjectReason?: RevocationReason;
}

/** Options of `TokenStore.revoke`. */
export interface RevokeOptions {
  now: number;
  /** Kept until then (the token's own expiry); absent: kept until deleted. */
  expiresAt?: number;
  /** Kept with the revocation and returned by `getRevocation` as `reason`. A store may ignore it. */
  reason?: RevocationReason;
}

/** Options of `TokenStore.revokeSubject`. */
export interface RevokeSubjectOptions {
  now: number;
  /** Every token of the subject issued before this time is revoked. */
  before: number;
  /** Kept until then; absent: kept until deleted. */
  expiresAt?: number;
  /** Kept with the revocation and returned by `getRevocation` as `subjectReason`. A store may ignore it. */
  reason?: RevocationReason;
}

/** One limit to consume in a rate-limit call, with a name unique within the call. */
export interface RateLimitCheck {
  /** Which counter: e.g. `policy`, `rule:3`, `key`. Counters are per token id and name. */
  name: string;
  /** A positive integer. */
  limit: number;
  /** Whole milliseconds, at least 1 (the built-in stores count in integers, so bursts are exact). */
  windowMs: number;
}

/** The state of one counter after a consume call. */
export interface RateLimitState {
  name: string;
  limit: number;
  /**
   * Requests left in the current window after this call. When the call was refused nothing was charged: every
   * counter is reported as it stands, so the ones that refused read 0 and the others what they still have.
   */
  remaining: number;
  /** Milliseconds until the counter is back to its full limit (after this call; as it stands when refused). */
  resetMs: number;
}

/** The result of consuming one request against several limits at once. */
export interface RateLimitResult {
  /** True when every limit had room; then every counter was charged. When false, none was. */
  allowed: boolean;
  /** Milliseconds until the request would be allowed (0 when allowed). */
  retryAfterMs: number;
  /** Each counter's state, in the order given. */
  limits: RateLimitState[];
}

/** Usage of one token. */
export interface TokenUsage {
  /** Requests let through with this token. */
  count: number;
  /** When it was first used. */
  firstUsedAt: number;
  /** When it was last used. */
  lastUsedAt: number;
  /** The client address of its last use, when known. */
  lastIp?: string;
  /** Distinct client addresses of its recent uses, most recent first, at most `RECENT_IPS_KEPT`. */
  recentIps: string[];
  /** The User-Agent of its last use, when sent. */
  lastUserAgent?: string;
  /** The minute (ms since the epoch, floored to 60 000) of its last use, and the uses in that minute. */
  minute: number;
  minuteCount: number;
}

/** How many distinct recent client addresses a store keeps per token (for the `newIp` risk signal). */
export const RECENT_IPS_KEPT = 8;

/**
 * The longest rate-limit window, in ms (100 years of 365.25 days). With `now` below 9e15, every sum the GCRA
 * makes (now + 2 windows at most) stays below 2^53, so its integer arithmetic is exact. Stores refuse longer
 * windows, and so does the policy, at start-up.
 */
export const MAX_WINDOW_MS = 3_155_760_000_000;

/** One use of a token, as the guard records it. The guard always sets all three keys: `ip` and `userAgent` are `undefined` when unknown. */
export interface UsageEvent {
  at: number;
  ip?: string;
  userAgent?: string;
}

/** Options of `isClaimed`. Times are epoch ms. */
export interface ClaimQuery {
  /** The caller's time: a claim is live while `now < expiresAt`. */
  now: number;
  /** The group the key is claimed with (`ClaimOptions.group`). Default: none. */
  group?: string;
}

/** Options of `claimOnce`. Times are epoch ms. */
export interface ClaimOptions {
  /** The caller's time: a claim is live while `now < expiresAt`. */
  now: number;
  /** When the claim lapses and the key may be claimed again. */
  expiresAt: number;
  /** Claims counted together against `maxPerGroup` (the guard: one group per DPoP proof key). Default: none. */
  group?: string;
  /** Most live claims in `group` (a positive integer); a claim beyond it is refused. Default: no cap. */
  maxPerGroup?: number;
}

/**
 * Where token state lives. Every method may answer synchronously or with a promise; the guard
 * handles both. A method that throws or rejects makes the guard answer 503 `store.unavailable`.
 * An async method must settle in bounded time (the guard also applies `storeTimeout`).
 *
 * Times are milliseconds since the epoch and always passed in (`now`), so stores never read the clock
 * themselves and tests can run on fake time. A call with an argument that cannot mean anything (no `now`, a `Date`
 * where ms belong, NaN, an empty id) must throw or reject with a `TypeError`, never store something that silently
 * does nothing; the built-in stores throw `StoreArgumentError`. Run `storeConformance` from `token-guard/testing`
 * against your own implementation.
 */
export interface TokenStore {
  /** The API key record stored under `hash`, or undefined. Must reflect `useApiKey` decrements. */
  getApiKey(hash: string): Awaitable<ApiKeyRecord | undefined>;
  /** Stores a record under `record.hash`, replacing any record there. */
  putApiKey(record: ApiKeyRecord): Awaitable<void>;
  /**
   * Merges `patch` into the record under `hash`; returns the updated record, or undefined when there is none. With
   * `condition`, the check and the write are one atomic step: when it does not hold, nothing is written and the
   * answer is undefined too (the caller reads the record again to say why).
   */
  updateApiKey(hash: string, patch: ApiKeyPatch, condition?: ApiKeyUpdateCondition): Awaitable<ApiKeyRecord | undefined>;
  /** Deletes the record under `hash`; true when there was one. */
  deleteApiKey(hash: string): Awaitable<boolean>;
  /**
   * Atomically takes one use of a key with `remaining` set: returns the uses left after this one, or -1
   * when none were left or the key is rotated (`rotatedTo` set: a limited key is rotated with grace 0 and its uses
   * left went to the successor; nothing is taken). Returns undefined for an unknown key or one without a `remaining` limit.
   */
  useApiKey(hash: string): Awaitable<number | undefined>;

  /**
   * Revokes one token id until `expiresAt` (its own expiry: after that it is refused anyway and the
   * entry may be dropped). Without `expiresAt` the revocation is kept until deleted. A revocation whose
   * `expiresAt` is already past need not be stored.
   */
  revoke(tokenId: string, options: RevokeOptions): Awaitable<void>;
  /**
   * Revokes every token of `subject` issued before `before`. A later call with an earlier `before` must not
   * shorten an existing one (the latest cut-off wins). Kept until `expiresAt` when given. The reason kept is the
   * latest call's (when it gives one).
   */
  revokeSubject(subject: string, options: RevokeSubjectOptions): Awaitable<void>;
  /** Revocation state for a token id and (optionally) its subject; undefined when neither is revoked. */
  getRevocation(tokenId: string, subject: string | undefined, now: number): Awaitable<RevocationState | undefined>;

  /**
   * Charges one request against every limit in `checks`, atomically: either all counters have room and all
   * are charged, or none is. Counters are keyed by token id and check name; the algorithm is the store's
   * (the built-in stores use GCRA, so a limit of N per window allows a burst of N, then one per window/N).
   */
  consume(tokenId: string, checks: readonly RateLimitCheck[], now: number): Awaitable<RateLimitResult>;
  /**
   * Optional: what `consume` would answer now, charging nothing (a dry run's `guard.explain` reads rate limits with
   * it; without it they show as not checked). Argument checks as `consume`'s.
   */
  peekRateLimit?(tokenId: string, checks: readonly RateLimitCheck[], now: number): Awaitable<RateLimitResult>;

  /**
   * Records one use of a token (count, first and last time, recent IPs, last User-Agent, uses in the last
   * use's minute). Uses may arrive out of order: the latest one decides the "last" fields. May be
   * buffered; `getUsage` reflects it after `flush`.
   */
  recordUsage(tokenId: string, usage: UsageEvent): Awaitable<void>;
  /** Usage of a token, or undefined when it was never recorded. */
  getUsage(tokenId: string): Awaitable<TokenUsage | undefined>;

  /**
   * Claims `key` once until `expiresAt`: true for the first claim, false for every later one before it
   * expires. Atomic across every instance sharing the store. A live claim is never evicted to make room:
   * a store that is full of live claims must throw (the guard then fails closed) rather than forget one.
   *
   * A claim is live while `now < expiresAt` (the caller's `now`, as for revocations); from `expiresAt` on the key
   * can be claimed again. A refused claim changes nothing (it neither extends nor shortens the live one). A claim
   * whose `expiresAt` is already past is granted unless a live claim holds the key, and need not be stored.
   * Meant for one-time values such as DPoP proofs, where a forgotten claim is an accepted replay.
   *
   * With `group` and `maxPerGroup`, a new claim is also refused (false, nothing stored) while its group already
   * holds `maxPerGroup` live claims: the guard groups DPoP proofs by their key, so one client cannot fill the
   * store. A key is always claimed with the same group (or always without one). A store that ignores `group`
   * still works, without the cap.
   */
  claimOnce(key: string, options: ClaimOptions): Awaitable<boolean>;
  /**
   * Whether `key` holds a live claim (`claimOnce` granted it and `now < expiresAt`), `group` being the one it is
   * claimed with. Changes nothing. Optional: with it, the guard refuses a replayed DPoP proof before the request
   * spends its rate limit (a replay is refused either way, at the claim; without this read, after the counters were
   * charged, so a captured proof could be replayed to spend its holder's quota).
   */
  isClaimed?(key: string, options: ClaimQuery): Awaitable<boolean>;

  /**
   * Key inventory (optional; `listApiKeys`, `rotateApiKey`, `revokeApiKey` need it): every record stored under
   * `subject`, whatever its state, in no particular order. A store keeps a subject index current through
   * `putApiKey`, `updateApiKey` (a changed `subject` moves the record) and `deleteApiKey`.
   */
  listApiKeys?(subject: string): Awaitable<ApiKeyRecord[]>;
  /** Key inventory (optional, with `listApiKeys`): the record whose `id` is `id`, or undefined. */
  getApiKeyById?(id: string): Awaitable<ApiKeyRecord | undefined>;
  /**
   * Lifecycle audit (optional): keeps one event. Events are kept in the order appended; a store may cap how many it
   * keeps (oldest dropped first) and must document the cap. Appending an event whose `id` is already kept is a no-op.
   */
  appendLifecycleEvent?(event: LifecycleEvent): Awaitable<void>;
  /** Lifecycle audit (optional, with `appendLifecycleEvent`): the latest matching events, oldest first. */
  listLifecycleEvents?(query: LifecycleQuery): Awaitable<LifecycleEvent[]>;

  /** Writes out anything buffered (usage). */
  flush?(): Awaitable<void>;
  /** Releases what the store holds (timers, subscriptions). Never closes a client the app passed in. */
  close?(): Awaitable<void>;
}
