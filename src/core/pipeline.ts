// The evaluation as phases over the check registry: authenticate → bind → revoke → constraints → risk →
// quota → decide, with a pre-auth phase before authentication. Written as a generator that yields only
// when a store (or verifier) answers with a promise, so a fully synchronous path returns a Decision at once.
import type { ParsedIp } from '../leaf/ip.js';
import { normalizePath } from '../leaf/path.js';
import { passes } from '../leaf/http.js';
import type { RateLimitCheck, TokenStore, UsageEvent } from '../leaf/store.js';
import type { Decision, GuardRequest, ReasonCode, TokenInfo } from '../leaf/types.js';
import type { CheckContext } from '../checks/check.js';
import { isRevoked, revocationDetail } from '../checks/revocation.js';
import { popFailure } from '../checks/pop.js';
import { verifyDpopProof } from '../checks/dpop.js';
import { rateLimitHeaders } from '../checks/rate-limit.js';
import { satisfiesStepUp } from '../checks/step-up.js';
import { RiskSignalFailure, type RiskScore } from '../checks/risk.js';
import { extractToken } from '../tokens/extract.js';
import { hasApiKeyPrefix } from '../tokens/api-key.js';
import type { JwtFailure, JwtVerifier, VerifiedJwt } from '../tokens/jwt.js';
import type { CompiledPolicy } from './policy.js';
import { explainUnmatched, matchRule, type CompiledRule } from './rule-match.js';
import { NO_REASONS, type Decider } from './decision.js';
import type { Holder, KeyAuthenticator } from './key-records.js';
import { Refusal } from './refusal.js';
import { checkRateLimitResult, checkRevocationState, checkUsage, isThenable, storeShapeError, StoreFailure, type Invoke } from './store-calls.js';
import { StoreError } from '../leaf/errors.js';

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
  jwt: JwtVerifier | undefined;
  keys: KeyAuthenticator | undefined;
  decider: Decider;
  /** The scopes each verified TokenInfo was granted, for requireScopes. */
  scopeSets: WeakMap<TokenInfo, ReadonlySet<string>>;
  /** Per rule (and the no-rule case): the policy's and the rule's limits, built once. */
  limitsOf(rule: CompiledRule | undefined, trial: boolean): readonly RateLimitCheck[];
  dpopReplayMs: number;
  claimRefused: string;
  jwtHolder(v: VerifiedJwt): Holder;
  dpopForJwts: { enabled: boolean; required: boolean };
  dpopForKeys: { enabled: boolean; required: boolean };
}

// What popFailure reads for a token with no certificate binding: nothing (it never calls it then).
const NO_CERTIFICATE = (): undefined => undefined;

type Step = Generator<PromiseLike<unknown>, Outcome, unknown>;
type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const hasValue = (v: string | string[] | undefined): boolean => typeof v === 'string' && v !== '';
/** A CORS preflight (Fetch standard §4.8): what a browser sends before a cross-origin call, never with credentials. */
function isCorsPreflight(headers: GuardRequest['headers']): boolean {
  return headers['authorization'] === undefined && hasValue(headers['origin']) && hasValue(headers['access-control-request-method']);
}

// Never handed to custom risk signals (they may be vendor code that ships its context elsewhere).
const SECRET_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'dpop']);

/** The request headers a custom risk signal may see: credentials removed, frozen. */
function signalHeaders(headers: GuardRequest['headers']): GuardRequest['headers'] {
  const out: GuardRequest['headers'] = {};
  for (const name of Object.keys(headers)) if (!SECRET_HEADERS.has(name)) out[name] = headers[name];
  return Object.freeze(out);
}

/** The User-Agent, bounded: it is stored per token, and a client chooses its length. */
export function userAgentOf(headers: GuardRequest['headers']): string | undefined {
  const ua = headers['user-agent'];
  const value = Array.isArray(ua) ? ua[0] : ua;
  return typeof value === 'string' ? value.slice(0, 256) : undefined;
}

/** Adds a reason once; a list is made only when there is something to add (an allow allocates none). */
function add(list: ReasonCode[] | undefined, reason: ReasonCode): ReasonCode[] {
  if (!list) return [reason];
  if (!list.includes(reason)) list.push(reason);
  return list;
}

/** The mode a request is under: its rule's `mode: 'enforce'` wins over a report-only policy; otherwise the policy's. */
export const routeMode = (p: CompiledPolicy, rule: CompiledRule | undefined): Decision['mode'] => (rule?.mode === 'enforce' ? 'enforce' : p.mode);

/** One evaluation. Yields only promises; returns the outcome. Never throws. */
export function* pipeline(e: Engine, req: GuardRequest, nowMs: number): Step {
  const { p, decider, invoke } = e;
  const method = typeof req.method === 'string' ? req.method.toUpperCase() : '';
  const rawPath = typeof req.path === 'string' ? req.path : '';
  const path = normalizePath(rawPath);
  const headers = req.headers && typeof req.headers === 'object' ? req.headers : {};
  if (path === null || method === '') {
    const d = decider.decide(['request.malformed'], p.mode, undefined, {}, 'unreadable request path or method');
    return { decision: d, path: rawPath.slice(0, 256).split('?')[0] ?? '', ip: undefined, identity: undefined };
  }
  const cased = req.caseSensitive === true;
  const rule = matchRule(p.rules, method, path, cased);
  // A rule in enforce mode enforces everything on its requests, even under a report-only policy ("trial
  // everything but keep /admin enforced"). A rule in report-only under an enforcing policy trials only its own
  // constraints (its values of the registered checks, its rate limit): their failures are reported, never
  // enforced; authentication, binding, revocation and the policy's and the token's own constraints stay
  // enforced, so trialling a rule never opens a path.
  const mode = routeMode(p, rule);
  const trial = mode === 'enforce' && rule?.mode === 'report-only';
  let ip: ParsedIp | null | undefined;
  let identity: TokenInfo | undefined;
  let scheme: 'bearer' | 'dpop' | undefined;
  // Reasons that refuse the request, and the trialled rule's own reasons (reported only).
  let blocking: ReasonCode[] | undefined;
  let ruled: ReasonCode[] | undefined;
  let ctx: Mutable<CheckContext> | undefined;

  try {
    ip = p.clientIp.resolve(req.remoteAddress, headers['x-forwarded-for']);
    if (p.preflight && method === 'OPTIONS' && isCorsPreflight(headers)) {
      return { decision: decider.decide(NO_REASONS, p.mode, undefined, {}, 'CORS preflight'), path, ip, identity };
    }
    // A public rule skips every check, policy-level IP and hours included: public means public.
    if (rule?.public) return { decision: decider.decide(NO_REASONS, mode, rule, {}), path, ip, identity };

    const responseHeaders: Record<string, string> = {};
    ctx = { request: req, method, path, headers, nowMs, ip, clockToleranceS: p.clockToleranceS, token: undefined, responseHeaders, detail: undefined };

    // Phase: pre-auth. Runs before the token is read, so a flood of bad tokens costs no verification or store call.
    for (const slot of p.preAuth) {
      if (slot.policy !== undefined) {
        let r = slot.check.check(ctx, slot.policy);
        if (isThenable(r)) r = (yield r) as ReasonCode | undefined;
        if (r) blocking = add(blocking, r);
      }
      const rv = rule?.preAuth.values[slot.index];
      if (rv !== undefined) {
        let r = slot.check.check(ctx, rv);
        if (isThenable(r)) r = (yield r) as ReasonCode | undefined;
        if (r) {
          if (trial) ruled = add(ruled, r);
          else blocking = add(blocking, r);
        }
      }
    }
    if (blocking && mode === 'enforce') return { decision: decider.decide(blocking, mode, rule, responseHeaders, ctx.detail), path, ip, identity };

    // Phase: authenticate.
    const extracted = extractToken(headers, p.maxTokenBytes, e.jwt?.knows);
    if (typeof extracted === 'string') throw new Refusal(extracted);
    const { token } = extracted;
    scheme = extracted.scheme;
    let holder: Holder;
    if (e.keys !== undefined && p.apiKeys !== undefined && hasApiKeyPrefix(token, p.apiKeys)) {
      const h = e.keys.authenticate(token, nowMs);
      holder = isThenable(h) ? ((yield h) as Holder) : h;
    } else if (!e.jwt) throw new Refusal('token.invalid', 'JWTs are not accepted by this policy');
    else {
      let v: VerifiedJwt | JwtFailure | undefined = e.jwt.lookup(token, nowMs);
      if (v === undefined) v = (yield e.jwt.verify(token, nowMs)) as VerifiedJwt | JwtFailure;
      if ('reason' in v) {
        if (v.reason === 'store.unavailable') throw new StoreFailure(new StoreError(v.detail));
        throw new Refusal(v.reason, v.detail);
      }
      holder = e.jwtHolder(v);
    }
    identity = holder.info;
    ctx.token = holder;
    // Deprecation / Sunset of a key in its rotation grace or near its maxAge (key-records.ts decides).
    if (holder.notices) Object.assign(responseHeaders, holder.notices);

    // Phase: bind. dpop.required is about JWTs: an API key has no key to bind and is never DPoP-bound.
    const cnf = holder.cnf;
    const pop = popFailure(cnf, scheme, cnf?.['x5t#S256'] === undefined ? NO_CERTIFICATE : () => req.peerCertificate, holder.record ? e.dpopForKeys : e.dpopForJwts);
    if (pop) throw new Refusal('pop.invalid', pop);
    let proofClaim: { key: string; group: string } | undefined;
    if (scheme === 'dpop' && p.dpop) {
      const header = headers['dpop'];
      const proof = Array.isArray(header) ? header[0] : header;
      if (!proof || proof.length > p.maxTokenBytes) throw new Refusal('pop.invalid', 'DPoP proof missing or too long');
      const verified = (yield verifyDpopProof(p.dpop, {
        proof,
        accessToken: token,
        jkt: holder.cnf?.jkt as string,
        method,
        path,
        nowMs,
        toleranceS: p.clockToleranceS,
      })) as Awaited<ReturnType<typeof verifyDpopProof>>;
      if ('failure' in verified) throw new Refusal('pop.invalid', verified.failure);
      // Claimed only once every other check has passed (below): a refused request must not spend claims.
      proofClaim = { key: verified.replayKey, group: verified.replayGroup };
    }

    // Phase: revoke. Usage is read alongside the revocation (one round trip's wait for both on a remote store).
    const risk = p.risk;
    const revocationAnswer: unknown = invoke('getRevocation', holder.info.id, holder.info.subject, nowMs);
    const usageAnswer: unknown = risk?.engine.needsUsage ? invoke('getUsage', holder.info.id) : undefined;
    if (isThenable(usageAnswer)) Promise.resolve(usageAnswer).catch(() => undefined); // awaited below, or abandoned by a refusal
    const revocation = checkRevocationState(isThenable(revocationAnswer) ? yield revocationAnswer : revocationAnswer);
    if (isRevoked(revocation, holder.issuedAtMs, p.clockToleranceS * 1000)) throw new Refusal('token.revoked', revocationDetail(revocation));
    e.scopeSets.set(holder.info, holder.scopeSet);

    // Phase: constraints. The policy's (or else the key record's) value refuses; the rule's own is trialled
    // under the rule's report-only, and refuses otherwise.
    const record = holder.recordChecks;
    for (const slot of p.constraints) {
      let r = slot.policy !== undefined ? slot.check.check(ctx, slot.policy) : undefined;
      if (isThenable(r)) r = (yield r) as ReasonCode | undefined;
      if (r === undefined && record) {
        const v = record[slot.index];
        if (v !== undefined) {
          r = slot.check.check(ctx, v);
          if (isThenable(r)) r = (yield r) as ReasonCode | undefined;
        }
      }
      if (r) blocking = add(blocking, r);
      const rv = rule?.constraints.values[slot.index];
      if (rv !== undefined) {
        let rr = slot.check.check(ctx, rv);
        if (isThenable(rr)) rr = (yield rr) as ReasonCode | undefined;
        if (rr) {
          if (trial) ruled = add(ruled, rr);
          else blocking = add(blocking, rr);
        }
      }
    }
    let detail: string | undefined = ctx.detail;
    let unmatchedDetail: string | undefined;
    if (!rule && p.unmatched === 'deny') {
      blocking = add(blocking, 'rule.unmatched');
      unmatchedDetail = explainUnmatched(p.rules, method, path, cased);
    }

    // Phase: risk.
    let riskScore: RiskScore | undefined;
    let riskStepUp = false;
    if (risk) {
      const usage = checkUsage(isThenable(usageAnswer) ? yield usageAnswer : usageAnswer);
      try {
        riskScore = risk.engine.score({
          token: holder.info,
          ip: ip?.text,
          userAgent: userAgentOf(headers),
          method,
          path,
          now: req.now ?? new Date(nowMs),
          usage,
          headers: signalHeaders(headers),
        });
      } catch (err) {
        if (!(err instanceof RiskSignalFailure)) throw err;
        // A signal that cannot say how risky a request is must not make it look safe.
        blocking = add(blocking, 'risk.denied');
        detail = `risk signal "${err.signal}" failed`;
      }
      if (riskScore && risk.denyAt !== undefined && riskScore.score >= risk.denyAt) blocking = add(blocking, 'risk.denied');
      else if (
        riskScore &&
        risk.stepUpAt !== undefined &&
        riskScore.score >= risk.stepUpAt &&
        !satisfiesStepUp(risk.stepUp, holder.facts, Math.floor(nowMs / 1000), p.clockToleranceS)
      ) {
        const ruleStepUp = !trial && !!blocking?.includes('step_up.required');
        riskStepUp = !ruleStepUp;
        blocking = add(blocking, 'step_up.required');
      }
    }

    // Phase: quota. Counters and uses are only spent by requests that go through.
    if (blocking === undefined || mode === 'report-only') {
      const limits = e.limitsOf(rule, trial);
      const checks = holder.rateLimit ? [...limits, holder.rateLimit] : limits;
      if (checks.length) {
        const answer: unknown = invoke('consume', holder.info.id, checks as RateLimitCheck[], nowMs);
        const result = checkRateLimitResult(isThenable(answer) ? yield answer : answer);
        rateLimitHeaders(result, responseHeaders);
        if (!result.allowed) blocking = add(blocking, 'rate.limited');
      }
      if (trial && rule?.rateLimit) {
        // The trialled limit has its own counter and call, so its refusal cannot refuse the request.
        const answer: unknown = invoke('consume', holder.info.id, [rule.rateLimit], nowMs);
        if (!checkRateLimitResult(isThenable(answer) ? yield answer : answer).allowed) ruled = add(ruled, 'rate.limited');
      }
      if (holder.record?.remaining !== undefined && (blocking === undefined || mode === 'report-only')) {
        const answer: unknown = invoke('useApiKey', holder.record.hash);
        const left: unknown = isThenable(answer) ? yield answer : answer;
        // The record says the key is limited: an "unlimited" or non-integer answer is the store's fault.
        if (!Number.isSafeInteger(left)) throw storeShapeError('useApiKey');
        if ((left as number) < 0) {
          blocking = add(blocking, 'token.expired');
          detail = 'no uses left';
        }
      }
    }
    // One use per proof, on every instance sharing the store, with a claim no cache pressure can evict. Taken
    // last, by a request nothing else refused (unrevoked, within its limits), so refused or throttled requests
    // spend no claims; and capped per proof key, so one client cannot fill the store for every other.
    if (proofClaim && blocking === undefined) {
      const answer: unknown = invoke('claimOnce', proofClaim.key, {
        now: nowMs,
        expiresAt: nowMs + e.dpopReplayMs,
        group: proofClaim.group,
        maxPerGroup: p.dpop?.maxClaimsPerKey ?? 0,
      });
      const first: unknown = isThenable(answer) ? yield answer : answer;
      if (typeof first !== 'boolean') throw storeShapeError('claimOnce');
      if (!first) throw new Refusal('pop.invalid', e.claimRefused);
    }

    // Phase: decide.
    const enforced = blocking !== undefined || !trial || ruled === undefined;
    const reasons = trial && ruled ? [...(blocking ?? []), ...ruled] : (blocking ?? NO_REASONS);
    const decision = decider.decide(reasons, enforced ? mode : 'report-only', rule, responseHeaders, detail ?? (reasons[0] === 'rule.unmatched' ? unmatchedDetail : undefined));
    decision.token = holder.info;
    if (riskScore) decision.risk = riskScore;
    if (riskStepUp && decision.reason === 'step_up.required') decision.headers['WWW-Authenticate'] = decider.riskChallenge as string;
    if (p.dpop) decider.dpopChallenge(decision, scheme);
    if (p.trackUsage && passes(decision)) recordUsage(e.store, holder.info.id, nowMs, ip, headers);
    return { decision, path, ip, identity };
  } catch (err) {
    let d: Decision;
    let error: unknown;
    if (err instanceof Refusal) {
      if (ctx && identity === undefined) {
        for (const slot of p.preAuth) if (slot.policy !== undefined) slot.check.onRefusal?.(ctx, slot.policy, err.reason);
      }
      // A reason the pre-auth phase only reported (report-only) stays in the report.
      // Before a token is verified only the pre-auth checks write headers (their RateLimit budget): kept.
      const kept = ctx && identity === undefined ? ctx.responseHeaders : {};
      d = decider.decide(blocking ? [...blocking, err.reason] : [err.reason], mode, rule, kept, err.detail);
      if (p.dpop) decider.dpopChallenge(d, scheme);
    } else {
      // A store failure, or a bug: either way the answer is 503 and never an allow.
      error = err;
      d = decider.decide(['store.unavailable'], mode, rule, {}, err instanceof StoreFailure ? 'store call failed' : 'internal error');
    }
    return { decision: d, path, ip, identity, error };
  }
}

/** Records one use of a token. Bookkeeping: losing one record must not fail a request that was allowed. */
function recordUsage(store: TokenStore, tokenId: string, nowMs: number, ip: ParsedIp | null | undefined, headers: GuardRequest['headers']): void {
  try {
    const use: UsageEvent = { at: nowMs };
    if (ip) use.ip = ip.text;
    const ua = userAgentOf(headers);
    if (ua !== undefined) use.userAgent = ua;
    const r = store.recordUsage(tokenId, use);
    if (isThenable(r)) r.then(undefined, () => undefined);
  } catch {
    // see above
  }
}

/**
 * Runs a pipeline: synchronously while nothing it waits for is a promise, so a cached token against a
 * synchronous store gives its Decision with no microtask; from the first promise on, asynchronously.
 */
export function run(step: Step): Outcome | Promise<Outcome> {
  const r = step.next();
  // Every value yielded is a thenable (the pipeline yields nothing else).
  return r.done ? r.value : resume(step, r.value);
}

function resume(step: Step, pending: PromiseLike<unknown>): Promise<Outcome> {
  return Promise.resolve(pending).then(
    (value) => continueWith(step, () => step.next(value)),
    (error: unknown) => continueWith(step, () => step.throw(error)),
  );
}

function continueWith(step: Step, advance: () => IteratorResult<PromiseLike<unknown>, Outcome>): Outcome | Promise<Outcome> {
  const r = advance();
  return r.done ? r.value : resume(step, r.value);
}
