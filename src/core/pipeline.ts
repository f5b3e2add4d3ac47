// The evaluation as phases over the check registry: pre-auth → authenticate → bind → revoke → constraints →
// risk → quota → commit → decide. The registered checks run in their phase (startPhase: the policy's value and a
// key record's refuse, a rule's own is trialled under the rule's report-only); authentication and revocation are
// the engine's own steps. Written as a generator that yields only when a store (or verifier) answers with a
// promise, so a fully synchronous path returns a Decision at once; the phases themselves are plain loops
// (startPhase), so they allocate nothing of their own.
import type { ParsedIp } from '../leaf/ip.js';
import { normalizePath } from '../leaf/path.js';
import { passes, userAgentOf } from '../leaf/http.js';
import type { TokenStore, UsageEvent } from '../leaf/store.js';
import type { Decision, GuardRequest, ReasonCode, TokenInfo, TraceStep } from '../leaf/types.js';
import type { CheckStore } from '../checks/check.js';
import { isRevoked, revocationDetail } from '../checks/revocation.js';
import { extractToken, hasTokenSyntax } from '../tokens/extract.js';
import { hasApiKeyPrefix } from '../tokens/api-key.js';
import type { JwtFailure, JwtVerifier, VerifiedJwt } from '../tokens/jwt.js';
import { isJwtShaped, type IntrospectedToken, type IntrospectionFailure, type Introspector } from '../tokens/introspection.js';
import type { CompiledPolicy } from './policy.js';
import { explainUnmatched, matchRule, type CompiledRule } from './rule-match.js';
import type { CheckSlot } from './registry.js';
import { NO_REASONS, type Decider } from './decision.js';
import type { Holder, KeyAuthenticator } from './key-records.js';
import { Refusal } from './refusal.js';
import { checkRevocationState, isThenable, StoreFailure, type Invoke } from './store-calls.js';
import { add, newRun, resumePhase, startPhase, type Ctx, type Run } from './phases.js';

// TraceStep is a leaf type (audit events carry it); re-exported here, where it was first declared.
export type { TraceStep } from '../leaf/types.js';

export { userAgentOf } from '../leaf/http.js';

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
}

type Step = Generator<PromiseLike<unknown>, Outcome, unknown>;
/** For `extractToken`: leave the token's syntax to the pipeline, which checks it where no cache vouches for it. */
const syntaxLater = (): boolean => true;
const hasValue = (v: string | string[] | undefined): boolean => typeof v === 'string' && v !== '';
/** `s.toUpperCase()`, without the new string it allocates when `s` is upper case already (every method on the wire). */
function upperCase(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c >= 0x61 && c <= 0x7a) || c >= 0x80) return s.toUpperCase();
  }
  return s;
}

/** A CORS preflight (Fetch standard §4.8): what a browser sends before a cross-origin call, never with credentials. */
function isCorsPreflight(headers: GuardRequest['headers']): boolean {
  return headers['authorization'] === undefined && hasValue(headers['origin']) && hasValue(headers['access-control-request-method']);
}

/** The mode a request is under: its rule's `mode: 'enforce'` wins over a report-only policy; otherwise the policy's. */
export const routeMode = (p: CompiledPolicy, rule: CompiledRule | undefined): Decision['mode'] => (rule?.mode === 'enforce' ? 'enforce' : p.mode);

function decorate(e: Engine, ctx: Ctx | undefined, d: Decision): Decision {
  if (ctx) for (const slot of e.decorators) slot.check.decorate?.(ctx, slot.policy, d);
  return d;
}

/**
 * One evaluation. Yields only promises; returns the outcome. Never throws. With `trace`, records every step in it.
 * `recordsUsage`: whether an allowed request's use is recorded (`trackUsage`). Default: only without a trace, so
 * `guard.explain` records none; a decision traced for its audit event passes `true` and is recorded as usual.
 */
export function* pipeline(e: Engine, req: GuardRequest, nowMs: number, trace?: TraceStep[], recordsUsage: boolean = trace === undefined): Step {
  const { p, decider, invoke } = e;
  const method = typeof req.method === 'string' ? upperCase(req.method) : '';
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
  // values of the registered checks: their failures are reported, never enforced; authentication, binding,
  // revocation and the policy's and the token's own constraints stay enforced, so trialling a rule never opens a path.
  const mode = routeMode(p, rule);
  const trial = mode === 'enforce' && rule?.mode === 'report-only';
  let ip: ParsedIp | null | undefined;
  let identity: TokenInfo | undefined;
  let ctx: Ctx | undefined;
  let run: Run | undefined;
  // A trace lists every check; otherwise only the slots with a value for this request run (see `unruled`).
  const phases = trace ? p.checks.phases : rule ? rule.checks.active : p.checks.unruled;

  try {
    ip = p.clientIp.resolve(req.remoteAddress, headers['x-forwarded-for']);
    if (p.preflight && method === 'OPTIONS' && isCorsPreflight(headers)) {
      return { decision: decider.decide(NO_REASONS, p.mode, undefined, {}, 'CORS preflight'), path, ip, identity };
    }
    // A public rule skips every check, policy-level IP and hours included: public means public.
    if (rule?.public) return { decision: decider.decide(NO_REASONS, mode, rule, {}), path, ip, identity };

    ctx = {
      request: req,
      method,
      path,
      headers,
      nowMs,
      ip,
      clockToleranceS: p.clockToleranceS,
      token: undefined,
      rawToken: undefined,
      scheme: undefined,
      trial,
      blocking: undefined,
      responseHeaders: {},
      store: e.checkStore,
      detail: undefined,
      notes: undefined,
    };
    run = newRun(ctx, rule, mode, trace);

    // Phase: pre-auth. Runs before the token is read, so a flood of bad tokens costs no verification or store call.
    for (let w = startPhase(run, 'pre-auth', phases['pre-auth'], undefined); w; ) w = resumePhase(run, 'pre-auth', phases['pre-auth'], undefined, yield w);
    if (ctx.blocking && mode === 'enforce') {
      return { decision: decorate(e, ctx, decider.decide(ctx.blocking as ReasonCode[], mode, rule, ctx.responseHeaders, ctx.detail)), path, ip, identity };
    }

    // Phase: authenticate. With a JWT verifier the token's syntax is checked only when its cache does not hold it
    // (a cached token passed that check): one cache read per request. Every other kind is checked first.
    const extracted = extractToken(headers, p.maxTokenBytes, e.jwt ? syntaxLater : undefined);
    if (typeof extracted === 'string') throw new Refusal(extracted);
    const { token } = extracted;
    ctx.scheme = extracted.scheme;
    ctx.rawToken = token;
    let holder: Holder;
    if (e.keys !== undefined && p.apiKeys !== undefined && hasApiKeyPrefix(token, p.apiKeys)) {
      if (e.jwt && !hasTokenSyntax(token)) throw new Refusal('request.malformed');
      const h = e.keys.authenticate(token, nowMs);
      holder = isThenable(h) ? ((yield h) as Holder) : h;
    } else if (e.introspector !== undefined && (e.jwt === undefined || !isJwtShaped(token))) {
      // Not an API key, and not a JWT this policy verifies itself: the authorization server says what it is.
      if (e.jwt && !hasTokenSyntax(token)) throw new Refusal('request.malformed');
      let v: IntrospectedToken | IntrospectionFailure | undefined = e.introspector.lookup(token, nowMs);
      if (v === undefined) v = (yield e.introspector.introspect(token, nowMs)) as IntrospectedToken | IntrospectionFailure;
      if ('reason' in v) throw new Refusal(v.reason, v.detail);
      holder = e.jwtHolder(v);
    } else if (!e.jwt) throw new Refusal('token.invalid', 'JWTs are not accepted by this policy');
    else {
      let v: VerifiedJwt | JwtFailure | undefined = e.jwt.lookup(token, nowMs);
      if (trace) trace.push({ phase: 'authenticate', step: 'jwt-cache', outcome: 'info', detail: v === undefined ? 'not cached: verified now' : 'cached verification' });
      if (v === undefined) {
        if (!hasTokenSyntax(token)) throw new Refusal('request.malformed');
        v = (yield e.jwt.verify(token, nowMs)) as VerifiedJwt | JwtFailure;
      }
      if ('reason' in v) throw new Refusal(v.reason, v.detail);
      holder = e.jwtHolder(v);
    }
    identity = holder.info;
    ctx.token = holder;
    // Deprecation / Sunset of a key in its rotation grace or near its maxAge (key-records.ts decides).
    if (holder.notices) Object.assign(ctx.responseHeaders, holder.notices);
    if (trace)
      trace.push({
        phase: 'authenticate',
        step: holder.record ? 'api-key' : holder.info.kind === 'opaque' ? 'introspection' : 'jwt',
        outcome: 'pass',
        detail: `token ${holder.info.id} of ${holder.info.subject}`,
      });

    // Phase: bind (proof of possession). A refusal here ends the evaluation.
    for (let w = startPhase(run, 'bind', phases.bind, undefined); w; ) w = resumePhase(run, 'bind', phases.bind, undefined, yield w);

    // Phase: revoke. What later checks will read from the store is fetched alongside (one round trip's wait).
    for (const slot of e.prefetchers) {
      const pre: unknown = slot.check.prefetch?.(ctx, slot.policy);
      // Awaited by its check, or abandoned by a refusal: never an unhandled rejection.
      if (isThenable(pre)) Promise.resolve(pre).catch(() => undefined);
      run.prefetched ??= [];
      run.prefetched[slot.index] = pre;
    }
    const revocationAnswer: unknown = invoke('getRevocation', holder.info.id, holder.info.subject, nowMs);
    const revocation = checkRevocationState(isThenable(revocationAnswer) ? yield revocationAnswer : revocationAnswer);
    if (isRevoked(revocation, holder.issuedAtMs, p.clockToleranceS * 1000)) throw new Refusal('token.revoked', revocationDetail(revocation));
    if (trace)
      trace.push({ phase: 'revoke', step: 'revocation', outcome: 'pass', detail: revocation ? 'store has a subject-wide revocation older than the token' : 'not revoked' });
    e.scopeSets.set(holder.info, holder.scopeSet);

    // Phase: constraints. An API key needs every slot (its record may have values of its own, or count uses).
    const record = holder.recordChecks;
    const valued = holder.record === undefined ? phases : p.checks.phases;
    for (let w = startPhase(run, 'constraints', valued.constraints, record); w; ) w = resumePhase(run, 'constraints', valued.constraints, record, yield w);
    let unmatchedDetail: string | undefined;
    if (!rule && p.unmatched === 'deny') {
      ctx.blocking = add(ctx.blocking as ReasonCode[] | undefined, 'rule.unmatched');
      unmatchedDetail = explainUnmatched(p.rules, method, path, cased);
    }

    // Phases: risk, then quota (counters and uses are only spent by requests that go through).
    for (let w = startPhase(run, 'risk', valued.risk, record); w; ) w = resumePhase(run, 'risk', valued.risk, record, yield w);
    for (let w = startPhase(run, 'quota', valued.quota, record); w; ) w = resumePhase(run, 'quota', valued.quota, record, yield w);

    // Phase: commit. What only a request nothing refused may spend (a DPoP proof's one use), taken last; only by
    // a check that kept a note of this request (nothing else to spend).
    if (ctx.blocking === undefined && ctx.notes !== undefined) {
      for (const slot of e.committers) {
        if (ctx.notes[slot.check.name] === undefined) continue;
        let r = slot.check.commit?.(ctx, slot.policy);
        if (isThenable(r)) r = (yield r) as ReasonCode | undefined;
        if (r) throw new Refusal(r, ctx.detail);
      }
    }

    // Phase: decide.
    const blocking = ctx.blocking as ReasonCode[] | undefined;
    const ruled = run.ruled;
    const enforced = blocking !== undefined || !trial || ruled === undefined;
    const reasons = trial && ruled ? [...(blocking ?? []), ...ruled] : (blocking ?? NO_REASONS);
    const detail = ctx.detail ?? (reasons[0] === 'rule.unmatched' ? unmatchedDetail : undefined);
    const decision = decider.decide(reasons, enforced ? mode : 'report-only', rule, ctx.responseHeaders, detail);
    decision.token = holder.info;
    decorate(e, ctx, decision);
    if (p.trackUsage && recordsUsage && passes(decision)) recordUsage(e.store, holder.info.id, nowMs, ip, headers);
    return { decision, path, ip, identity };
  } catch (err) {
    let d: Decision;
    let error: unknown;
    if (err instanceof Refusal) {
      if (ctx && identity === undefined) {
        for (const slot of phases['pre-auth']) if (slot.policy !== undefined) slot.check.onRefusal?.(ctx, slot.policy, err.reason);
      }
      if (trace)
        trace.push({
          phase: identity === undefined ? 'authenticate' : 'decide',
          step: 'refusal',
          outcome: 'fail',
          reason: err.reason,
          ...(err.detail !== undefined && { detail: err.detail }),
        });
      // A reason the pre-auth phase only reported (report-only) stays in the report.
      // Before a token is verified only the pre-auth checks write headers (their RateLimit budget): kept.
      const kept = ctx && identity === undefined ? ctx.responseHeaders : {};
      const blocking = ctx?.blocking as ReasonCode[] | undefined;
      d = decorate(e, ctx, decider.decide(blocking && identity === undefined ? [...blocking, err.reason] : [err.reason], mode, rule, kept, err.detail));
    } else {
      // A store failure, or a bug: either way the answer is 503 and never an allow.
      error = err;
      if (trace)
        trace.push({
          phase: 'decide',
          step: 'failure',
          outcome: 'fail',
          reason: 'store.unavailable',
          detail: err instanceof StoreFailure ? 'store call failed' : 'internal error',
        });
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
