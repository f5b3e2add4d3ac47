// The lifecycle of API keys outside a request: create (issue + store), list a subject's keys, rotate with a grace
// period, revoke with a reason, and read the lifecycle audit trail. Every change is reported as a LifecycleEvent to
// the caller's `onEvent` and appended to the store when the store keeps events.
import { parseDuration, type Duration } from '../leaf/duration.js';
import { ApiKeyStateError, LifecycleEventError, shownValue, UsageError } from '../leaf/errors.js';
import { isRevocationReason, type LifecycleEvent, type LifecycleQuery, type RevocationReason } from '../leaf/lifecycle.js';
import type { ApiKeyRecord, TokenStore } from '../leaf/store.js';
import { issueApiKey, type IssueApiKeyOptions, type IssuedApiKey } from './issue-api-key.js';
import { reporter, type EventDraft } from './lifecycle-events.js';
import { checkActor, isRawCredential } from './revoke-arguments.js';
import { clockToleranceProblem, MAX_CLOCK_TOLERANCE_MS } from '../tokens/clock-tolerance.js';
import { type ApiKeySummary, checked, listedRevocation, summarize, summaryWithUse } from './key-summary.js';

export { type ApiKeySummary, summarize } from './key-summary.js';

/** Options every lifecycle function takes: who acts, when, and where events go besides the store. */
export interface LifecycleOptions {
  /** Who makes the change, recorded in its event (`alice@example.com`, `cli`). Default: none. */
  actor?: string;
  /** Called with each event the call produces (after the store kept it). Its errors are swallowed. Default: none. */
  onEvent?: (event: LifecycleEvent) => void | Promise<void>;
  /** The time of the change. Default: now. */
  now?: Date;
}

/** The guard's own default clock tolerance (without `jwt`, or with its default `clockTolerance`). */
const DEFAULT_TOLERANCE_MS = 5000;

/** Options of `listApiKeys` and `findApiKey`. */
export interface ListApiKeysOptions {
  /** The time `state` is computed at. Default: now. */
  now?: Date;
  /**
   * The clock tolerance of the guard that reads these keys (the largest `jwt.clockTolerance`; from a guard,
   * `guard.clockTolerance * 1000`, which is in seconds). The guard reads a key's creation that much earlier against a
   * subject revocation (`revokeSubject`), so a key made up to that long after the cut-off is refused: with the same
   * tolerance, `state` is `revoked` exactly when the guard refuses the key. At most `'5m'`, as the guard's. Default:
   * `'5s'`, the guard's default.
   */
  clockTolerance?: Duration;
}

/** Options of `createApiKey`: those of `issueApiKey`, plus who acts and where events go. */
export type CreateApiKeyOptions = IssueApiKeyOptions & Omit<LifecycleOptions, 'now'>;

/** The longest rotation grace accepted: 30 days. A longer overlap keeps a possibly leaked key alive too long. */
export const MAX_ROTATION_GRACE_MS = 30 * 86_400_000;

/** Options of `rotateApiKey`. */
export interface RotateApiKeyOptions extends LifecycleOptions {
  /**
   * How long the old key keeps working beside its successor (`'24h'`), from 0 (refused at once) to 30 days. During
   * it, answers to the old key carry `Deprecation` and `Sunset` headers. Never past the old key's own expiry. Must
   * be 0 for a key with a use limit (`remaining`), whose uses left move to the successor. Default: 0.
   */
  grace?: Duration;
  /** The successor's lifetime. Default: the old key's (`expiresAt − createdAt`), or none when it never expired. */
  expiresIn?: Duration | null;
  /** Secret of the keyed checksum (as `issueApiKey`'s). Default: none. */
  checksumSecret?: string | Uint8Array;
  /** Why (recorded on the old key's event and as its revocation reason). Default: `'rotated'`. */
  reason?: RevocationReason;
  /**
   * The clock tolerance of the guard that reads the key, as `listApiKeys`'s: a key the guard refuses under a subject
   * revocation (made up to that long after its cut-off) is not rotated. At most `'5m'`. Default: `'5s'`, the guard's default.
   */
  clockTolerance?: Duration;
}

/** What `rotateApiKey` returns: the successor (plaintext once, and its stored record) and the old key as it is now. */
export interface RotatedApiKey extends IssuedApiKey {
  /** The old key after rotation. */
  previous: ApiKeySummary;
  /** When the old key stops working. */
  sunsetAt: Date;
}

/** Options of `revokeApiKey`. */
export interface RevokeApiKeyOptions extends LifecycleOptions {
  /** Why: `compromised`, `offboarded`, … (see RevocationReason). Default: `'unspecified'`. */
  reason?: RevocationReason;
}

/** The store with its key inventory, or a UsageError naming what it lacks. */
function inventoryOf(store: TokenStore, where: string): TokenStore & Required<Pick<TokenStore, 'listApiKeys' | 'getApiKeyById'>> {
  if (!store || typeof store !== 'object') throw new UsageError(`${where}: expected a TokenStore`);
  if (typeof store.listApiKeys !== 'function' || typeof store.getApiKeyById !== 'function') {
    throw new UsageError(`${where}: this store keeps no key inventory (listApiKeys, getApiKeyById)`, {
      code: 'store.unsupported',
      help: 'use MemoryStore or RedisStore, or implement the optional listApiKeys and getApiKeyById methods (see lifecycleConformance)',
    });
  }
  return store as TokenStore & Required<Pick<TokenStore, 'listApiKeys' | 'getApiKeyById'>>;
}

/** The time of a call, checked. */
function timeOf(where: string, now: unknown): number {
  if (now === undefined) return Date.now();
  if (!(now instanceof Date) || !Number.isFinite(now.getTime())) throw new UsageError(`${where}: now must be a valid Date`);
  return now.getTime();
}

/** The clock tolerance of a call in ms, checked: a duration as the policy's `jwt.clockTolerance` takes it, at most 5 minutes. */
function toleranceOf(where: string, value: unknown): number {
  if (value === undefined) return DEFAULT_TOLERANCE_MS;
  const ms = parseDuration(value);
  const help = "pass the guard's: clockTolerance: guard.clockTolerance * 1000 (guard.clockTolerance is in seconds)";
  if (ms === undefined) throw new UsageError(`${where}: clockTolerance must be a duration ('5s', '500ms', ms) of 0 or more (got ${shownValue(value)})`, { help });
  // No guard reads with more, so a larger one could only show as revoked (and refuse to rotate) keys the guard accepts.
  if (ms > MAX_CLOCK_TOLERANCE_MS) throw new UsageError(`${where}: clockTolerance: ${clockToleranceProblem(value) as string}`, { help });
  return ms;
}

/** Common checks of LifecycleOptions. */
function lifecycleOptions(where: string, options: LifecycleOptions): number {
  if (!options || typeof options !== 'object') throw new UsageError(`${where}: options must be an object`);
  checkActor(where, options.actor);
  if (options.onEvent !== undefined && typeof options.onEvent !== 'function') throw new UsageError(`${where}: onEvent must be a function`);
  return timeOf(where, options.now);
}

function checkReasonOption(where: string, reason: unknown): void {
  if (reason !== undefined && !isRevocationReason(reason)) {
    throw new UsageError(`${where}: reason must be a lower-case word (a-z, 0-9, _ . -, at most 64 characters), e.g. 'compromised'`);
  }
}

/**
 * A key id or subject: a non-empty string, and never a credential itself (a key pasted where its id belongs), which
 * would be echoed in messages and, as a subject, kept in the store and its events.
 */
function checkName(where: string, what: 'id' | 'subject', value: unknown): asserts value is string {
  if (typeof value !== 'string' || value === '') throw new UsageError(`${where}: ${what} must be a non-empty string`);
  if (isRawCredential(value)) {
    throw new UsageError(`${where}: got a raw API key or token where its ${what} belongs (not shown)`, {
      help: what === 'id' ? 'give the key record id (key_…, as keys list shows it), never the key' : "give the key's subject, never a key or token",
    });
  }
}

/**
 * Waits for the report of a change already made. Its failure carries what the change made (`LifecycleEventError`'s
 * `result`): a key issued or rotated is in the store and works, and its plaintext exists nowhere else.
 */
async function reported(made: unknown, report: Promise<unknown>): Promise<void> {
  try {
    await report;
  } catch (err) {
    throw err instanceof LifecycleEventError ? err.withResult(made) : err;
  }
}

/**
 * Issues a key (as `issueApiKey`), stores its record and reports `key.issued`. Returns the plaintext once (also when
 * the key was stored but its event could not be kept: then as the `result` of the LifecycleEventError thrown).
 *
 * Exported from `token-guard`.
 * @example
 * const { key } = await createApiKey(store, { prefix: 'tg_', subject: 'svc-billing', scopes: ['orders:read'], expiresIn: '90d', actor: 'alice' });
 */
export async function createApiKey(store: TokenStore, options: CreateApiKeyOptions): Promise<IssuedApiKey> {
  if (!store || typeof store !== 'object' || typeof store.putApiKey !== 'function') throw new UsageError('createApiKey: expected a TokenStore');
  const { actor, onEvent, ...issue } = options ?? ({} as CreateApiKeyOptions);
  lifecycleOptions('createApiKey', { actor, onEvent });
  const issued = issueApiKey(issue);
  await store.putApiKey(issued.record);
  await reported(issued, reporter(store, onEvent)({ type: 'key.issued', at: issued.record.createdAt, subject: issued.record.subject, tokenId: issued.record.id, actor }));
  return issued;
}

/**
 * Every key of `subject`, newest first, as metadata (never the hash). Needs a store with a key inventory
 * (`listApiKeys`/`getApiKeyById`: MemoryStore and RedisStore have one); otherwise throws UsageError `store.unsupported`.
 *
 * Exported from `token-guard`.
 * @example
 * for (const k of await listApiKeys(store, 'svc-billing')) console.log(k.id, k.prefix + '…' + k.lastFour, k.state);
 */
export async function listApiKeys(store: TokenStore, subject: string, options: ListApiKeysOptions = {}): Promise<ApiKeySummary[]> {
  const inventory = inventoryOf(store, 'listApiKeys');
  checkName('listApiKeys', 'subject', subject);
  const nowMs = timeOf('listApiKeys', options?.now);
  const toleranceMs = toleranceOf('listApiKeys', options?.clockTolerance);
  const records = (await inventory.listApiKeys(subject)).map(checked);
  records.sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? -1 : 1));
  return Promise.all(records.map((r) => summaryWithUse(store, r, nowMs, toleranceMs)));
}

/**
 * One key by its record id, as metadata, or undefined. Needs a store with a key inventory.
 *
 * Exported from `token-guard`.
 */
export async function findApiKey(store: TokenStore, id: string, options: ListApiKeysOptions = {}): Promise<ApiKeySummary | undefined> {
  const inventory = inventoryOf(store, 'findApiKey');
  checkName('findApiKey', 'id', id);
  const nowMs = timeOf('findApiKey', options?.now);
  const toleranceMs = toleranceOf('findApiKey', options?.clockTolerance);
  const record = await inventory.getApiKeyById(id);
  return record === undefined || record === null ? undefined : summaryWithUse(store, checked(record), nowMs, toleranceMs);
}

/** The record of `id` that can still change: known, not revoked, not rotated, not expired; else ApiKeyStateError. */
async function changeable(store: TokenStore & Required<Pick<TokenStore, 'getApiKeyById'>>, id: string, nowMs: number, allowGrace: boolean): Promise<ApiKeyRecord> {
  const found = await store.getApiKeyById(id);
  if (found === undefined || found === null) throw new ApiKeyStateError('api_key.not_found', id, `no API key with id ${id}`);
  const record = checked(found);
  if (record.revokedAt !== undefined && record.revokedAt <= nowMs) {
    throw new ApiKeyStateError('api_key.revoked', id, `API key ${id} is revoked${isRevocationReason(record.revocationReason) ? ` (${record.revocationReason})` : ''}`);
  }
  if (record.rotatedTo !== undefined && !allowGrace) throw new ApiKeyStateError('api_key.rotated', id, `API key ${id} was already rotated to ${record.rotatedTo}`);
  if (record.revokedAt !== undefined && !allowGrace) throw new ApiKeyStateError('api_key.revoked', id, `API key ${id} is scheduled for revocation`);
  if (record.expiresAt !== null && record.expiresAt <= nowMs) throw new ApiKeyStateError('api_key.expired', id, `API key ${id} expired`);
  if (record.remaining !== undefined && record.remaining <= 0) throw new ApiKeyStateError('api_key.expired', id, `API key ${id} has no uses left`);
  return record;
}

/**
 * Issues a successor for key `id` with the same subject, scopes and constraints, links the two (`rotatedFrom`,
 * `rotatedTo`) and schedules the old key's revocation at the end of `grace`. Reports `key.issued` (successor) and
 * `key.rotated` (old key). Throws ApiKeyStateError for an unknown, revoked, already rotated or expired key, and
 * UsageError for a grace outside 0…30 days or a grace for a key with a use limit (`remaining`). A rotation made
 * whose events could not be kept throws LifecycleEventError with what this returns as its `result`.
 *
 * Exported from `token-guard`.
 * @example
 * const { key, sunsetAt } = await rotateApiKey(store, 'key_3f…', { grace: '24h', actor: 'alice' });
 */
export async function rotateApiKey(store: TokenStore, id: string, options: RotateApiKeyOptions = {}): Promise<RotatedApiKey> {
  const where = 'rotateApiKey';
  const inventory = inventoryOf(store, where);
  checkName(where, 'id', id);
  const nowMs = lifecycleOptions(where, options);
  checkReasonOption(where, options.reason);
  const toleranceMs = toleranceOf(where, options.clockTolerance);
  const graceMs = parseDuration(options.grace ?? 0);
  if (graceMs === undefined) throw new UsageError(`${where}: grace must be a duration ('24h', '30m', ms) from 0 to 30 days (got ${shownValue(options.grace)})`);
  if (graceMs > MAX_ROTATION_GRACE_MS) throw new UsageError(`${where}: grace must be at most 30 days: a longer overlap keeps a possibly leaked key alive too long`);

  const old = await changeable(inventory, id, nowMs, false);
  // Minted under the app's checksumSecret: a successor minted without it fails the app's checksum check, and the old
  // key's end (grace 0 by default) would leave its holder with no working key.
  if (old.keyedChecksum === true && options.checksumSecret === undefined) {
    throw new UsageError(`${where}: API key ${id} was minted with a keyed checksum (apiKeys.checksumSecret): pass the same checksumSecret`, {
      code: 'usage.invalid_argument',
      help: 'rotate with checksumSecret (the CLI: --checksum-secret-env VAR), or its successor would be refused as malformed',
    });
  }
  // Refused by requests though its record does not say so: a successor would be a working key for a revoked one.
  if ((await listedRevocation(store, old, nowMs, toleranceMs)) !== undefined) {
    throw new ApiKeyStateError('api_key.revoked', id, `API key ${id} is revoked (on the store's revocation list: its id, or its subject since it was made)`);
  }
  // The successor inherits the uses left; an old key still accepted beside it would spend its own on top, so a key
  // issued with N uses could serve up to 2N - 1 requests. Refused rather than split: no budget is ever exceeded.
  if (graceMs > 0 && old.remaining !== undefined) {
    throw new UsageError(`${where}: API key ${id} has a use limit (${old.remaining} left): it cannot keep working beside its successor`, {
      code: 'usage.invalid_argument',
      help: 'rotate it with grace 0: the successor takes over the uses left at once',
    });
  }
  const lifetime = options.expiresIn !== undefined ? options.expiresIn : old.expiresAt === null ? null : old.expiresAt - old.createdAt;
  const issued = issueApiKey({
    prefix: old.prefix,
    subject: old.subject,
    scopes: old.scopes,
    expiresIn: lifetime,
    now: new Date(nowMs),
    rotatedFrom: old.id,
    ...(options.checksumSecret !== undefined && { checksumSecret: options.checksumSecret }),
    ...(old.ip !== undefined && { ip: old.ip }),
    ...(old.hours !== undefined && { hours: old.hours }),
    ...(old.rateLimit !== undefined && { rateLimit: old.rateLimit }),
    ...(old.remaining !== undefined && { uses: old.remaining }),
    ...(old.name !== undefined && { name: old.name }),
    ...(old.metadata !== undefined && { metadata: old.metadata }),
  });
  // Never past the old key's own end: a rotation must not lengthen its life.
  const sunsetAt = Math.min(nowMs + graceMs, old.expiresAt ?? Number.POSITIVE_INFINITY);
  // The successor first: from the moment the old key is marked, its replacement already works.
  await store.putApiKey(issued.record);
  // Conditional: a rotation or revocation of this key that ran meanwhile (past `changeable` above, as this one did)
  // wins, and this one backs out, so a key never has two live successors, and a key revoked meanwhile none.
  const updated = await store.updateApiKey(
    old.hash,
    { rotatedTo: issued.record.id, rotatedAt: nowMs, revokedAt: sunsetAt, revocationReason: options.reason ?? 'rotated' },
    { unrotatedAndUnrevoked: true },
  );
  if (updated === undefined || updated === null) {
    // Never handed out: deleting it leaves nothing behind.
    await store.deleteApiKey(issued.record.hash);
    await changeable(inventory, id, nowMs, false);
    throw new ApiKeyStateError('api_key.rotated', id, `API key ${id} changed while it was rotated`);
  }
  // Requests on the old key between the read above and the mark may have spent uses the successor was given: it takes
  // over only what the marked record still holds. Nobody holds the successor's key yet, so nothing spends it meanwhile.
  const markedRecord = checked(updated);
  const left = markedRecord.remaining;
  if (issued.record.remaining !== undefined && left !== undefined && left < issued.record.remaining) {
    issued.record.remaining = Math.max(0, left);
    await store.updateApiKey(issued.record.hash, { remaining: issued.record.remaining });
  }
  const report = reporter(store, options.onEvent);
  const base: Pick<EventDraft, 'at' | 'subject' | 'actor'> = { at: nowMs, subject: old.subject, actor: options.actor };
  const rotated = { ...issued, previous: summarize(markedRecord, nowMs), sunsetAt: new Date(sunsetAt) };
  await reported(rotated, report({ ...base, type: 'key.issued', tokenId: issued.record.id }));
  await reported(rotated, report({ ...base, type: 'key.rotated', tokenId: old.id, successorId: issued.record.id, sunsetAt, reason: options.reason ?? 'rotated' }));
  return rotated;
}

/**
 * Revokes key `id` at once, keeping `reason` on its record (shown in decisions' `detail`) and putting its id on the
 * store's revocation list (so a rotation of the key running meanwhile cannot bring it back), and reports
 * `key.revoked`. A key in its rotation grace is cut off at once. Throws ApiKeyStateError for an unknown or already
 * revoked key.
 *
 * Exported from `token-guard`.
 * @example
 * await revokeApiKey(store, 'key_3f…', { reason: 'compromised', actor: 'alice' });
 */
export async function revokeApiKey(store: TokenStore, id: string, options: RevokeApiKeyOptions = {}): Promise<ApiKeySummary> {
  const where = 'revokeApiKey';
  const inventory = inventoryOf(store, where);
  checkName(where, 'id', id);
  const nowMs = lifecycleOptions(where, options);
  checkReasonOption(where, options.reason);
  const found = await inventory.getApiKeyById(id);
  if (found === undefined || found === null) throw new ApiKeyStateError('api_key.not_found', id, `no API key with id ${id}`);
  const record = checked(found);
  if (record.revokedAt !== undefined && record.revokedAt <= nowMs) throw new ApiKeyStateError('api_key.revoked', id, `API key ${id} is already revoked`);
  const reason = options.reason ?? 'unspecified';
  // Also on the revocation list the guard reads on every request: a rotation of this key running at the same time
  // writes its record last (revokedAt = the end of its grace), and that write must not bring the key back.
  await store.revoke(record.id, { now: nowMs, ...(record.expiresAt !== null && { expiresAt: record.expiresAt }), reason });
  const updated = await store.updateApiKey(record.hash, { revokedAt: nowMs, revocationReason: reason });
  if (updated === undefined || updated === null) throw new ApiKeyStateError('api_key.not_found', id, `API key ${id} was deleted while it was revoked`);
  await reporter(store, options.onEvent)({ type: 'key.revoked', at: nowMs, subject: record.subject, tokenId: id, actor: options.actor, reason });
  return summarize(checked(updated), nowMs);
}

/**
 * The lifecycle events a store kept, oldest first (the latest `limit`, default 100). Needs a store that keeps
 * events (`listLifecycleEvents`: MemoryStore and RedisStore do); otherwise throws UsageError `store.unsupported`.
 *
 * Exported from `token-guard`.
 * @example
 * const trail = await listLifecycleEvents(store, { subject: 'svc-billing', limit: 50 });
 */
export async function listLifecycleEvents(store: TokenStore, query: LifecycleQuery = {}): Promise<LifecycleEvent[]> {
  if (!store || typeof store !== 'object') throw new UsageError('listLifecycleEvents: expected a TokenStore');
  if (typeof store.listLifecycleEvents !== 'function') {
    throw new UsageError('listLifecycleEvents: this store keeps no lifecycle events', {
      code: 'store.unsupported',
      help: 'use MemoryStore or RedisStore, or implement the optional appendLifecycleEvent and listLifecycleEvents methods',
    });
  }
  return store.listLifecycleEvents(query);
}
