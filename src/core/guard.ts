// createGuard: compiles a policy once and evaluates requests against it. Framework-neutral, no I/O of
// its own beyond the store it is given.
import { performance } from 'node:perf_hooks';
import { StoreError, TokenGuardError } from '../leaf/errors.js';
import { normalizePath } from '../leaf/path.js';
import type { ParsedIp } from '../leaf/ip.js';
import { IpConstraint } from '../checks/ip.js';
import { REASONS } from '../leaf/reasons.js';
import { passes, passHeaders } from '../leaf/http.js';
import { compilePolicy, challenge, explainUnmatched, matchRule, type CompiledPolicy, type CompiledRule, type TokenGuardPolicy } from './policy.js';
import type { AuthResult, Decision, DecisionEvent, GuardRequest, ReasonCode, TokenInfo } from '../leaf/types.js';
import { parseDuration } from '../leaf/duration.js';
import { HoursConstraint } from '../checks/hours.js';
import { hasScopes, scopeChallengeValue, toScopeRequirement, type ScopeRequirement, type ScopesPolicy } from '../checks/scopes.js';
import { satisfiesStepUp, type AuthenticationFacts } from '../checks/step-up.js';
import { apiKeyExpiry } from '../checks/expiry.js';
import { isRevoked } from '../checks/revocation.js';
import { popFailure, type Confirmation } from '../checks/pop.js';
import { verifyDpopProof } from '../checks/dpop.js';
import { compileRateLimit, rateLimitHeaders } from '../checks/rate-limit.js';
import { extractToken } from '../tokens/extract.js';
import { JwtVerifier, type JwtFailure, type VerifiedJwt } from '../tokens/jwt.js';
import { checkApiKey, hashApiKey, hasApiKeyPrefix, type ApiKeyFormat } from '../tokens/api-key.js';
import type { ApiKeyRecord, RateLimitCheck, RateLimitResult, RevocationState, TokenStore, TokenUsage, UsageEvent } from '../leaf/store.js';
import { LRUCache } from 'lru-cache';
import { MemoryStore } from '../stores/memory.js';
import { isProduction, warnOnce } from '../leaf/warnings.js';
import { RiskSignalFailure, type RiskScore } from '../checks/risk.js';

/** A compiled policy that evaluates requests. Create with `createGuard(policy)`. */
export interface Guard {
  /** Decides one request. Never throws for a bad request; a store failure gives 503 `store.unavailable`. */
  evaluate(request: GuardRequest): Promise<Decision>;
  /** Like `evaluate`, but a Decision reached without waiting on a store comes back as is, not in a Promise. */
  decide(request: GuardRequest): Decision | Promise<Decision>;
  /**
   * Checks a per-route scope requirement (what adapters' `requireScopes` calls) against the result the
   * guard already put on the request. Reports the decision through `onDecision`.
   */
  authorize(auth: AuthResult | undefined, scopes: ScopesPolicy, request: GuardRequest): Decision;
  /**
   * Revokes a token on every instance sharing the store: pass the verified token (`req.auth.token`),
   * whose own expiry then bounds how long the revocation is kept, or a token id (JWT `jti` or derived
   * id, API key record id) with `expiresAt` (without it the revocation is kept until deleted).
   */
  revoke(token: string | TokenInfo, options?: { expiresAt?: Date | number; now?: Date }): Promise<void>;
  /** Revokes every token of a subject issued before `before` (default: now). */
  revokeSubject(subject: string, options?: { before?: Date | number; expiresAt?: Date | number; now?: Date }): Promise<void>;
  /** The store this guard reads and writes. */
  readonly store: TokenStore;
  /** Forgets cached JWT verifications (e.g. after rotating signing keys). */
  clearTokenCache(): void;
}

/** Everything the checks need about a verified token, whatever its kind. */
interface Holder {
  info: TokenInfo;
  scopeSet: ReadonlySet<string>;
  issuedAtMs: number | undefined;
  facts: AuthenticationFacts;
  cnf: Confirmation | undefined;
  record: ApiKeyRecord | undefined;
  ip: IpConstraint | undefined;
  hours: HoursConstraint | undefined;
  rateLimit: RateLimitCheck | undefined;
}

/** Per-record compiled constraints; records from a store that hands out the same object are compiled once. */
interface CompiledRecord {
  info: TokenInfo;
  scopeSet: ReadonlySet<string>;
  ip: IpConstraint | undefined;
  hours: HoursConstraint | undefined;
  rateLimit: RateLimitCheck | undefined;
}

const EMPTY_REASONS: ReasonCode[] = Object.freeze([]) as unknown as ReasonCode[];

// Never handed to custom risk signals (they may be vendor code that ships its context elsewhere).
const SECRET_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'dpop']);

/** The request headers a custom risk signal may see: credentials removed, frozen. */
function signalHeaders(headers: GuardRequest['headers']): GuardRequest['headers'] {
  const out: GuardRequest['headers'] = {};
  for (const name of Object.keys(headers)) if (!SECRET_HEADERS.has(name)) out[name] = headers[name];
  return Object.freeze(out);
}

/** The User-Agent, bounded: it is stored per token, and a client chooses its length. */
function userAgentOf(headers: GuardRequest['headers']): string | undefined {
  const ua = headers['user-agent'];
  const value = Array.isArray(ua) ? ua[0] : ua;
  return typeof value === 'string' ? value.slice(0, 256) : undefined;
}
const NO_FACTS: AuthenticationFacts = {};

const hasValue = (v: string | string[] | undefined): boolean => typeof v === 'string' && v !== '';
/** A CORS preflight (Fetch standard §4.8): what a browser sends before a cross-origin call, never with credentials. */
function isCorsPreflight(headers: GuardRequest['headers']): boolean {
  return headers['authorization'] === undefined && hasValue(headers['origin']) && hasValue(headers['access-control-request-method']);
}

const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isStringList = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');
const isPlainObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/**
 * Whether a record read from the store has the shape the checks rely on. Stores may hand back anything
 * (a JSON store turns NaN into null; another app may have written the key), and every field that can
 * restrict a key must be readable, or the restriction would silently vanish (fail open).
 */
function isRecord(r: unknown): r is ApiKeyRecord {
  if (!isPlainObject(r)) return false;
  const ip = r['ip'];
  return (
    typeof r['id'] === 'string' &&
    r['id'] !== '' &&
    typeof r['hash'] === 'string' &&
    typeof r['subject'] === 'string' &&
    isStringList(r['scopes']) &&
    isFiniteNumber(r['createdAt']) &&
    (r['expiresAt'] === null || isFiniteNumber(r['expiresAt'])) &&
    (r['remaining'] === undefined || Number.isSafeInteger(r['remaining'])) &&
    (r['revokedAt'] === undefined || isFiniteNumber(r['revokedAt'])) &&
    (ip === undefined || (isPlainObject(ip) && Object.entries(ip).every(([k, list]) => (k === 'allow' || k === 'deny') && isStringList(list)))) &&
    (r['hours'] === undefined || isPlainObject(r['hours'])) &&
    (r['rateLimit'] === undefined || isPlainObject(r['rateLimit'])) &&
    (r['metadata'] === undefined || isPlainObject(r['metadata']))
  );
}

const isThenable = (v: unknown): v is PromiseLike<unknown> =>
  v !== null && (typeof v === 'object' || typeof v === 'function') && typeof (v as { then?: unknown }).then === 'function';

/** A store answer of the wrong shape is a store failure: read as data, it could mean "allow". */
function storeShapeError(method: string): StoreFailure {
  return new StoreFailure(new StoreError(`${method} returned an answer of the wrong shape`));
}

function checkRevocationState(v: unknown): RevocationState | undefined {
  if (v === undefined || v === null) return undefined;
  if (
    isPlainObject(v) &&
    (v['revokedAt'] === undefined || isFiniteNumber(v['revokedAt'])) &&
    (v['subjectRevokedBefore'] === undefined || isFiniteNumber(v['subjectRevokedBefore']))
  ) {
    return v as RevocationState;
  }
  throw storeShapeError('getRevocation');
}

function checkRateLimitResult(v: unknown): RateLimitResult {
  if (isPlainObject(v) && typeof v['allowed'] === 'boolean' && Array.isArray(v['limits']) && (v['allowed'] || isFiniteNumber(v['retryAfterMs']))) {
    return v as unknown as RateLimitResult;
  }
  throw storeShapeError('consume');
}

function checkUsage(v: unknown): TokenUsage | undefined {
  if (v === undefined || v === null) return undefined;
  if (isPlainObject(v) && isFiniteNumber(v['count']) && isFiniteNumber(v['lastUsedAt']) && isStringList(v['recentIps'])) return v as unknown as TokenUsage;
  throw storeShapeError('getUsage');
}

function timeout<T>(promise: Promise<T>, ms: number): Promise<T> {
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

class StoreFailure {
  constructor(readonly error: unknown) {}
}

/** Thrown by internal code paths to end evaluation with one reason. */
class Refusal {
  constructor(readonly reason: ReasonCode, readonly detail?: string) {}
}

function toMs(value: Date | number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const ms = typeof value === 'number' ? value : value.getTime();
  if (!Number.isFinite(ms)) throw new TypeError('expected a valid Date or epoch milliseconds');
  return ms;
}

/** The store of a policy that names none: one MemoryStore per guard, with a warning where that is likely a mistake. */
function defaultStore(): TokenStore {
  if (isProduction()) {
    warnOnce(
      'TOKEN_GUARD_MEMORY_STORE',
      'token-guard: no store given, using an in-memory store under NODE_ENV=production: revocations, rate limits and key uses are then per process. Pass `store` (e.g. RedisStore from token-guard/redis) to share them across instances, or `store: new MemoryStore()` to keep them per process on purpose.',
    );
  }
  return new MemoryStore();
}

/**
 * Validates and compiles a policy, and returns a guard that evaluates requests against it.
 * Throws PolicyError (naming every bad path) for an invalid policy.
 *
 * Exported from `token-guard`.
 * @example
 * const guard = createGuard({ jwt: { issuer, audience, algorithms: ['RS256'], jwksUri }, rules: [{ path: '/orders/**', scopes: ['orders:read'] }] });
 * const decision = await guard.evaluate({ method: 'GET', path: '/orders/1', headers, remoteAddress: '203.0.113.9' });
 */
export function createGuard(policy: TokenGuardPolicy): Guard {
  const p: CompiledPolicy = compilePolicy(policy);
  const store = p.store ?? defaultStore();
  const jwt = p.jwt ? new JwtVerifier(p.jwt) : undefined;
  const records = new WeakMap<ApiKeyRecord, CompiledRecord>();
  // The scopes each verified TokenInfo was granted, for requireScopes: a handler editing
  // req.auth.token.scopes, or a TokenInfo this guard never made, grants nothing.
  const scopeSets = new WeakMap<TokenInfo, ReadonlySet<string>>();

  // Challenges are fixed per reason (and per rule for scope and step-up): built once here.
  const challenges = new Map<ReasonCode, string>();
  for (const [reason, info] of Object.entries(REASONS) as [ReasonCode, (typeof REASONS)[ReasonCode]][]) {
    if (!info.challenge) continue;
    challenges.set(reason, challenge(p.realm, info.error ? `error="${info.error}", error_description="${info.title}"` : ''));
  }
  const dpopState = { enabled: p.dpop !== undefined, required: p.dpop?.required ?? false };
  const dpopForKeys = { enabled: p.dpop !== undefined, required: false };
  // How long a proof's jti is remembered: as long as the proof could still be accepted. jose reads iat
  // in whole seconds, hence the extra second (a proof iat-dated tolerance ahead stays acceptable until then).
  const dpopReplayMs = p.dpop ? (p.dpop.maxAgeS + 2 * p.clockToleranceS + 1) * 1000 : 0;
  // The store answers "not claimed" alike for a replay and for a key at its cap of live proofs.
  const claimRefused = `DPoP proof replayed (or its key holds dpop.maxClaimsPerKey = ${p.dpop?.maxClaimsPerKey ?? 0} live proofs)`;
  /**
   * RFC 9449 §7.1: a request made with the DPoP scheme is answered in that scheme, and a request without
   * a token learns that DPoP is accepted.
   */
  function dpopChallenge(d: Decision, scheme: 'bearer' | 'dpop' | undefined): void {
    const dpop = p.dpop as NonNullable<typeof p.dpop>;
    const current = d.headers['WWW-Authenticate'];
    if (current === undefined) return;
    if (d.reason === 'token.missing') d.headers['WWW-Authenticate'] = `${current}, ${dpop.challenge}`;
    else if (scheme === 'dpop') {
      const params = current.replace(/^Bearer ?/, '').replace('error="invalid_token"', d.reason === 'pop.invalid' ? 'error="invalid_dpop_proof"' : 'error="invalid_token"');
      d.headers['WWW-Authenticate'] = `DPoP ${params ? `${params}, ` : ''}${dpop.challenge.slice('DPoP '.length)}`;
    }
  }
  const stepUpChallenge = (extra: string) =>
    challenge(p.realm, `error="insufficient_user_authentication", error_description="${REASONS['step_up.required'].title}"${extra ? `, ${extra}` : ''}`);
  const riskChallenge = p.risk ? stepUpChallenge(p.risk.stepUp.challenge) : undefined;
  const stepUpChallenges = new Map<CompiledRule, string>();
  for (const r of p.rules) {
    if (r.stepUp) stepUpChallenges.set(r, stepUpChallenge(r.stepUp.challenge));
  }

  /** The mode a request is under: its rule's `mode: 'enforce'` wins over a report-only policy; otherwise the policy's. */
  const routeMode = (rule: CompiledRule | undefined): Decision['mode'] => (rule?.mode === 'enforce' ? 'enforce' : p.mode);

  type HotMethod = 'getApiKey' | 'getRevocation' | 'getUsage' | 'consume' | 'useApiKey' | 'claimOnce';
  /**
   * Calls a store method. A synchronous answer comes back as is (MemoryStore costs no promise); an async
   * one is bounded by storeTimeout. A throw, rejection or timeout becomes a StoreFailure.
   */
  function invoke<K extends HotMethod>(method: K, ...args: Parameters<TokenStore[K]>): ReturnType<TokenStore[K]> {
    let value: unknown;
    try {
      value = (store[method] as (...a: unknown[]) => unknown).apply(store, args);
    } catch (e) {
      throw new StoreFailure(e);
    }
    // Any thenable, not only a native Promise: a Bluebird or other-realm promise must be awaited and bounded,
    // never read as the answer itself (a thenable object would look like "not revoked").
    if (isThenable(value)) {
      return timeout(Promise.resolve(value), p.storeTimeoutMs).catch((e: unknown) => Promise.reject(new StoreFailure(e))) as ReturnType<TokenStore[K]>;
    }
    return value as ReturnType<TokenStore[K]>;
  }


  // A store that hands out a new object per read (RedisStore, or any key with uses) would otherwise
  // rebuild a 10 KB hours bitmap and CIDR masks on every request; constraints are cached by content.
  const ipConstraints = new LRUCache<string, IpConstraint>({ max: 1000 });
  const hoursConstraints = new LRUCache<string, HoursConstraint>({ max: 1000 });
  function cachedConstraint<R, C extends object>(cache: LRUCache<string, C>, rule: R, make: (r: R) => C): C {
    const key = JSON.stringify(rule);
    let c = cache.get(key);
    if (!c) {
      c = make(rule);
      cache.set(key, c);
    }
    return c;
  }

  function compileRecord(record: ApiKeyRecord): CompiledRecord {
    const cached = records.get(record);
    if (cached) return cached;
    const info: TokenInfo = { id: record.id, kind: 'api_key', subject: record.subject, scopes: Object.freeze([...record.scopes]) as string[], issuedAt: new Date(record.createdAt) };
    if (record.expiresAt !== null) info.expiresAt = new Date(record.expiresAt);
    if (record.metadata) info.metadata = Object.freeze({ ...record.metadata });
    const window = record.rateLimit ? parseDuration(record.rateLimit.window) : undefined;
    const compiled: CompiledRecord = {
      info: Object.freeze(info),
      scopeSet: new Set(record.scopes),
      ip: record.ip ? cachedConstraint(ipConstraints, record.ip, (r) => new IpConstraint(r)) : undefined,
      hours: record.hours ? cachedConstraint(hoursConstraints, record.hours, (r) => new HoursConstraint(r)) : undefined,
      rateLimit:
        record.rateLimit && window && Number.isInteger(record.rateLimit.limit) && record.rateLimit.limit > 0
          ? compileRateLimit('key', record.rateLimit.limit, window)
          : undefined,
    };
    if (record.rateLimit && !compiled.rateLimit) throw new TypeError('invalid rateLimit in key record');
    if (Object.isFrozen(record)) records.set(record, compiled);
    return compiled;
  }

  async function verifyApiKey(token: string, nowMs: number): Promise<Holder> {
    // Format and checksums are checked before the store is asked. The CRC makes a mistyped key cost no round
    // trip; only the keyed checksum (apiKeys.checksumSecret) does the same for a key someone made up.
    const checked = checkApiKey(token, p.apiKeys as ApiKeyFormat);
    if (checked === 'malformed') throw new Refusal('token.malformed', 'API key checksum or format invalid');
    if (checked === 'forged') throw new Refusal('token.invalid', 'API key not minted with this checksumSecret');
    const hash = hashApiKey(token);
    let record: unknown = invoke('getApiKey', hash);
    if (isThenable(record)) record = await record;
    if (record === undefined || record === null) throw new Refusal('token.invalid', 'unknown API key');
    if (!isRecord(record) || record.hash !== hash) throw new Refusal('token.invalid', 'API key record is malformed');
    let compiled: CompiledRecord;
    try {
      compiled = compileRecord(record);
    } catch {
      throw new Refusal('token.invalid', 'API key record has invalid constraints');
    }
    if (record.revokedAt !== undefined && record.revokedAt <= nowMs) throw new Refusal('token.revoked', 'API key revoked');
    const expired = apiKeyExpiry(record, nowMs);
    if (expired) throw new Refusal('token.expired', expired);
    return {
      info: compiled.info,
      scopeSet: compiled.scopeSet,
      issuedAtMs: record.createdAt,
      facts: NO_FACTS,
      cnf: undefined,
      record,
      ip: compiled.ip,
      hours: compiled.hours,
      rateLimit: compiled.rateLimit,
    };
  }

  // One Holder per cached verification: a repeated token allocates nothing here.
  const jwtHolders = new WeakMap<VerifiedJwt, Holder>();
  function jwtHolder(v: VerifiedJwt): Holder {
    let h = jwtHolders.get(v);
    if (!h) {
      h = {
        info: v.info,
        scopeSet: v.scopeSet,
        issuedAtMs: v.iat === undefined ? undefined : v.iat * 1000,
        facts: v,
        cnf: v.cnf,
        record: undefined,
        ip: undefined,
        hours: undefined,
        rateLimit: undefined,
      };
      jwtHolders.set(v, h);
    }
    return h;
  }

  function jwtResult(v: VerifiedJwt | JwtFailure): Holder {
    if ('reason' in v) {
      if (v.reason === 'store.unavailable') throw new StoreFailure(new StoreError(v.detail));
      throw new Refusal(v.reason, v.detail);
    }
    return jwtHolder(v);
  }

  function emit(
    decision: Decision,
    req: GuardRequest,
    path: string,
    ip: ParsedIp | null | undefined,
    identity: TokenInfo | undefined,
    start: number,
    time: Date,
    source: DecisionEvent['source'],
    error?: unknown,
  ): void {
    const hook = p.onDecision;
    if (!hook) return;
    const event: DecisionEvent = {
      time,
      effect: decision.effect,
      status: decision.status,
      reason: decision.reason,
      reasons: decision.reasons,
      mode: decision.mode,
      passed: decision.effect === 'allow' || decision.mode === 'report-only',
      method: typeof req.method === 'string' ? req.method.toUpperCase() : '',
      path,
      source,
      latencyUs: Math.round((performance.now() - start) * 1000),
    };
    if (decision.rule !== undefined) event.rule = decision.rule;
    if (identity) {
      event.tokenId = identity.id;
      event.kind = identity.kind;
      if (identity.subject !== undefined) event.subject = identity.subject;
    }
    if (ip) event.ip = ip.text;
    if (decision.detail !== undefined) event.detail = decision.detail;
    if (decision.risk) event.risk = decision.risk;
    if (error !== undefined) {
      const e = error instanceof StoreFailure ? error.error : error;
      event.error = e instanceof Error ? { name: e.name, message: e.message } : { name: 'Error', message: String(e) };
    }
    try {
      const r = hook(event);
      if (r && typeof (r as Promise<void>).catch === 'function') (r as Promise<void>).catch(() => undefined);
    } catch {
      // The audit hook must never change or break a decision.
    }
  }

  function decide(reasons: ReasonCode[], mode: Decision['mode'], rule: CompiledRule | undefined, headers: Record<string, string>, detail?: string): Decision {
    const reason = reasons.length ? (reasons[0] as ReasonCode) : 'ok';
    const decision: Decision = {
      effect: reason === 'ok' ? 'allow' : reason === 'step_up.required' ? 'step_up' : 'deny',
      status: REASONS[reason].status,
      reason,
      reasons,
      mode,
      headers,
    };
    if (rule) decision.rule = rule.name;
    if (reason === 'scope.insufficient' && rule?.scopeChallenge) headers['WWW-Authenticate'] = rule.scopeChallenge;
    else if (reason === 'step_up.required' && rule) headers['WWW-Authenticate'] = stepUpChallenges.get(rule) ?? (challenges.get(reason) as string);
    else {
      const c = challenges.get(reason);
      if (c) headers['WWW-Authenticate'] = c;
    }
    if (detail !== undefined) decision.detail = detail;
    return decision;
  }

  async function evaluate(req: GuardRequest): Promise<Decision> {
    const start = performance.now();
    const now = req.now ?? p.clock();
    const nowMs = now.getTime();
    const method = typeof req.method === 'string' ? req.method.toUpperCase() : '';
    const rawPath = typeof req.path === 'string' ? req.path : '';
    const path = normalizePath(rawPath);
    const headers = req.headers && typeof req.headers === 'object' ? req.headers : {};
    if (path === null || method === '') {
      const d = decide(['request.malformed'], p.mode, undefined, {}, 'unreadable request path or method');
      emit(d, req, rawPath.slice(0, 256).split('?')[0] ?? '', undefined, undefined, start, now, 'guard');
      return d;
    }
    const cased = req.caseSensitive === true;
    const rule = matchRule(p.rules, method, path, cased);
    // A rule in enforce mode enforces everything on its requests, even under a report-only policy ("trial
    // everything but keep /admin enforced"). A rule in report-only under an enforcing policy trials only its own
    // constraints (scopes, IP, hours, step-up, rate limit): their failures are reported, never enforced;
    // authentication, binding, revocation and the policy's and the token's own constraints stay enforced, so
    // trialling a rule never opens a path.
    const mode = routeMode(rule);
    const trial = mode === 'enforce' && rule?.mode === 'report-only';
    let ip: ParsedIp | null | undefined;
    let identity: TokenInfo | undefined;
    let scheme: 'bearer' | 'dpop' | undefined;

    try {
      ip = p.clientIp.resolve(req.remoteAddress, headers['x-forwarded-for']);
      if (p.preflight && method === 'OPTIONS' && isCorsPreflight(headers)) {
        const d = decide(EMPTY_REASONS, p.mode, undefined, {}, 'CORS preflight');
        emit(d, req, path, ip, undefined, start, now, 'guard');
        return d;
      }
      // A public rule skips every check, policy-level IP and hours included: public means public.
      if (rule?.public) {
        const d = decide(EMPTY_REASONS, mode, rule, {});
        emit(d, req, path, ip, undefined, start, now, 'guard');
        return d;
      }

      const extracted = extractToken(headers, p.maxTokenBytes);
      if (typeof extracted === 'string') throw new Refusal(extracted);
      const { token } = extracted;
      scheme = extracted.scheme;
      let holder: Holder;
      if (p.apiKeys !== undefined && hasApiKeyPrefix(token, p.apiKeys)) holder = await verifyApiKey(token, nowMs);
      else if (!jwt) throw new Refusal('token.invalid', 'JWTs are not accepted by this policy');
      else holder = jwtResult(jwt.lookup(token, nowMs) ?? (await jwt.verify(token, nowMs)));
      identity = holder.info;

      // dpop.required is about JWTs: an API key has no key to bind and is never DPoP-bound.
      const pop = popFailure(holder.cnf, scheme, () => req.peerCertificate, holder.record ? dpopForKeys : dpopState);
      if (pop) throw new Refusal('pop.invalid', pop);
      let proofClaim: { key: string; group: string } | undefined;
      if (scheme === 'dpop' && p.dpop) {
        const header = headers['dpop'];
        const proof = Array.isArray(header) ? header[0] : header;
        if (!proof || proof.length > p.maxTokenBytes) throw new Refusal('pop.invalid', 'DPoP proof missing or too long');
        const verified = await verifyDpopProof(p.dpop, {
          proof,
          accessToken: token,
          jkt: holder.cnf?.jkt as string,
          method,
          path,
          nowMs,
          toleranceS: p.clockToleranceS,
        });
        if ('failure' in verified) throw new Refusal('pop.invalid', verified.failure);
        // Claimed only once every other check has passed (below): a refused request must not spend claims.
        proofClaim = { key: verified.replayKey, group: verified.replayGroup };
      }

      const risk = p.risk;
      const revocationAnswer = invoke('getRevocation', holder.info.id, holder.info.subject, nowMs);
      // Usage is read alongside the revocation (one round trip's wait for both on a remote store).
      const usageAnswer = risk?.engine.needsUsage ? invoke('getUsage', holder.info.id) : undefined;
      if (isThenable(usageAnswer)) usageAnswer.catch(() => undefined); // awaited below, or abandoned by a refusal
      const revocation = checkRevocationState(isThenable(revocationAnswer) ? await revocationAnswer : revocationAnswer);
      if (isRevoked(revocation, holder.issuedAtMs, p.clockToleranceS * 1000)) throw new Refusal('token.revoked', 'revoked in store');
      scopeSets.set(holder.info, holder.scopeSet);

      // Reasons that refuse the request, and the trialled rule's own reasons (reported only).
      const blocking: ReasonCode[] = [];
      let unmatchedDetail: string | undefined;
      const ruled: ReasonCode[] = trial ? [] : blocking;
      const nowS = Math.floor(nowMs / 1000);
      const ipReason = p.ip?.check(ip) ?? holder.ip?.check(ip);
      if (ipReason) blocking.push(ipReason);
      const ruleIpReason = rule?.ip?.check(ip);
      if (ruleIpReason && !ruled.includes(ruleIpReason)) ruled.push(ruleIpReason);
      if ((p.hours && !p.hours.allows(nowMs)) || (holder.hours && !holder.hours.allows(nowMs))) blocking.push('hours.outside');
      if (rule?.hours && !rule.hours.allows(nowMs) && !ruled.includes('hours.outside')) ruled.push('hours.outside');
      if (!rule && p.unmatched === 'deny') {
        blocking.push('rule.unmatched');
        unmatchedDetail = explainUnmatched(p.rules, method, path, cased);
      }
      if (rule?.scopes && !hasScopes(rule.scopes, holder.scopeSet)) ruled.push('scope.insufficient');
      const ruleStepUp = !!rule?.stepUp && !satisfiesStepUp(rule.stepUp, holder.facts, nowS, p.clockToleranceS);
      if (ruleStepUp) ruled.push('step_up.required');

      let riskScore: RiskScore | undefined;
      let riskStepUp = false;
      let detail: string | undefined;
      if (risk) {
        const usage = checkUsage(isThenable(usageAnswer) ? await usageAnswer : usageAnswer);
        try {
          riskScore = risk.engine.score({ token: holder.info, ip: ip?.text, userAgent: userAgentOf(headers), method, path, now, usage, headers: signalHeaders(headers) });
        } catch (err) {
          if (!(err instanceof RiskSignalFailure)) throw err;
          // A signal that cannot say how risky a request is must not make it look safe.
          blocking.push('risk.denied');
          detail = `risk signal "${err.signal}" failed`;
        }
        if (riskScore && risk.denyAt !== undefined && riskScore.score >= risk.denyAt) blocking.push('risk.denied');
        else if (riskScore && risk.stepUpAt !== undefined && riskScore.score >= risk.stepUpAt && !satisfiesStepUp(risk.stepUp, holder.facts, nowS, p.clockToleranceS)) {
          riskStepUp = !(ruleStepUp && !trial);
          if (!blocking.includes('step_up.required')) blocking.push('step_up.required');
        }
      }

      const responseHeaders: Record<string, string> = {};
      // Counters and uses are only spent by requests that go through.
      const goesThrough = () => blocking.length === 0 || mode === 'report-only';
      if (goesThrough()) {
        const checks: RateLimitCheck[] = [];
        if (p.rateLimit) checks.push(p.rateLimit);
        if (rule?.rateLimit && !trial) checks.push(rule.rateLimit);
        if (holder.rateLimit) checks.push(holder.rateLimit);
        if (checks.length) {
          const answer = invoke('consume', holder.info.id, checks, nowMs);
          const result = checkRateLimitResult(isThenable(answer) ? await answer : answer);
          rateLimitHeaders(result, responseHeaders);
          if (!result.allowed) blocking.push('rate.limited');
        }
        if (trial && rule?.rateLimit) {
          // The trialled limit has its own counter and call, so its refusal cannot refuse the request.
          const answer = invoke('consume', holder.info.id, [rule.rateLimit], nowMs);
          if (!checkRateLimitResult(isThenable(answer) ? await answer : answer).allowed) ruled.push('rate.limited');
        }
        if (holder.record?.remaining !== undefined && goesThrough()) {
          const answer = invoke('useApiKey', holder.record.hash);
          const left: unknown = isThenable(answer) ? await answer : answer;
          // The record says the key is limited: an "unlimited" or non-integer answer is the store's fault.
          if (!Number.isSafeInteger(left)) throw storeShapeError('useApiKey');
          if ((left as number) < 0) {
            blocking.push('token.expired');
            detail = 'no uses left';
          }
        }
      }
      // One use per proof, on every instance sharing the store, with a claim no cache pressure can evict. Taken
      // last, by a request nothing else refused (unrevoked, within its limits), so refused or throttled requests
      // spend no claims; and capped per proof key, so one client cannot fill the store for every other.
      if (proofClaim && blocking.length === 0) {
        const dpop = p.dpop as NonNullable<typeof p.dpop>;
        const answer = invoke('claimOnce', proofClaim.key, { now: nowMs, expiresAt: nowMs + dpopReplayMs, group: proofClaim.group, maxPerGroup: dpop.maxClaimsPerKey });
        const first: unknown = isThenable(answer) ? await answer : answer;
        if (typeof first !== 'boolean') throw storeShapeError('claimOnce');
        if (!first) throw new Refusal('pop.invalid', claimRefused);
      }

      const enforced = blocking.length > 0 || !trial || ruled.length === 0;
      const reasons = trial ? [...blocking, ...ruled] : blocking;
      const decision = decide(reasons.length ? reasons : EMPTY_REASONS, enforced ? mode : 'report-only', rule, responseHeaders, detail ?? (reasons[0] === 'rule.unmatched' ? unmatchedDetail : undefined));
      decision.token = holder.info;
      if (riskScore) decision.risk = riskScore;
      if (riskStepUp && decision.reason === 'step_up.required') decision.headers['WWW-Authenticate'] = riskChallenge as string;
      if (p.dpop) dpopChallenge(decision, scheme);
      if (p.trackUsage && passes(decision)) {
        try {
          const use: UsageEvent = { at: nowMs };
          if (ip) use.ip = ip.text;
          const ua = userAgentOf(headers);
          if (ua !== undefined) use.userAgent = ua;
          const r = store.recordUsage(holder.info.id, use);
          if (isThenable(r)) r.then(undefined, () => undefined);
        } catch {
          // Usage is bookkeeping: losing one record must not fail a request that was allowed.
        }
      }
      emit(decision, req, path, ip, identity, start, now, 'guard');
      return decision;
    } catch (err) {
      let d: Decision;
      let error: unknown;
      if (err instanceof Refusal) {
        d = decide([err.reason], mode, rule, {}, err.detail);
        if (p.dpop) dpopChallenge(d, scheme);
      } else {
        // A store failure, or a bug: either way the answer is 503 and never an allow.
        error = err;
        d = decide(['store.unavailable'], mode, rule, {}, err instanceof StoreFailure ? 'store call failed' : 'internal error');
      }
      emit(d, req, path, ip, identity, start, now, 'guard', error);
      return d;
    }
  }

  const requirementCache = new WeakMap<object, { req: ScopeRequirement; challenge: string }>();
  function requirementOf(scopes: ScopesPolicy): { req: ScopeRequirement; challenge: string } {
    let r = requirementCache.get(scopes);
    if (!r) {
      const req = toScopeRequirement(scopes);
      r = { req, challenge: challenge(p.realm, `error="insufficient_scope", scope="${scopeChallengeValue(req)}"`) };
      requirementCache.set(scopes, r);
    }
    return r;
  }

  function authorize(auth: AuthResult | undefined, scopes: ScopesPolicy, req: GuardRequest): Decision {
    const start = performance.now();
    const now = req.now ?? p.clock();
    if (!auth) {
      throw new TokenGuardError('guard.not_mounted', 'requireScopes() ran on a request the tokenGuard middleware did not see: mount tokenGuard first', { status: 500, expose: false });
    }
    const prior = auth.decision;
    // A route check follows the mode of the rule the request matched, found again from the request (not from
    // req.auth, which a handler could edit): enforced under an enforcing policy or a rule's own `enforce`,
    // reported under a report-only policy. A trialled rule's report-only never switches it off.
    const path = normalizePath(typeof req.path === 'string' ? req.path : '');
    const method = typeof req.method === 'string' ? req.method.toUpperCase() : '';
    const mode = path === null ? p.mode : routeMode(matchRule(p.rules, method, path, req.caseSensitive === true));
    const samePolicyMode = prior.mode === mode;
    if (!auth.token) {
      // Here after a refusal the guard only reported (policy-wide report-only), or after a public rule
      // let the request in without a token, which this route wants after all.
      if (prior.reason !== 'ok' && samePolicyMode) return prior;
      const d = decide([prior.reason === 'ok' ? 'token.missing' : prior.reason], mode, undefined, {});
      emitRouteDecision(d, auth, req, start, now);
      return d;
    }
    const { req: requirement, challenge: c } = requirementOf(scopes);
    // Only a token this guard verified counts, with the scopes it verified (not a copy a handler may edit).
    const granted = scopeSets.get(auth.token);
    if (granted && hasScopes(requirement, granted)) return prior;
    const reasons: ReasonCode[] = !samePolicyMode ? ['scope.insufficient'] : prior.reasons.includes('scope.insufficient') ? [...prior.reasons] : [...prior.reasons, 'scope.insufficient'];
    const d = decide(reasons, mode, undefined, { ...(samePolicyMode ? prior.headers : passHeaders(prior)) });
    if (d.reason === 'scope.insufficient') d.headers['WWW-Authenticate'] = c;
    if (prior.rule !== undefined) d.rule = prior.rule;
    d.token = auth.token;
    emitRouteDecision(d, auth, req, start, now);
    return d;
  }

  function emitRouteDecision(d: Decision, auth: AuthResult, req: GuardRequest, start: number, now: Date): void {
    if (!p.onDecision) return;
    const path = normalizePath(typeof req.path === 'string' ? req.path : '') ?? '';
    const ip = p.clientIp.resolve(req.remoteAddress, req.headers?.['x-forwarded-for']);
    emit(d, req, path, ip, auth.token, start, now, 'requireScopes');
  }

  return {
    evaluate,
    decide: (r) => evaluate(r),
    authorize,
    store,
    clearTokenCache: () => jwt?.clearCache(),
    async revoke(token, options = {}) {
      const tokenId = typeof token === 'string' ? token : token?.id;
      if (typeof tokenId !== 'string' || tokenId === '') throw new TypeError('revoke: expected a token id or a verified token');
      const nowMs = (options.now ?? p.clock()).getTime();
      // A token's own expiry that no Date can hold (a store record's far-future expiresAt) revokes for good:
      // revoking a token the guard let through must never throw.
      const ownAt: unknown = typeof token === 'string' ? undefined : token.expiresAt;
      const ownMs = ownAt instanceof Date ? ownAt.getTime() : typeof ownAt === 'number' ? ownAt : undefined;
      const own = ownMs !== undefined && Number.isFinite(ownMs) ? ownMs : undefined;
      const until = options.expiresAt ?? own;
      // Kept past the expiry by the clock tolerance: the verifier still accepts the token until then.
      const expiresAt = until === undefined ? undefined : toMs(until, nowMs) + p.clockToleranceS * 1000;
      await store.revoke(tokenId, expiresAt === undefined ? { now: nowMs } : { now: nowMs, expiresAt });
    },
    async revokeSubject(subject, options = {}) {
      if (typeof subject !== 'string' || subject === '') throw new TypeError('revokeSubject: expected a subject');
      const nowMs = (options.now ?? p.clock()).getTime();
      const before = toMs(options.before, nowMs);
      const expiresAt = options.expiresAt === undefined ? undefined : toMs(options.expiresAt, nowMs);
      await store.revokeSubject(subject, expiresAt === undefined ? { now: nowMs, before } : { now: nowMs, before, expiresAt });
    },
  };
}
