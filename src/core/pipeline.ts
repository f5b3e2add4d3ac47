// The evaluation as phases over the check registry: pre-auth → authenticate → bind → revoke → constraints →
// risk → quota → commit → decide. The registered checks run in their phase (startPhase: the policy's value and a
// key record's refuse, a rule's own is trialled under the rule's report-only); authentication and revocation are
// the engine's own steps. Written as a state machine (Evaluation) that stops only when a store (or verifier)
// answers with a promise, so a fully synchronous path returns a Decision at once, with no generator (one cost
// ≈ 0.14 of a cached decision); the phases themselves are plain loops (startPhase) that allocate nothing.
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
import type { CheckSlot, PhaseSlots } from './registry.js';
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

// Where an evaluation stands. Each `…_WAIT` state is where it waits for a promise; the others run on at once.
const PRE_AUTH = 0;
const PRE_AUTH_WAIT = 1;
const AUTHENTICATE = 2;
const KEY_WAIT = 3;
const INTROSPECT_WAIT = 4;
const JWT_WAIT = 5;
const AUTHENTICATED = 6;
const BIND = 7;
const BIND_WAIT = 8;
const REVOKE = 9;
const REVOKE_WAIT = 10;
const CONSTRAINTS = 11;
const CONSTRAINTS_WAIT = 12;
const RISK = 13;
const RISK_WAIT = 14;
const QUOTA = 15;
const QUOTA_WAIT = 16;
const COMMIT = 17;
const COMMIT_WAIT = 18;
const DECIDE = 19;

/**
 * One evaluation, as a state machine that stops only where a store (or verifier) answers with a promise: a fully
 * synchronous path returns its Outcome at once, with no generator, promise or closure allocated for it.
 */
class Evaluation {
  private at = PRE_AUTH;
  private readonly mode: Decision['mode'];
  private readonly trial: boolean;
  /** The slots each phase runs: every one under a trace; otherwise only those with a value (see `unruled`). */
  private readonly phases: PhaseSlots;
  /** The slots of the phases after authentication: every one for an API key (its record may have values). */
  private valued: PhaseSlots;
  private ip: ParsedIp | null | undefined;
  private identity: TokenInfo | undefined;
  private ctx: Ctx | undefined;
  private run: Run | undefined;
  private token = '';
  private holder: Holder | undefined;
  private unmatchedDetail: string | undefined;
  private committed = 0;

  constructor(
    private readonly e: Engine,
    private readonly req: GuardRequest,
    private readonly nowMs: number,
    private readonly trace: TraceStep[] | undefined,
    private readonly recordsUsage: boolean,
    private readonly method: string,
    private readonly path: string,
    private readonly headers: GuardRequest['headers'],
    private readonly rule: CompiledRule | undefined,
  ) {
    // A rule in enforce mode enforces everything on its requests, even under a report-only policy ("trial
    // everything but keep /admin enforced"). A rule in report-only under an enforcing policy trials only its own
    // values of the registered checks: their failures are reported, never enforced; authentication, binding,
    // revocation and the policy's and the token's own constraints stay enforced, so trialling a rule never opens a path.
    const p = e.p;
    this.mode = routeMode(p, rule);
    this.trial = this.mode === 'enforce' && rule?.mode === 'report-only';
    this.phases = trace ? p.checks.phases : rule ? rule.checks.active : p.checks.unruled;
    this.valued = this.phases;
  }

  private outcome(decision: Decision, error?: unknown): Outcome {
    const o: Outcome = { decision, path: this.path, ip: this.ip, identity: this.identity };
    if (error !== undefined) o.error = error;
    return o;
  }

  /** Starts the evaluation: its Outcome, or the promise it waits for first (then `step` with its answer). */
  start(): Outcome | PromiseLike<unknown> {
    const { e, req, method, headers, rule } = this;
    const p = e.p;
    try {
      this.ip = p.clientIp.resolve(req.remoteAddress, headers['x-forwarded-for']);
      if (p.preflight && method === 'OPTIONS' && isCorsPreflight(headers)) {
        return this.outcome(e.decider.decide(NO_REASONS, p.mode, undefined, {}, 'CORS preflight'));
      }
      // A public rule skips every check, policy-level IP and hours included: public means public.
      if (rule?.public) return this.outcome(e.decider.decide(NO_REASONS, this.mode, rule, {}));
      this.ctx = {
        request: req,
        method,
        path: this.path,
        headers,
        nowMs: this.nowMs,
        ip: this.ip,
        clockToleranceS: p.clockToleranceS,
        token: undefined,
        rawToken: undefined,
        scheme: undefined,
        trial: this.trial,
        blocking: undefined,
        responseHeaders: {},
        store: e.checkStore,
        detail: undefined,
        notes: undefined,
      };
      this.run = newRun(this.ctx, rule, this.mode, this.trace);
    } catch (err) {
      return this.failed(err);
    }
    return this.step(undefined, false);
  }

  /** Goes on from where the evaluation stands; `answer` is what it waited for (`failed`: the promise rejected). */
  step(answer: unknown, failed: boolean): Outcome | PromiseLike<unknown> {
    try {
      if (failed) throw answer;
      return this.advance(answer);
    } catch (err) {
      return this.failed(err);
    }
  }

  /** The phases, from `at` on. */
  private advance(answer: unknown): Outcome | PromiseLike<unknown> {
    const { e, trace, nowMs } = this;
    const p = e.p;
    const ctx = this.ctx as Ctx;
    const run = this.run as Run;
    let w: PromiseLike<unknown> | undefined;
    for (;;) {
      switch (this.at) {
        // Phase: pre-auth. Runs before the token is read, so a flood of bad tokens costs no verification or store call.
        case PRE_AUTH:
          w = startPhase(run, 'pre-auth', this.phases['pre-auth'], undefined);
          if (w) return this.wait(PRE_AUTH_WAIT, w);
          this.at = AUTHENTICATE;
          break;
        case PRE_AUTH_WAIT:
          w = resumePhase(run, 'pre-auth', this.phases['pre-auth'], undefined, answer);
          if (w) return w;
          this.at = AUTHENTICATE;
          break;

        // Phase: authenticate. With a JWT verifier the token's syntax is checked only when its cache does not hold
        // it (a cached token passed that check): one cache read per request. Every other kind is checked first.
        case AUTHENTICATE: {
          if (ctx.blocking && this.mode === 'enforce') {
            return this.outcome(decorate(e, ctx, e.decider.decide(ctx.blocking as ReasonCode[], this.mode, this.rule, ctx.responseHeaders, ctx.detail)));
          }
          const extracted = extractToken(this.headers, p.maxTokenBytes, e.jwt ? syntaxLater : undefined);
          if (typeof extracted === 'string') throw new Refusal(extracted);
          const token = extracted.token;
          this.token = token;
          ctx.scheme = extracted.scheme;
          ctx.rawToken = token;
          if (e.keys !== undefined && p.apiKeys !== undefined && hasApiKeyPrefix(token, p.apiKeys)) {
            if (e.jwt && !hasTokenSyntax(token)) throw new Refusal('request.malformed');
            const h = e.keys.authenticate(token, nowMs);
            if (isThenable(h)) return this.wait(KEY_WAIT, h);
            this.holder = h;
            this.at = AUTHENTICATED;
          } else if (e.introspector !== undefined && (e.jwt === undefined || !isJwtShaped(token))) {
            // Not an API key, and not a JWT this policy verifies itself: the authorization server says what it is.
            if (e.jwt && !hasTokenSyntax(token)) throw new Refusal('request.malformed');
            const v = e.introspector.lookup(token, nowMs);
            if (v === undefined) return this.wait(INTROSPECT_WAIT, e.introspector.introspect(token, nowMs));
            this.introspected(v);
          } else if (!e.jwt) throw new Refusal('token.invalid', 'JWTs are not accepted by this policy');
          else {
            let v = e.jwt.lookup(token, nowMs);
            if (trace) trace.push({ phase: 'authenticate', step: 'jwt-cache', outcome: 'info', detail: v === undefined ? 'not cached: verified now' : 'cached verification' });
            if (v === undefined) {
              if (!hasTokenSyntax(token)) throw new Refusal('request.malformed');
              // Synchronous when the key is at hand (a local key, or a fetched JWK Set): no promise then.
              const checked = e.jwt.verify(token, nowMs);
              if (isThenable(checked)) return this.wait(JWT_WAIT, checked);
              v = checked;
            }
            this.verified(v);
          }
          break;
        }
        case KEY_WAIT:
          this.holder = answer as Holder;
          this.at = AUTHENTICATED;
          break;
        case INTROSPECT_WAIT:
          this.introspected(answer as IntrospectedToken | IntrospectionFailure);
          break;
        case JWT_WAIT:
          this.verified(answer as VerifiedJwt | JwtFailure);
          break;
        case AUTHENTICATED: {
          const holder = this.holder as Holder;
          this.identity = holder.info;
          ctx.token = holder;
          // An API key needs every slot after this (its record may have values of its own, or count uses).
          if (holder.record !== undefined) this.valued = p.checks.phases;
          // Deprecation / Sunset of a key in its rotation grace or near its maxAge (key-records.ts decides).
          if (holder.notices) Object.assign(ctx.responseHeaders, holder.notices);
          if (trace)
            trace.push({
              phase: 'authenticate',
              step: holder.record ? 'api-key' : holder.info.kind === 'opaque' ? 'introspection' : 'jwt',
              outcome: 'pass',
              detail: `token ${holder.info.id} of ${holder.info.subject}`,
            });
          this.at = BIND;
          break;
        }

        // Phase: bind (proof of possession). A refusal here ends the evaluation.
        case BIND:
          w = startPhase(run, 'bind', this.phases.bind, undefined);
          if (w) return this.wait(BIND_WAIT, w);
          this.at = REVOKE;
          break;
        case BIND_WAIT:
          w = resumePhase(run, 'bind', this.phases.bind, undefined, answer);
          if (w) return w;
          this.at = REVOKE;
          break;

        // Phase: revoke. What later checks will read from the store is fetched alongside (one round trip's wait).
        case REVOKE: {
          const info = (this.holder as Holder).info;
          for (const slot of e.prefetchers) {
            const pre: unknown = slot.check.prefetch?.(ctx, slot.policy);
            // Awaited by its check, or abandoned by a refusal: never an unhandled rejection.
            if (isThenable(pre)) Promise.resolve(pre).catch(() => undefined);
            run.prefetched ??= [];
            run.prefetched[slot.index] = pre;
          }
          const revocation: unknown = e.invoke('getRevocation', info.id, info.subject, nowMs);
          if (isThenable(revocation)) return this.wait(REVOKE_WAIT, revocation);
          this.revocation(revocation);
          break;
        }
        case REVOKE_WAIT:
          this.revocation(answer);
          break;

        // Phase: constraints.
        case CONSTRAINTS:
          w = startPhase(run, 'constraints', this.valued.constraints, (this.holder as Holder).recordChecks);
          if (w) return this.wait(CONSTRAINTS_WAIT, w);
          this.constrained();
          break;
        case CONSTRAINTS_WAIT:
          w = resumePhase(run, 'constraints', this.valued.constraints, (this.holder as Holder).recordChecks, answer);
          if (w) return w;
          this.constrained();
          break;

        // Phases: risk, then quota (counters and uses are only spent by requests that go through).
        case RISK:
          w = startPhase(run, 'risk', this.valued.risk, (this.holder as Holder).recordChecks);
          if (w) return this.wait(RISK_WAIT, w);
          this.at = QUOTA;
          break;
        case RISK_WAIT:
          w = resumePhase(run, 'risk', this.valued.risk, (this.holder as Holder).recordChecks, answer);
          if (w) return w;
          this.at = QUOTA;
          break;
        case QUOTA:
          w = startPhase(run, 'quota', this.valued.quota, (this.holder as Holder).recordChecks);
          if (w) return this.wait(QUOTA_WAIT, w);
          this.at = COMMIT;
          break;
        case QUOTA_WAIT:
          w = resumePhase(run, 'quota', this.valued.quota, (this.holder as Holder).recordChecks, answer);
          if (w) return w;
          this.at = COMMIT;
          break;

        // Phase: commit. What only a request nothing refused may spend (a DPoP proof's one use), taken last; only by
        // a check that kept a note of this request (nothing else to spend).
        case COMMIT_WAIT:
          if (answer) throw new Refusal(answer as ReasonCode, ctx.detail);
          this.committed++;
          this.at = COMMIT;
          break;
        case COMMIT: {
          this.at = DECIDE;
          if (ctx.blocking !== undefined || ctx.notes === undefined) break;
          const committers = e.committers;
          for (; this.committed < committers.length; this.committed++) {
            const slot = committers[this.committed] as CheckSlot;
            if (ctx.notes[slot.check.name] === undefined) continue;
            const r = slot.check.commit?.(ctx, slot.policy);
            if (isThenable(r)) return this.wait(COMMIT_WAIT, r);
            if (r) throw new Refusal(r, ctx.detail);
          }
          break;
        }

        // Phase: decide.
        default:
          return this.decided();
      }
    }
  }

  private wait(at: number, w: PromiseLike<unknown>): PromiseLike<unknown> {
    this.at = at;
    return w;
  }

  private verified(v: VerifiedJwt | JwtFailure): void {
    if ('reason' in v) throw new Refusal(v.reason, v.detail);
    this.holder = this.e.jwtHolder(v);
    this.at = AUTHENTICATED;
  }

  private introspected(v: IntrospectedToken | IntrospectionFailure): void {
    if ('reason' in v) throw new Refusal(v.reason, v.detail);
    this.holder = this.e.jwtHolder(v);
    this.at = AUTHENTICATED;
  }

  private revocation(answer: unknown): void {
    const holder = this.holder as Holder;
    const revocation = checkRevocationState(answer);
    if (isRevoked(revocation, holder.issuedAtMs, this.e.p.clockToleranceS * 1000)) throw new Refusal('token.revoked', revocationDetail(revocation));
    if (this.trace)
      this.trace.push({
        phase: 'revoke',
        step: 'revocation',
        outcome: 'pass',
        detail: revocation ? 'store has a subject-wide revocation older than the token' : 'not revoked',
      });
    if (!holder.granted) {
      this.e.scopeSets.set(holder.info, holder.scopeSet);
      holder.granted = true;
    }
    this.at = CONSTRAINTS;
  }

  private constrained(): void {
    const { e, rule, method, path } = this;
    if (!rule && e.p.unmatched === 'deny') {
      const ctx = this.ctx as Ctx;
      ctx.blocking = add(ctx.blocking as ReasonCode[] | undefined, 'rule.unmatched');
      this.unmatchedDetail = explainUnmatched(e.p.rules, method, path, this.req.caseSensitive === true);
    }
    this.at = RISK;
  }

  private decided(): Outcome {
    const { e, trial, mode } = this;
    const ctx = this.ctx as Ctx;
    const holder = this.holder as Holder;
    const blocking = ctx.blocking as ReasonCode[] | undefined;
    const ruled = (this.run as Run).ruled;
    const enforced = blocking !== undefined || !trial || ruled === undefined;
    const reasons = trial && ruled ? [...(blocking ?? []), ...ruled] : (blocking ?? NO_REASONS);
    const detail = ctx.detail ?? (reasons[0] === 'rule.unmatched' ? this.unmatchedDetail : undefined);
    const decision = e.decider.decide(reasons, enforced ? mode : 'report-only', this.rule, ctx.responseHeaders, detail);
    decision.token = holder.info;
    decorate(e, ctx, decision);
    if (e.p.trackUsage && this.recordsUsage && passes(decision)) recordUsage(e.store, holder.info.id, this.nowMs, this.ip, this.headers);
    return this.outcome(decision);
  }

  /** A refusal, a store failure or a bug: the decision it ends with (a failure is 503, never an allow). */
  private failed(err: unknown): Outcome {
    const { e, ctx, trace, identity, mode, rule } = this;
    if (err instanceof Refusal) {
      if (ctx && identity === undefined) {
        for (const slot of e.p.checks.phases['pre-auth']) if (slot.policy !== undefined) slot.check.onRefusal?.(ctx, slot.policy, err.reason);
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
      return this.outcome(decorate(e, ctx, e.decider.decide(blocking && identity === undefined ? [...blocking, err.reason] : [err.reason], mode, rule, kept, err.detail)));
    }
    const what = err instanceof StoreFailure ? 'store call failed' : 'internal error';
    if (trace) trace.push({ phase: 'decide', step: 'failure', outcome: 'fail', reason: 'store.unavailable', detail: what });
    return this.outcome(e.decider.decide(['store.unavailable'], mode, rule, {}, what), err);
  }
}

/**
 * One evaluation: its Outcome, synchronously while nothing it waits for is a promise (a cached token against a
 * synchronous store gives its Decision with no microtask), else a promise of it. Never throws, never rejects.
 * With `trace`, records every step in it. `recordsUsage`: whether an allowed request's use is recorded
 * (`trackUsage`). Default: only without a trace, so `guard.explain` records none; a decision traced for its audit
 * event passes `true` and is recorded as usual.
 */
export function pipeline(e: Engine, req: GuardRequest, nowMs: number, trace?: TraceStep[], recordsUsage: boolean = trace === undefined): Outcome | Promise<Outcome> {
  const p = e.p;
  const method = typeof req.method === 'string' ? upperCase(req.method) : '';
  const rawPath = typeof req.path === 'string' ? req.path : '';
  const path = normalizePath(rawPath);
  const headers = req.headers && typeof req.headers === 'object' ? req.headers : {};
  if (path === null || method === '') {
    const d = e.decider.decide(['request.malformed'], p.mode, undefined, {}, 'unreadable request path or method');
    return { decision: d, path: rawPath.slice(0, 256).split('?')[0] ?? '', ip: undefined, identity: undefined };
  }
  const rule = matchRule(p.rules, method, path, req.caseSensitive === true);
  const ev = new Evaluation(e, req, nowMs, trace, recordsUsage, method, path, headers, rule);
  const r = ev.start();
  return isThenable(r) ? waitFor(ev, r) : r;
}

function waitFor(ev: Evaluation, pending: PromiseLike<unknown>): Promise<Outcome> {
  return Promise.resolve(pending).then(
    (value) => next(ev, ev.step(value, false)),
    (error: unknown) => next(ev, ev.step(error, true)),
  );
}

const next = (ev: Evaluation, r: Outcome | PromiseLike<unknown>): Outcome | Promise<Outcome> => (isThenable(r) ? waitFor(ev, r) : r);

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
