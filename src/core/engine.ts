// What an evaluation runs against (the Engine, and for a request an adapter made a store of its own that keeps what
// the request spent), what it ends with (the Outcome), and the small steps around the phases that do not depend on
// where an evaluation stands: the CORS preflight test, decorators, usage records.
import type { ParsedIp } from '../leaf/ip.js';
import { userAgentOf } from '../leaf/http.js';
import type { ClaimOptions, ClaimQuery, RateLimitCheck, RateLimitResult, RateLimitState, TokenStore, UsageEvent } from '../leaf/store.js';
import type { Decision, GuardRequest, TokenInfo } from '../leaf/types.js';
import type { CheckContext, CheckStore } from '../checks/check.js';
import type { JwtVerifier, VerifiedJwt } from '../tokens/jwt.js';
import type { IntrospectedToken, Introspector } from '../tokens/introspection.js';
import type { CompiledPolicy } from './policy.js';
import type { CompiledRule } from './rule-match.js';
import type { CheckSlot } from './registry.js';
import type { Decider } from './decision.js';
import { ExpiredKeyRefusal, type Holder, type KeyAuthenticator } from './key-records.js';
import { isThenable, type Invoke } from './store-calls.js';
import { hashApiKey } from '../tokens/api-key.js';
import { EXHAUSTED } from '../checks/expiry.js';
import { keyUsesCheck } from '../checks/key-uses.js';

/** What one evaluation ended with, for the audit hook. */
export interface Outcome {
  decision: Decision;
  path: string;
  ip: ParsedIp | null | undefined;
  identity: TokenInfo | undefined;
  error?: unknown;
}

/** What the pipeline runs against: the compiled policy and the guard's parts. */
export interface Engine {
  p: CompiledPolicy;
  store: TokenStore;
  invoke: Invoke;
  /** The store as the checks call it (answers checked). */
  checkStore: CheckStore;
  jwt: JwtVerifier | undefined;
  /** Opaque tokens checked at the authorization server (RFC 7662), when the policy has `introspection`. */
  introspector: Introspector | undefined;
  keys: KeyAuthenticator | undefined;
  decider: Decider;
  /** The scopes each verified TokenInfo was granted, for requireScopes. */
  scopeSets: WeakMap<TokenInfo, ReadonlySet<string>>;
  /** The Holder of a verified JWT or an introspected token (one per cached verification). */
  jwtHolder(v: VerifiedJwt | IntrospectedToken): Holder;
  /** The slots with a `prefetch`, `commit` or `decorate` hook and a policy-level value, found once. */
  prefetchers: readonly CheckSlot[];
  committers: readonly CheckSlot[];
  decorators: readonly CheckSlot[];
  /** Whether the pipeline's memoised path may run at all: no prefetch or decorate hook to call (see pipeline.ts). */
  memoPath: boolean;
}

const hasValue = (v: string | string[] | undefined): boolean => typeof v === 'string' && v !== '';

/** A CORS preflight (Fetch standard §4.8): what a browser sends before a cross-origin call, never with credentials. */
export function isCorsPreflight(headers: GuardRequest['headers']): boolean {
  return headers['authorization'] === undefined && hasValue(headers['origin']) && hasValue(headers['access-control-request-method']);
}

/** The mode a request is under: its rule's `mode: 'enforce'` wins over a report-only policy; otherwise the policy's. */
export const routeMode = (p: CompiledPolicy, rule: CompiledRule | undefined): Decision['mode'] => (rule?.mode === 'enforce' ? 'enforce' : p.mode);

/** Lets the checks with a `decorate` hook adjust a finished Decision (none before the request was read). */
export function decorate(e: Engine, ctx: CheckContext | undefined, d: Decision): Decision {
  if (ctx) for (const slot of e.decorators) slot.check.decorate?.(ctx, slot.policy, d);
  return d;
}

/** Records one use of a token. Bookkeeping: losing one record must not fail a request that was allowed. */
function recordUsage(store: TokenStore, tokenId: string, nowMs: number, ip: ParsedIp | null | undefined, headers: GuardRequest['headers']): void {
  try {
    // Every field in the literal: one added later gives each event a separate property store (an allocation per request).
    const use: UsageEvent = { at: nowMs, ip: ip ? ip.text : undefined, userAgent: userAgentOf(headers) };
    const r = store.recordUsage(tokenId, use);
    if (isThenable(r)) r.then(undefined, () => undefined);
  } catch {
    // see above
  }
}

/**
 * Records an allowed request's use of a token (`trackUsage`) once per guard and token: a guard mounted twice on the
 * request's way decides it twice, and the second decision of the same token is not another use. Another guard, or
 * another token (a middleware between the mounts swapped the credential), is recorded as its own use. A request an
 * app built has no ledger to keep the mark in, so each of its evaluations is a use.
 */
export function recordRequestUsage(e: Engine, request: GuardRequest, holder: Holder, nowMs: number, ip: ParsedIp | null | undefined, headers: GuardRequest['headers']): void {
  if ((request as Partial<SpendingRequest>)[SPENT] !== undefined && !markUsage(request as SpendingRequest, e.scopeSets, holder.info)) return;
  recordUsage(e.store, holder.info.id, nowMs, ip, headers);
}

/**
 * The key of a GuardRequest's spend ledger, set only by this package's adapters (no entry point exports it) on the
 * requests they make: the ledger their state of the same native request holds (`null`: nothing spent yet).
 */
export const SPENT = Symbol('token-guard.spent');

/**
 * What one request spent through the guards it met, as flat records (guard, kind, owner, key, limits, answer): each
 * guard reads only its own. Until the request spends anything, a guard that recorded the usage of its token leaves a
 * bare mark instead: the token's TokenInfo, which names the token and (see markUsage) the guard with no allocation
 * (the common request, through one guard, allocates no ledger). The adapter keeps it in its state of the request, so
 * it lives and dies with it; nothing but this file reads it.
 */
export type SpendLedger = unknown[] | TokenInfo;

/** A GuardRequest made by one of this package's adapters. */
export interface SpendingRequest extends GuardRequest {
  [SPENT]: SpendLedger | null;
}

// The kinds of spend a ledger records, and a record's width.
const CONSUME = 0;
const USE = 1;
const CLAIM = 2;
const OWN = 3;
/** A record that only says a guard recorded the usage of a token: (its TokenInfo, USAGE, null, ''). */
const USAGE = 4;
const WIDTH = 6;
/** A spend not answered yet, or never (its call failed): a failed call spent nothing. */
const PENDING = Symbol('pending');

/** The record a bare usage mark becomes once the ledger holds records. */
const markRecord = (mark: TokenInfo): unknown[] => [mark, USAGE, null, '', undefined, true];

/**
 * Whether `mark` says this guard recorded the use of the token `info` names. The same object when the guard's cache
 * served both evaluations; else the same token (kind and id) verified by this guard: `granted` (the guard's
 * `scopeSets`) holds every TokenInfo the guard let past revocation, and no other guard's. A cache that verifies anew
 * at each mount (introspection or JWKS with `cacheMaxAge: 0`, an eviction in between) is thus still one use.
 */
function sameUse(mark: unknown, info: TokenInfo, granted: WeakMap<TokenInfo, unknown>): boolean {
  if (mark === info) return true;
  const m = mark as TokenInfo;
  return m.id === info.id && m.kind === info.kind && granted.has(m);
}

/** Marks the use of the token `info` names recorded by the guard whose `granted` map it is: false when it was already. */
function markUsage(request: SpendingRequest, granted: WeakMap<TokenInfo, unknown>, info: TokenInfo): boolean {
  const ledger = request[SPENT];
  if (ledger === null) {
    request[SPENT] = info;
    return true;
  }
  if (!Array.isArray(ledger)) {
    if (sameUse(ledger, info, granted)) return false;
    // Another guard's or token's mark: both kept, as records.
    request[SPENT] = [...markRecord(ledger), ...markRecord(info)];
    return true;
  }
  for (let i = 0; i < ledger.length; i += WIDTH) {
    if (ledger[i + 1] === USAGE && sameUse(ledger[i], info, granted)) return false;
  }
  ledger.push(info, USAGE, null, '', undefined, true);
  return true;
}

/** Two compiled limits that count one store counter alike. */
const sameCounter = (a: RateLimitCheck, b: RateLimitCheck): boolean => a === b || (a.name === b.name && a.limit === b.limit && a.windowMs === b.windowMs);

/**
 * The store as the checks of one adapter-made request call it. One guard mounted twice on a request's way (app.use
 * and router.use) evaluates it twice, every check included (a middleware between the two may have changed its method
 * or path); what the first evaluation spent, the second takes the first's answer for instead of spending it again: a
 * rate-limit counter of the same owner, a key's use, a DPoP proof's claim (which it would otherwise find taken, and
 * refuse as a replay), what a check keeps with `remember`. What the first did not spend (another rule's counter) is
 * spent as usual, and so is everything another guard on the way spent: `base` is this guard's store, and its mark.
 */
class RequestStore implements CheckStore {
  constructor(
    private readonly base: CheckStore,
    private readonly request: SpendingRequest,
    private ledger: SpendLedger | null,
  ) {}

  // On the prototype: one field fewer to write per evaluation.
  get spends(): true {
    return true;
  }

  /** Whether the request spent anything before this point (through any guard; a usage mark spends nothing). */
  get spentBefore(): boolean {
    return Array.isArray(this.ledger);
  }

  get peekRateLimit(): CheckStore['peekRateLimit'] {
    return this.base.peekRateLimit;
  }

  get isClaimed(): CheckStore['isClaimed'] {
    return this.base.isClaimed === undefined ? undefined : this.claimedByOthers;
  }

  getApiKey(hash: string): ReturnType<CheckStore['getApiKey']> {
    return this.base.getApiKey(hash);
  }

  getUsage(tokenId: string): ReturnType<CheckStore['getUsage']> {
    return this.base.getUsage(tokenId);
  }

  consume(tokenId: string, limits: readonly RateLimitCheck[], nowMs: number): RateLimitResult | PromiseLike<RateLimitResult> {
    let reused: (RateLimitState | undefined)[] | undefined;
    let n = 0;
    for (let i = 0; this.spentBefore && i < limits.length; i++) {
      const state = this.charged(tokenId, limits[i] as RateLimitCheck);
      if (state === undefined) continue;
      reused ??= limits.map(() => undefined);
      reused[i] = state;
      n++;
    }
    if (reused === undefined) return this.keep(CONSUME, null, tokenId, limits, this.base.consume(tokenId, limits, nowMs));
    const states = reused;
    if (n === limits.length) return { allowed: true, retryAfterMs: 0, limits: states as RateLimitState[] };
    const rest = limits.filter((_, i) => states[i] === undefined);
    const merged = (r: RateLimitResult): RateLimitResult => {
      // In the order asked for, as the headers read them: the counters charged before, and the store's answer for the rest.
      const out: RateLimitState[] = [];
      let j = 0;
      for (const s of states) {
        const state = s ?? r.limits[j++];
        if (state !== undefined) out.push(state);
      }
      return { allowed: r.allowed, retryAfterMs: r.retryAfterMs, limits: out };
    };
    const answer = this.keep(CONSUME, null, tokenId, rest, this.base.consume(tokenId, rest, nowMs));
    return isThenable(answer) ? Promise.resolve(answer).then(merged) : merged(answer);
  }

  useApiKey(hash: string): number | PromiseLike<number> {
    const i = this.find(USE, null, hash);
    // A negative answer spent nothing (no use was left).
    if (i >= 0 && (this.at(i) as number) >= 0) return this.at(i) as number;
    return this.keep(USE, null, hash, undefined, this.base.useApiKey(hash));
  }

  claimOnce(key: string, options: ClaimOptions): boolean | PromiseLike<boolean> {
    if (this.claimedHere(key)) return true;
    return this.keep(CLAIM, null, key, undefined, this.base.claimOnce(key, options));
  }

  recall(owner: object, key: string): unknown {
    const i = this.find(OWN, owner, key);
    return i < 0 ? undefined : this.at(i);
  }

  remember(owner: object, key: string, answer: unknown): void {
    this.record(OWN, owner, key, undefined, answer);
  }

  /** `isClaimed`, where this request's own claim is nobody else's. */
  private claimedByOthers(key: string, query: ClaimQuery): boolean | PromiseLike<boolean> {
    if (this.claimedHere(key)) return false;
    return (this.base.isClaimed as NonNullable<CheckStore['isClaimed']>)(key, query);
  }

  private claimedHere(key: string): boolean {
    const i = this.find(CLAIM, null, key);
    return i >= 0 && this.at(i) === true;
  }

  /** A counter's state as an allowed spend of this request charged it (a refused one charged nothing). */
  private charged(owner: string, limit: RateLimitCheck): RateLimitState | undefined {
    const ledger = this.ledger as unknown[];
    for (let i = this.find(CONSUME, null, owner); i >= 0; i = this.find(CONSUME, null, owner, i + WIDTH)) {
      const answer = this.at(i) as RateLimitResult;
      const limits = ledger[i + 4] as readonly RateLimitCheck[];
      for (let k = 0; answer.allowed && k < limits.length; k++) {
        const state = answer.limits[k];
        if (sameCounter(limits[k] as RateLimitCheck, limit) && state?.name === limit.name) return state;
      }
    }
    return undefined;
  }

  /** This guard's first answered record of `kind` by `owner` (null: the store) under `key`, from `from` on; or -1. */
  private find(kind: number, owner: object | null, key: string, from = 0): number {
    const ledger = this.ledger;
    if (!Array.isArray(ledger)) return -1;
    for (let i = from; i < ledger.length; i += WIDTH) {
      if (ledger[i] === this.base && ledger[i + 1] === kind && ledger[i + 2] === owner && ledger[i + 3] === key && ledger[i + 5] !== PENDING) {
        return i;
      }
    }
    return -1;
  }

  private at(i: number): unknown {
    return (this.ledger as unknown[])[i + 5];
  }

  /** Records a spend and hands its answer on; a promise's once it has come (the evaluation waits for it anyway). */
  private keep<T>(kind: number, owner: object | null, key: string, limits: readonly RateLimitCheck[] | undefined, answer: T | PromiseLike<T>): T | PromiseLike<T> {
    if (!isThenable(answer)) {
      this.record(kind, owner, key, limits, answer);
      return answer;
    }
    const at = this.record(kind, owner, key, limits, PENDING);
    const ledger = this.ledger as unknown[];
    return Promise.resolve(answer).then((v) => {
      ledger[at] = v;
      return v;
    });
  }

  /** Appends a record (where its answer sits); the request's first opens its ledger, after a usage mark it held. */
  private record(kind: number, owner: object | null, key: string, limits: readonly RateLimitCheck[] | undefined, answer: unknown): number {
    const ledger = this.ledger;
    if (Array.isArray(ledger)) return ledger.push(this.base, kind, owner, key, limits, answer) - 1;
    // Made at its size (most requests spend once), where the adapter finds it after the decision for the next evaluation.
    const opened = ledger === null ? [this.base, kind, owner, key, limits, answer] : [...markRecord(ledger), this.base, kind, owner, key, limits, answer];
    this.ledger = this.request[SPENT] = opened;
    return opened.length - 1;
  }
}

/**
 * The store one evaluation's checks call: the guard's own, or for a request one of this package's adapters made, one
 * that remembers what the request spent (RequestStore). Never for a request an app built: nothing it can set may tie
 * two requests' spends together. A dry run spends nothing, so has nothing to remember.
 */
export function requestStore(base: CheckStore, request: GuardRequest): CheckStore {
  const ledger = (request as Partial<SpendingRequest>)[SPENT];
  return ledger === undefined || !base.spends ? base : new RequestStore(base, request as SpendingRequest, ledger);
}

/**
 * An API key's holder, for one evaluation. A key whose last use this same request spent (the guard mounted twice on
 * its way) reads as used up (EXHAUSTED) to the request's later evaluations, though nothing else changed:
 * authentication checks the record's revocation and expiry before its uses. That refusal is the request's own doing,
 * so the evaluation goes on with the holder its earlier one authenticated, through every check after authentication
 * again.
 */
export function authenticateKey(keys: KeyAuthenticator, store: CheckStore, token: string, nowMs: number): Holder | Promise<Holder> {
  // Before any spend (a single mount, a first evaluation) there is no earlier use to find.
  if (!(store instanceof RequestStore) || !store.spentBefore) return keys.authenticate(token, nowMs);
  const own = (err: unknown): Holder => {
    const holder = err instanceof ExpiredKeyRefusal && err.expiry === EXHAUSTED ? store.recall(keyUsesCheck, hashApiKey(token)) : undefined;
    if (holder === undefined) throw err;
    return holder as Holder;
  };
  try {
    const h = keys.authenticate(token, nowMs);
    return isThenable(h) ? Promise.resolve(h).then(undefined, own) : h;
  } catch (err) {
    return own(err);
  }
}
