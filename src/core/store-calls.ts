// Calling the store on the hot path: a synchronous answer is used as is (MemoryStore costs no promise), an
// async one is bounded by storeTimeout, and every answer is checked for shape (a wrong shape is a failure).
import { performance } from 'node:perf_hooks';
import { StoreError } from '../leaf/errors.js';
import { droppedPromise } from '../leaf/callbacks.js';
import type { GuardTelemetry } from '../leaf/telemetry.js';
import type { RateLimitResult, RevocationState, TokenStore, TokenUsage } from '../leaf/store.js';
import type { CheckStore } from '../checks/check.js';

/** A store call failed (threw, rejected, timed out, or answered in the wrong shape). Ends in 503. */
export class StoreFailure {
  constructor(readonly error: unknown) {}
}

/** Whether a value is a thenable (any promise, not only a native one). */
export const isThenable = (v: unknown): v is PromiseLike<unknown> =>
  v !== null && (typeof v === 'object' || typeof v === 'function') && typeof (v as { then?: unknown }).then === 'function';

export const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
export const isStringList = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');
export const isPlainObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/** A store answer of the wrong shape is a store failure: read as data, it could mean "allow". */
export function storeShapeError(method: string): StoreFailure {
  return new StoreFailure(new StoreError(`${method} returned an answer of the wrong shape`));
}

/**
 * A getRevocation answer, checked. Only a plain object (not a Date, a Map or an array) whose known times are finite
 * numbers reads as data, and one that names neither time must say nothing at all: a store that answers
 * `{ revoked: true }` or `{ revoked_at: t }` means "revoked" in a spelling the guard does not know, never "not revoked".
 */
export function checkRevocationState(v: unknown): RevocationState | undefined {
  if (v === undefined || v === null) return undefined;
  if (isPlainObject(v) && Object.prototype.toString.call(v) === '[object Object]') {
    const at = v['revokedAt'];
    const before = v['subjectRevokedBefore'];
    if ((at === undefined || isFiniteNumber(at)) && (before === undefined || isFiniteNumber(before))) {
      if (at !== undefined || before !== undefined || saysNothing(v)) return v as RevocationState;
    }
  }
  throw storeShapeError('getRevocation');
}

/** Two revocation states of one token as one: revoked if either says so, the later subject cut-off. */
function mergeRevocations(a: RevocationState | undefined, b: RevocationState | undefined): RevocationState | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  const out: RevocationState = { ...a };
  if (out.revokedAt === undefined && b.revokedAt !== undefined) {
    out.revokedAt = b.revokedAt;
    if (b.reason !== undefined) out.reason = b.reason;
  }
  if (b.subjectRevokedBefore !== undefined && (out.subjectRevokedBefore === undefined || b.subjectRevokedBefore > out.subjectRevokedBefore)) {
    out.subjectRevokedBefore = b.subjectRevokedBefore;
    if (b.subjectReason !== undefined) out.subjectReason = b.subjectReason;
    else delete out.subjectReason;
  }
  return out;
}

/**
 * A verified token's revocation state: by its id and its subject, and for a JWT of a policy with several issuers also
 * by its issuer's own subject key (`Holder.subjectKey`), merged. Synchronous when the store is; the one read of a
 * token without a subject key is handed over unchecked, as the store answered it.
 */
export function readRevocation(invoke: Invoke, id: string, subject: string | undefined, subjectKey: string | undefined, nowMs: number): unknown {
  const read = invoke.getRevocation;
  const shared = read ? read(id, subject, nowMs) : invoke('getRevocation', id, subject, nowMs);
  if (subjectKey === undefined) return shared;
  let own: unknown;
  try {
    own = read ? read(id, subjectKey, nowMs) : invoke('getRevocation', id, subjectKey, nowMs);
  } catch (e) {
    // Never an unhandled rejection of the first read.
    if (isThenable(shared)) Promise.resolve(shared).catch(() => undefined);
    throw e;
  }
  if (!isThenable(shared) && !isThenable(own)) return mergeRevocations(checkRevocationState(shared), checkRevocationState(own));
  return Promise.all([shared, own]).then(([a, b]) => mergeRevocations(checkRevocationState(a), checkRevocationState(b)));
}

/** Whether an object has no own enumerable value other than undefined (`{}`, `{ revokedAt: undefined }`). */
function saysNothing(v: Record<string, unknown>): boolean {
  for (const key of Object.keys(v)) if (v[key] !== undefined) return false;
  return true;
}

/** One counter's state in a consume answer: what the RateLimit headers are written from. */
const isRateLimitState = (l: unknown): boolean =>
  isPlainObject(l) && typeof l['name'] === 'string' && isFiniteNumber(l['limit']) && isFiniteNumber(l['remaining']) && isFiniteNumber(l['resetMs']);

/** A consume answer, checked: its counters too (read as they came, they would put `undefined` or `NaN` in headers). */
export function checkRateLimitResult(v: unknown): RateLimitResult {
  if (isPlainObject(v) && typeof v['allowed'] === 'boolean' && Array.isArray(v['limits']) && (v['allowed'] || isFiniteNumber(v['retryAfterMs']))) {
    const limits = v['limits'] as unknown[];
    let fit = true;
    for (let i = 0; i < limits.length && fit; i++) fit = isRateLimitState(limits[i]);
    if (fit) return v as unknown as RateLimitResult;
  }
  throw storeShapeError('consume');
}

/** A getUsage answer, checked. */
export function checkUsage(v: unknown): TokenUsage | undefined {
  if (v === undefined || v === null) return undefined;
  if (isPlainObject(v) && isFiniteNumber(v['count']) && isFiniteNumber(v['lastUsedAt']) && isStringList(v['recentIps'])) return v as unknown as TokenUsage;
  throw storeShapeError('getUsage');
}

/** A promise bounded by `ms`: past it, a StoreError. */
export function timeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new StoreError(`store call timed out after ${ms} ms`)), ms);
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

/** The store methods the evaluation calls. */
export type HotMethod = 'getApiKey' | 'getRevocation' | 'getUsage' | 'consume' | 'peekRateLimit' | 'useApiKey' | 'claimOnce' | 'isClaimed' | 'updateApiKey';
/** The store methods the evaluation calls, optional ones included (called only when the store has them). */
type HotStore = Required<Pick<TokenStore, HotMethod>>;

/**
 * Calls one store method: the answer as is when synchronous, bounded by the timeout when not. `getRevocation`, when
 * present, is that method called with its own arguments (every request reads a revocation; see storeInvoker).
 */
export interface Invoke {
  <K extends HotMethod>(method: K, ...args: Parameters<HotStore[K]>): ReturnType<HotStore[K]>;
  getRevocation?: (tokenId: string, subject: string | undefined, nowMs: number) => ReturnType<HotStore['getRevocation']>;
}

/** An Invoke for a store. A throw, rejection or timeout becomes a StoreFailure. */
export function storeInvoker(store: TokenStore, timeoutMs: number): Invoke {
  // Any thenable, not only a native Promise: a Bluebird or other-realm promise must be awaited and bounded,
  // never read as the answer itself (a thenable object would look like "not revoked").
  const settled = <T>(value: T): T =>
    isThenable(value) ? (timeout(Promise.resolve(value), timeoutMs).catch((e: unknown) => Promise.reject(new StoreFailure(e))) as T) : value;
  const invoke: Invoke = function invoke<K extends HotMethod>(method: K, ...args: Parameters<HotStore[K]>): ReturnType<HotStore[K]> {
    let value: ReturnType<HotStore[K]>;
    try {
      value = (store[method] as (...a: unknown[]) => ReturnType<HotStore[K]>).apply(store, args);
    } catch (e) {
      throw new StoreFailure(e);
    }
    return settled(value);
  };
  // The revocation read of every request, with no rest array and no forwarded call: on Express, where the guard's
  // code runs cold, the varargs builtin alone cost about 40 first-level cache misses a request.
  invoke.getRevocation = (tokenId, subject, nowMs) => {
    let value: ReturnType<HotStore['getRevocation']>;
    try {
      value = store.getRevocation(tokenId, subject, nowMs);
    } catch (e) {
      throw new StoreFailure(e);
    }
    return settled(value);
  };
  return invoke;
}

/** An Invoke that also reports each call's duration and failure to the telemetry sink. Only built when one is given. */
export function measuredInvoker(invoke: Invoke, report: NonNullable<GuardTelemetry['storeCall']>): Invoke {
  const done = (method: string, start: number, failed: boolean): void => {
    try {
      droppedPromise(report(method, performance.now() - start, failed));
    } catch {
      // Telemetry must never change or break a decision.
    }
  };
  return function measured<K extends HotMethod>(method: K, ...args: Parameters<HotStore[K]>): ReturnType<HotStore[K]> {
    const start = performance.now();
    let value: ReturnType<HotStore[K]>;
    try {
      value = invoke(method, ...args);
    } catch (e) {
      done(method, start, true);
      throw e;
    }
    if (isThenable(value)) {
      return (value as Promise<unknown>).then(
        (v) => {
          done(method, start, false);
          return v;
        },
        (e: unknown) => {
          done(method, start, true);
          throw e;
        },
      ) as ReturnType<HotStore[K]>;
    }
    done(method, start, false);
    return value;
  };
}

/** Checks an answer, synchronous or not: a promise of the checked answer when the store answered with one. */
function checked<T>(answer: unknown, check: (v: unknown) => T): T | Promise<T> {
  return isThenable(answer) ? Promise.resolve(answer).then(check) : check(answer);
}

function checkUses(v: unknown): number {
  // The record says the key is limited: an "unlimited" or non-integer answer is the store's fault.
  if (!Number.isSafeInteger(v)) throw storeShapeError('useApiKey');
  return v as number;
}

function checkClaim(v: unknown): boolean {
  if (typeof v !== 'boolean') throw storeShapeError('claimOnce');
  return v;
}

function checkClaimed(v: unknown): boolean {
  if (typeof v !== 'boolean') throw storeShapeError('isClaimed');
  return v;
}

/**
 * An Invoke for a dry run's key watch: reads go to the store; its bookkeeping writes are answered as if another
 * instance had done them (a one-time claim already taken), so nothing is retired or reported.
 */
export function readsOnly(invoke: Invoke): Invoke {
  return function dry<K extends HotMethod>(method: K, ...args: Parameters<HotStore[K]>): ReturnType<HotStore[K]> {
    if (method === 'claimOnce') return false as ReturnType<HotStore[K]>;
    if (method === 'updateApiKey') throw new StoreFailure(new Error('a dry run does not call updateApiKey'));
    return invoke(method, ...args);
  };
}

/**
 * The store as a dry run's checks call it (`guard.explain(request, { spend: false })`): a key's use is answered from
 * its record and a claim from `isClaimed` (true, "would be claimed", when the store cannot tell), taking neither.
 * `consume` is not called: the rate-limit check reads `spends` and peeks (`peekRateLimit`), or says it did not check.
 */
export function dryCheckStore(s: CheckStore): CheckStore {
  const leftAfterUse = (record: Readonly<Record<string, unknown>> | undefined): number => {
    const remaining = record?.['remaining'];
    if (typeof record?.['rotatedTo'] === 'string' || typeof remaining !== 'number' || remaining <= 0) return -1;
    return remaining - 1;
  };
  return {
    ...s,
    spends: false,
    useApiKey: (hash) => {
      const record = s.getApiKey(hash);
      return isThenable(record) ? Promise.resolve(record).then(leftAfterUse) : leftAfterUse(record);
    },
    claimOnce: (key, options) => {
      if (s.isClaimed === undefined) return true;
      const claimed = s.isClaimed(key, options.group === undefined ? { now: options.now } : { now: options.now, group: options.group });
      return isThenable(claimed) ? Promise.resolve(claimed).then((c) => !c) : !claimed;
    },
  };
}

/** The store as the checks call it: every answer checked for shape, every failure a StoreFailure. */
export function checkStore(invoke: Invoke, store: TokenStore): CheckStore {
  return {
    spends: true,
    consume: (tokenId, limits, nowMs) => checked(invoke('consume', tokenId, limits, nowMs), checkRateLimitResult),
    // Optional, as isClaimed: a dry run without it shows rate limits as not checked.
    peekRateLimit:
      typeof store.peekRateLimit === 'function' ? (tokenId, limits, nowMs) => checked(invoke('peekRateLimit', tokenId, limits, nowMs), checkRateLimitResult) : undefined,
    useApiKey: (hash) => checked(invoke('useApiKey', hash), checkUses),
    getApiKey: (hash) => checked(invoke('getApiKey', hash), (v) => (isPlainObject(v) ? v : undefined)),
    claimOnce: (key, options) => checked(invoke('claimOnce', key, options), checkClaim),
    // Optional in the store contract: a store without it answers "not known", and the claim alone decides.
    isClaimed: typeof store.isClaimed === 'function' ? (key, options) => checked(invoke('isClaimed', key, options), checkClaimed) : undefined,
    getUsage: (tokenId) => checked(invoke('getUsage', tokenId), checkUsage),
    // Only a request an adapter made has somewhere to keep what it spent (engine.ts, requestStore).
    recall: undefined,
    remember: undefined,
  };
}
