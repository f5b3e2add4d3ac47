// createGuard: compiles a policy once and evaluates requests against it. Framework-neutral, no I/O of its
// own beyond the store it is given. The evaluation itself is the pipeline (pipeline.ts) over the registry.
import { performance } from 'node:perf_hooks';
import { TokenGuardError, UsageError } from '../leaf/errors.js';
import { normalizePath } from '../leaf/path.js';
import { passHeaders } from '../leaf/http.js';
import type { AuthResult, Decision, GuardRequest, ReasonCode, TokenInfo } from '../leaf/types.js';
import type { TokenStore } from '../leaf/store.js';
import { checkRevokedSubject, checkRevokeReason, revokedTokenId, toMs, type GuardRevokeOptions, type GuardRevokeSubjectOptions } from './revoke-arguments.js';
import { warnOnce } from '../leaf/warnings.js';
import { hasScopes, sameScopes, scopeChallengeValue, scopesProblem, snapshotScopes, toScopeRequirement, type ScopeRequirement, type ScopesPolicy } from '../checks/scopes.js';
import { JwtVerifier } from '../tokens/jwt.js';
import { Introspector } from '../tokens/introspection.js';
import { noteMultiIssuerGuard } from '../leaf/multi-issuer-stores.js';
import { challenge, compilePolicy, type CompiledPolicy, type TokenGuardPolicy } from './policy.js';
import { defaultStore } from './default-store.js';
import { caseReading, rulesTried, ruleForRequest, strictSlashTarget, type RuleTried } from './rule-match.js';
import { CHECKS, type CheckSlot } from './registry.js';
import { emitDecision } from './audit.js';
import { clockMs, droppedPromise } from '../leaf/callbacks.js';
import { Decider } from './decision.js';
import { KeyAuthenticator, type Holder } from './key-records.js';
import { KeyWatch } from './key-watch.js';
import { reporter } from './lifecycle-events.js';
import { pipeline, routeMode, type Engine, type Outcome, type TraceStep } from './pipeline.js';
import { checkStore, dryCheckStore, isThenable, measuredInvoker, readsOnly, storeInvoker } from './store-calls.js';
import { extractToken } from '../tokens/extract.js';

/** What `guard.explain` returns: the decision and how it was reached. */
export interface Explanation {
  decision: Decision;
  /** The rules tried in order, up to and including the one that matched. */
  rules: RuleTried[];
  /** Every step: the engine's own and each registered check's, in run order, then the checks that did not run. */
  steps: TraceStep[];
  /** Whether it spent what a request would (false under `{ spend: false }`). */
  spent: boolean;
}

/** Options of `guard.explain`. */
export interface ExplainOptions {
  /** `false`: a dry run that reads and spends nothing (uses, claims, budgets, rate limits: peeked at, or shown as not checked). Default: `true`. */
  spend?: boolean;
}

/** A compiled policy that evaluates requests. Create with `createGuard(policy)`. */
export interface Guard {
  /** Decides one request. Never throws for a bad request; a store failure gives 503 `store.unavailable`. */
  evaluate(request: GuardRequest): Promise<Decision>;
  /**
   * Decides one request like `evaluate`, but synchronously whenever it can: a Decision when nothing on the way
   * answered with a promise (a cached JWT or an API key against a store that answers synchronously, such as
   * MemoryStore), else a Promise of it. For adapters that continue without a microtask when they can.
   */
  decide(request: GuardRequest): Decision | Promise<Decision>;
  /**
   * Checks a per-route scope requirement (what adapters' `requireScopes` calls) against the result the
   * guard already put on the request. Reports the decision through `onDecision`. Throws UsageError for a
   * requirement that names no scope (`[]`, `{}`, an unknown key such as `anyOf`): it would let every token through.
   */
  authorize(auth: AuthResult | undefined, scopes: ScopesPolicy, request: GuardRequest): Decision;
  /**
   * Revokes a token on every instance sharing the store: pass the verified token (`req.auth.token`),
   * whose own expiry then bounds how long the revocation is kept, or a token id (JWT `jti` or derived
   * id, API key record id) with `expiresAt` (without it the revocation is kept until deleted). Reports
   * `token.revoked` (`key.revoked` for a verified API key) to `onLifecycle`.
   */
  revoke(token: string | TokenInfo, options?: GuardRevokeOptions): Promise<void>;
  /** Revokes every token of a subject issued before `before` (default: now). Reports `subject.revoked` to `onLifecycle`. */
  revokeSubject(subject: string, options?: GuardRevokeSubjectOptions): Promise<void>;
  /**
   * Decides one request like `evaluate` and says why: the rules tried (and the one matched), every registered
   * check with pass / fail / reported / skipped and why, the engine's steps (token, revocation) and the
   * decision. For support and tests: it is not audited (no `onDecision`) and records no usage; it spends what a
   * request would (a rate-limit unit, a key use, a DPoP proof) unless `{ spend: false }` makes it a dry run.
   */
  explain(request: GuardRequest, options?: ExplainOptions): Promise<Explanation>;
  /** The id this guard gives a JWT with this `jti` from `issuer` (`<name>:<jti>` with several issuers), or undefined when no issuer configuration accepts that `iss`. */
  tokenIdOf(jti: string, issuer: string): string | undefined;
  /**
   * The key under which revoking subject `sub` of `issuer` refuses that issuer's tokens only (`isub:<name>:<sub>` with
   * several issuers, the bare `sub` with one), or undefined when no issuer configuration accepts that `iss`.
   */
  subjectIdOf(sub: string, issuer: string): string | undefined;
  /** The store this guard reads and writes. */
  readonly store: TokenStore;
  /** The leeway, in seconds, this guard gives token times (the largest `jwt.clockTolerance`): revocations are kept that much past an expiry. */
  readonly clockTolerance: number;
  /** Forgets cached JWT verifications (e.g. after rotating signing keys) and cached introspection answers. */
  clearTokenCache(): void;
}

export type { GuardRevokeOptions, GuardRevokeSubjectOptions } from './revoke-arguments.js';

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
  const telemetry = p.telemetry;
  const jwksFetch = telemetry?.jwksFetch?.bind(telemetry);
  const jwt = p.jwt ? new JwtVerifier(jwksFetch ? p.jwt.map((c) => ({ ...c, onJwksFetch: jwksFetch })) : p.jwt) : undefined;
  if (jwt?.several) noteMultiIssuerGuard(store);
  // With several issuers, an answer naming one of them is that issuer's token for subject revocations and limits.
  const introspector = p.introspection ? new Introspector(p.introspection, jwt?.several ? (sub, iss) => jwt.subjectIdOf(sub, iss) : undefined) : undefined;
  if (jwt?.several && p.introspection !== undefined && p.introspection.issuer === undefined) {
    warnOnce(
      'TOKEN_GUARD_INTROSPECTION_ISSUER',
      "token-guard: introspection has no `issuer` in a policy with several jwt configurations: an opaque token reads its issuer's subject revocations (revokeSubject(sub, { issuer }), a SET receiver's subjectScope 'issuer') only when its introspection answer carries an `iss` equal to an accepted issuer, character for character; otherwise only the shared ones. Set introspection.issuer to require it.",
    );
  }
  const storeCall = telemetry?.storeCall?.bind(telemetry);
  // Store calls are timed only for a telemetry sink that asks: without one the hot path is as before.
  const invoke = storeCall ? measuredInvoker(storeInvoker(store, p.storeTimeoutMs), storeCall) : storeInvoker(store, p.storeTimeoutMs);
  // Whether a decision is measured at all: performance.now() and the event only then.
  const audited = p.onDecision !== undefined || telemetry !== undefined;
  // Whether decisions are traced for their audit events (auditTrace): only when something hears them.
  const traced = audited && p.auditTrace;
  // Lifecycle events of the guard's own making go to onLifecycle and to the store, when either listens.
  const report = reporter(store, p.onLifecycle, p.storeTimeoutMs);
  const listening = p.onLifecycle !== undefined || typeof store.appendLifecycleEvent === 'function';
  const decider = new Decider(p);
  // The scopes each verified TokenInfo was granted, for requireScopes: a handler editing
  // req.auth.token.scopes, or a TokenInfo this guard never made, grants nothing.
  const scopeSets = new WeakMap<TokenInfo, ReadonlySet<string>>();
  const clock = p.clock;
  const now = clockMs(clock);
  const timeOf = (req: GuardRequest): number => (req.now instanceof Date ? req.now.getTime() : now());

  const withPolicy = (has: (c: CheckSlot['check']) => boolean) => p.checks.all.filter((s) => s.policy !== undefined && has(s.check));
  const prefetchers = withPolicy((c) => c.prefetch !== undefined);
  const decorators = withPolicy((c) => c.decorate !== undefined).filter((s) => s.check.decorates?.(s.policy) !== false);
  const keyEnv = { realm: undefined, scope: 'key', clockToleranceS: p.clockToleranceS, maxTokenBytes: p.maxTokenBytes };
  const keysWatchedBy = (watch: KeyWatch) => (p.apiKeys ? new KeyAuthenticator(p.apiKeys, invoke, p.checks.all, keyEnv, watch) : undefined);
  const engine: Engine = {
    p,
    store,
    invoke,
    checkStore: checkStore(invoke, store),
    jwt,
    introspector,
    keys: keysWatchedBy(new KeyWatch(p.keyLifecycle, invoke, listening ? report : undefined)),
    decider,
    scopeSets,
    // One Holder per cached verification, kept on it (each guard has its own verifier and cache): a repeated token
    // allocates nothing here.
    jwtHolder(v) {
      let h = v.holder as Holder | undefined;
      if (!h) {
        h = {
          info: v.info,
          scopeSet: v.scopeSet,
          issuedAtMs: v.iat === undefined ? undefined : v.iat * 1000,
          facts: v,
          cnf: v.cnf,
          subjectKey: v.subjectKey,
          record: undefined,
          recordChecks: undefined,
          notices: undefined,
          granted: false,
          passed: undefined,
          passedScheme: undefined,
        };
        v.holder = h;
      }
      return h;
    },
    prefetchers,
    committers: withPolicy((c) => c.commit !== undefined),
    decorators,
    memoPath: prefetchers.length === 0 && decorators.length === 0,
  };

  // For telemetry only: whether the request's JWT is in the verification cache as the evaluation starts.
  const cacheHitOf = (req: GuardRequest): boolean | undefined => {
    if (!jwt || !req.headers || typeof req.headers !== 'object') return undefined;
    const extracted = extractToken(req.headers, p.maxTokenBytes, jwt.knows);
    // An API key is never in the JWT cache; finish() reports a hit or miss only for a JWT decision.
    return typeof extracted === 'string' ? undefined : jwt.knows(extracted.token);
  };

  function finish(outcome: Outcome, req: GuardRequest, start: number, nowMs: number, cacheHit?: boolean, trace?: TraceStep[], wallTime?: Date): Decision {
    if (audited) {
      emitDecision(p.onDecision, telemetry, outcome.decision, req, {
        path: outcome.path,
        ip: outcome.ip,
        identity: outcome.identity,
        start,
        nowMs,
        now: wallTime ?? req.now ?? (clock ? new Date(nowMs) : undefined),
        source: 'guard',
        error: outcome.error,
        cacheHit: outcome.identity?.kind === 'jwt' ? cacheHit : undefined,
        trace: trace !== undefined && outcome.decision.effect !== 'allow' ? trace : undefined,
      });
    }
    return outcome.decision;
  }

  // The engine of a dry run: the same verifiers and caches, a store that takes nothing, keys whose watch writes nothing.
  let dry: Engine | undefined;
  const dryEngine = (): Engine =>
    (dry ??= {
      ...engine,
      checkStore: dryCheckStore(engine.checkStore),
      keys: keysWatchedBy(new KeyWatch(p.keyLifecycle, readsOnly(invoke), undefined)),
    });

  // An Invalid Date (a request's `now`, a clock's answer) is NaN, and every time comparison with NaN is false: an expired
  // token would pass wherever the store takes NaN. So the request fails as a broken store would (503), checked by nothing.
  function badTime(req: GuardRequest, trace: TraceStep[] | undefined): Outcome {
    const target = typeof req.path === 'string' ? req.path : '';
    const path = normalizePath(target);
    const rule = path === null ? undefined : ruleForRequest(p.rules, typeof req.method === 'string' ? req.method.toUpperCase() : '', path, req, target);
    const detail = `invalid time: ${req.now instanceof Date ? "the request's now is an Invalid Date" : "the policy's clock returned no valid Date"}`;
    trace?.push({ phase: 'decide', step: 'failure', outcome: 'fail', reason: 'store.unavailable', detail });
    const ip = p.clientIp.resolve(req.remoteAddress, req.headers?.['x-forwarded-for']);
    return { decision: decider.decide(['store.unavailable'], routeMode(p, rule), rule, {}, detail), path: path ?? '', ip, identity: undefined, error: new UsageError(detail) };
  }

  async function explain(req: GuardRequest, options?: ExplainOptions): Promise<Explanation> {
    const spent = options?.spend !== false;
    const nowMs = timeOf(req);
    const steps: TraceStep[] = [];
    const outcome = Number.isFinite(nowMs) ? await pipeline(spent ? engine : dryEngine(), req, nowMs, steps) : badTime(req, steps);
    const target = typeof req.path === 'string' ? req.path : '';
    const path = normalizePath(target);
    const method = typeof req.method === 'string' ? req.method.toUpperCase() : '';
    const rules = path === null ? [] : rulesTried(p.rules, method, path, caseReading(req), strictSlashTarget(req, target));
    const seen = new Set(steps.map((s) => s.step));
    // Every registered check is accounted for: run, not configured, or not reached (an earlier refusal).
    for (const c of CHECKS) {
      if (seen.has(c.name)) continue;
      const used = p.checks.all.some((s) => s.check === c);
      steps.push({ phase: c.phase, step: c.name, outcome: 'skipped', detail: used ? 'not reached' : 'not configured by this policy' });
    }
    steps.push({ phase: 'decide', step: 'decision', outcome: outcome.decision.effect === 'allow' ? 'pass' : 'fail', reason: outcome.decision.reason });
    return { decision: outcome.decision, rules, steps, spent };
  }

  function decide(req: GuardRequest): Decision | Promise<Decision> {
    // performance.now() only for the audit hook's latency and telemetry.
    const start = audited ? performance.now() : 0;
    const cacheHit = telemetry ? cacheHitOf(req) : undefined;
    const nowMs = timeOf(req);
    // Under auditTrace the steps are recorded for the event; usage is recorded as without them (unlike explain).
    const trace: TraceStep[] | undefined = traced ? [] : undefined;
    if (!Number.isFinite(nowMs)) return finish(badTime(req, trace), req, start, nowMs, undefined, trace, new Date());
    const outcome = pipeline(engine, req, nowMs, trace, true);
    return isThenable(outcome) ? outcome.then((o) => finish(o, req, start, nowMs, cacheHit, trace)) : finish(outcome, req, start, nowMs, cacheHit, trace);
  }

  const subjectIdOf = (sub: string, issuer: string): string | undefined => jwt?.subjectIdOf(sub, issuer);

  const requirementCache = new WeakMap<object, { seen: ScopesPolicy; req: ScopeRequirement; challenge: string }>();
  function requirementOf(scopes: ScopesPolicy): { req: ScopeRequirement; challenge: string } {
    let r = requirementCache.get(scopes);
    // Cached by identity, but a caller's array may be changed after its first use: a stale requirement could be laxer.
    if (!r || !sameScopes(scopes, r.seen)) {
      const problem = scopesProblem(scopes);
      if (problem !== undefined) throw new UsageError(`authorize: ${problem}`, { help: 'pass scope strings, or { all?, any? } with at least one scope' });
      const req = toScopeRequirement(scopes);
      r = { seen: snapshotScopes(scopes), req, challenge: challenge(p.realm, `error="insufficient_scope", scope="${scopeChallengeValue(req)}"`, p.resourceMetadata) };
      requirementCache.set(scopes, r);
    }
    return r;
  }

  function authorize(auth: AuthResult | undefined, scopes: ScopesPolicy, req: GuardRequest): Decision {
    const start = audited ? performance.now() : 0;
    const nowMs = timeOf(req);
    if (!auth) {
      throw new TokenGuardError('guard.not_mounted', 'requireScopes() ran on a request the tokenGuard middleware did not see: mount tokenGuard first', {
        status: 500,
        expose: false,
      });
    }
    const prior = auth.decision;
    // A route check follows the mode of the rule the request matched, found again from the request (not from
    // req.auth, which a handler could edit): enforced under an enforcing policy or a rule's own `enforce`,
    // reported under a report-only policy. A trialled rule's report-only never switches it off.
    const target = typeof req.path === 'string' ? req.path : '';
    const path = normalizePath(target);
    const method = typeof req.method === 'string' ? req.method.toUpperCase() : '';
    const mode = path === null ? p.mode : routeMode(p, ruleForRequest(p.rules, method, path, req, target));
    const samePolicyMode = prior.mode === mode;
    if (!auth.token) {
      // Here after a refusal the guard only reported (policy-wide report-only), or after a public rule
      // let the request in without a token, which this route wants after all.
      if (prior.reason !== 'ok' && samePolicyMode) return prior;
      const d = decider.decide([prior.reason === 'ok' ? 'token.missing' : prior.reason], mode, undefined, {});
      emitRouteDecision(d, auth, req, start, nowMs);
      return d;
    }
    const { req: requirement, challenge: c } = requirementOf(scopes);
    // Only a token this guard verified counts, with the scopes it verified (not a copy a handler may edit).
    const granted = scopeSets.get(auth.token);
    if (granted && hasScopes(requirement, granted)) return prior;
    const reasons: ReasonCode[] = !samePolicyMode
      ? ['scope.insufficient']
      : prior.reasons.includes('scope.insufficient')
        ? [...prior.reasons]
        : [...prior.reasons, 'scope.insufficient'];
    const d = decider.decide(reasons, mode, undefined, { ...(samePolicyMode ? prior.headers : passHeaders(prior)) });
    if (d.reason === 'scope.insufficient') d.headers['WWW-Authenticate'] = c;
    if (prior.rule !== undefined) d.rule = prior.rule;
    d.token = auth.token;
    emitRouteDecision(d, auth, req, start, nowMs);
    return d;
  }

  function emitRouteDecision(d: Decision, auth: AuthResult, req: GuardRequest, start: number, nowMs: number): void {
    if (!audited) return;
    const path = normalizePath(typeof req.path === 'string' ? req.path : '') ?? '';
    const ip = p.clientIp.resolve(req.remoteAddress, req.headers?.['x-forwarded-for']);
    emitDecision(p.onDecision, telemetry, d, req, { path, ip, identity: auth.token, start, nowMs, now: req.now, source: 'requireScopes' });
  }

  if (telemetry?.attach) {
    try {
      droppedPromise(telemetry.attach({ store }));
    } catch {
      // Telemetry must never keep a guard from starting.
    }
  }

  return {
    evaluate: (request) => {
      try {
        return Promise.resolve(decide(request));
      } catch (err) {
        return Promise.reject(err);
      }
    },
    decide,
    explain,
    authorize,
    store,
    tokenIdOf: (jti, issuer) => jwt?.tokenIdOf(jti, issuer),
    subjectIdOf,
    clockTolerance: p.clockToleranceS,
    clearTokenCache: () => {
      jwt?.clearCache();
      introspector?.clearCache();
    },
    async revoke(token, options = {}) {
      const tokenId = revokedTokenId(token);
      const nowMs = toMs(options.now ?? now(), 0);
      const { reason, actor } = checkRevokeReason('revoke', options);
      // A token's own expiry that no Date can hold (a store record's far-future expiresAt) revokes for good:
      // revoking a token the guard let through must never throw.
      const ownAt: unknown = typeof token === 'string' ? undefined : token.expiresAt;
      const ownMs = ownAt instanceof Date ? ownAt.getTime() : typeof ownAt === 'number' ? ownAt : undefined;
      const own = ownMs !== undefined && Number.isFinite(ownMs) ? ownMs : undefined;
      const until = options.expiresAt ?? own;
      // Kept past the expiry by the clock tolerance: the verifier still accepts the token until then.
      const expiresAt = until === undefined ? undefined : toMs(until, nowMs) + p.clockToleranceS * 1000;
      await store.revoke(tokenId, { now: nowMs, ...(expiresAt !== undefined && { expiresAt }), ...(reason !== undefined && { reason }) });
      const info = typeof token === 'string' ? undefined : token;
      await report({
        type: info?.kind === 'api_key' ? 'key.revoked' : 'token.revoked',
        at: nowMs,
        subject: typeof info?.subject === 'string' && info.subject !== '' ? info.subject : undefined,
        tokenId,
        actor,
        reason,
      });
    },
    async revokeSubject(subject, options = {}) {
      checkRevokedSubject(subject);
      const nowMs = toMs(options.now ?? now(), 0);
      const before = toMs(options.before, nowMs);
      // As for revoke: the verifier accepts the subject's tokens until their exp plus the clock tolerance.
      const expiresAt = options.expiresAt === undefined ? undefined : toMs(options.expiresAt, nowMs) + p.clockToleranceS * 1000;
      const { reason, actor } = checkRevokeReason('revokeSubject', options);
      const key = options.issuer === undefined ? subject : subjectIdOf(subject, options.issuer);
      if (key === undefined)
        throw new UsageError('revokeSubject: issuer is not one this guard accepts', {
          help: "pass a token's iss exactly as the policy's jwt.issuer names it, or leave it out to revoke every issuer's",
        });
      await store.revokeSubject(key, { now: nowMs, before, ...(expiresAt !== undefined && { expiresAt }), ...(reason !== undefined && { reason }) });
      await report({ type: 'subject.revoked', at: nowMs, subject, actor, reason, issuer: options.issuer });
    },
  };
}
