// One evaluation of one request, as a state machine over the phases: pre-auth → authenticate → bind → revoke →
// constraints → risk → quota → commit → decide. It stops only where a store (or verifier) answers with a promise, so
// a fully synchronous path returns its Outcome at once, with no generator (one cost ≈ 0.14 of a cached decision).
// The evaluation is also the checks' context, the phases' state and the Outcome: one object a request, not four.
import type { ParsedIp } from '../leaf/ip.js';
import { passes } from '../leaf/http.js';
import type { Decision, GuardRequest, ReasonCode, TokenInfo, TraceStep } from '../leaf/types.js';
import type { CheckPhase, CheckStore } from '../checks/check.js';
import { isRevoked, revocationDetail } from '../checks/revocation.js';
import { bearerCandidate, hasTokenSyntax, readToken } from '../tokens/extract.js';
import { hasApiKeyPrefix } from '../tokens/api-key.js';
import type { JwtFailure, VerifiedJwt } from '../tokens/jwt.js';
import { isJwtShaped, type IntrospectedToken, type IntrospectionFailure } from '../tokens/introspection.js';
import { caseReading, explainUnmatched, type CompiledRule } from './rule-match.js';
import type { CheckSlot, PhaseSlots } from './registry.js';
import { NO_REASONS } from './decision.js';
import { passedBefore, rememberPass, type Holder } from './key-records.js';
import { Refusal } from './refusal.js';
import { checkRevocationState, isThenable, readRevocation, StoreFailure } from './store-calls.js';
import { add, commitNote, resumePhase, START, startPhase, type Run } from './phases.js';
import { authenticateKey, decorate, isCorsPreflight, recordRequestUsage, requestStore, routeMode, type Engine, type Outcome } from './engine.js';

/** For `readToken`: leave the token's syntax to the pipeline, which checks it where no cache vouches for it. */
const syntaxLater = (): boolean => true;

// Where an evaluation stands. Each `…_WAIT` state is where it waits for a promise; the others run on at once.
const PRE_AUTH = 0;
const PRE_AUTH_WAIT = 1;
const AUTHENTICATE = 2;
const KEY_WAIT = 3;
/** Waiting for a JWT's verification (a key fetch) or an opaque token's introspection. */
const VOUCH_WAIT = 4;
const AUTHENTICATED = 5;
const BIND = 6;
const BIND_WAIT = 7;
const REVOKE = 8;
const REVOKE_WAIT = 9;
const CONSTRAINTS = 10;
const CONSTRAINTS_WAIT = 11;
const RISK = 12;
const RISK_WAIT = 13;
const QUOTA = 14;
const QUOTA_WAIT = 15;
const COMMIT = 16;
const COMMIT_WAIT = 17;
const DECIDE = 18;

/**
 * One evaluation (see the top of this file): the checks' context, the phases' state (Run) and its Outcome. Every
 * field is set in the constructor, in one order, so every evaluation has one shape.
 */
export class Evaluation implements Run, Outcome {
  // ---- CheckContext: what the checks read ----
  readonly nowMs: number;
  ip: ParsedIp | null = null;
  readonly clockToleranceS: number;
  token: Holder | undefined = undefined;
  rawToken: string | undefined = undefined;
  scheme: 'bearer' | 'dpop' | undefined = undefined;
  readonly trial: boolean;
  blocking: readonly ReasonCode[] | undefined = undefined;
  readonly responseHeaders: Record<string, string> = {};
  readonly store: CheckStore;
  detail: string | undefined = undefined;
  skipped: string | undefined = undefined;
  notes: Record<string, unknown> | undefined = undefined;
  // ---- Run: where the running phase stands ----
  readonly mode: Decision['mode'];
  ruled: ReasonCode[] | undefined = undefined;
  prefetched: unknown[] | undefined = undefined;
  slot = 0;
  stage = START;
  before: string | undefined = undefined;
  level: TraceStep['level'] = undefined;
  r: ReasonCode | undefined = undefined;
  // ---- Outcome ----
  decision!: Decision;
  /** The authenticated token: set with the holder, which nothing reads before authentication has ended. */
  get identity(): TokenInfo | undefined {
    return this.token?.info;
  }
  error: unknown = undefined;
  // ---- the evaluation's own ----
  private at = PRE_AUTH;
  /** The slots each phase runs: every one under a trace; otherwise only those with a value (see `unruled`). */
  private readonly phases: PhaseSlots;
  /** The slots of the phases after authentication: every one for an API key (its record may have values). */
  private valued: PhaseSlots;
  /** Whether the request was read (the context is complete): a failure before that runs no check hook. */
  private read = false;
  private unmatchedDetail: string | undefined = undefined;
  private committed = 0;
  /** Whether the token passed this rule's checks before and they are skipped (see `Check.memo`). */
  private memo = false;
  constructor(
    private readonly e: Engine,
    readonly request: GuardRequest,
    nowMs: number,
    readonly trace: TraceStep[] | undefined,
    private readonly recordsUsage: boolean,
    readonly method: string,
    readonly path: string,
    readonly headers: GuardRequest['headers'],
    readonly rule: CompiledRule | undefined,
  ) {
    // A rule in enforce mode enforces everything, even under a report-only policy. A report-only rule under an
    // enforcing policy trials only its own values; everything else stays enforced, so trialling never opens a path.
    const p = e.p;
    this.nowMs = nowMs;
    this.clockToleranceS = p.clockToleranceS;
    this.store = requestStore(e.checkStore, request);
    this.mode = routeMode(p, rule);
    this.trial = this.mode === 'enforce' && rule?.mode === 'report-only';
    this.phases = trace ? p.checks.phases : rule ? rule.checks.active : p.checks.unruled;
    this.valued = this.phases;
  }

  /** Ends the evaluation with `decision` (and the error that caused it, for a failure). */
  private outcome(decision: Decision, error?: unknown): Outcome {
    this.decision = decision;
    if (error !== undefined) this.error = error;
    return this;
  }

  /** Starts the evaluation: its Outcome, or the promise it waits for first (then `step` with its answer). */
  start(): Outcome | PromiseLike<unknown> {
    const { e, request, method, headers, rule } = this;
    const p = e.p;
    try {
      this.ip = p.clientIp.resolve(request.remoteAddress, headers['x-forwarded-for']);
      if (p.preflight && method === 'OPTIONS' && isCorsPreflight(headers)) {
        return this.outcome(e.decider.decide(NO_REASONS, p.mode, undefined, this.responseHeaders, 'CORS preflight'));
      }
      // A public rule skips every check, policy-level IP and hours included: public means public.
      if (rule?.public) return this.outcome(e.decider.decide(NO_REASONS, this.mode, rule, this.responseHeaders));
      this.read = true;
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
    let w: PromiseLike<unknown> | undefined;
    for (;;) {
      switch (this.at) {
        // Phase: pre-auth. Runs before the token is read, so a flood of bad tokens costs no verification or store call.
        case PRE_AUTH:
        case PRE_AUTH_WAIT:
          w = this.phase('pre-auth', this.phases['pre-auth'], undefined, this.at === PRE_AUTH_WAIT, answer);
          if (w) return this.wait(PRE_AUTH_WAIT, w);
          this.at = AUTHENTICATE;
          break;

        // Phase: authenticate. With a JWT verifier the token's syntax is checked only when its cache does not hold
        // it (a cached token passed that check): one cache read per request. Every other kind is checked first.
        case AUTHENTICATE: {
          if (this.blocking && this.mode === 'enforce') {
            return this.outcome(decorate(e, this, e.decider.decide(this.blocking as ReasonCode[], this.mode, this.rule, this.responseHeaders, this.detail)));
          }
          const refused = readToken(this, this.headers, p.maxTokenBytes, e.jwt ? syntaxLater : undefined);
          if (refused !== undefined) throw new Refusal(refused);
          const token = this.rawToken as string;
          if (e.keys !== undefined && p.apiKeys !== undefined && hasApiKeyPrefix(token, p.apiKeys)) {
            if (e.jwt && !hasTokenSyntax(token)) throw new Refusal('request.malformed');
            const h = authenticateKey(e.keys, this.store, token, nowMs);
            if (isThenable(h)) return this.wait(KEY_WAIT, h);
            this.token = h;
            this.at = AUTHENTICATED;
          } else if (e.introspector !== undefined && (e.jwt === undefined || !isJwtShaped(token))) {
            // Not an API key, and not a JWT this policy verifies itself: the authorization server says what it is.
            if (e.jwt && !hasTokenSyntax(token)) throw new Refusal('request.malformed');
            const v = e.introspector.lookup(token, nowMs);
            if (v === undefined) return this.wait(VOUCH_WAIT, e.introspector.introspect(token, nowMs));
            this.vouched(v);
          } else if (!e.jwt) throw new Refusal('token.invalid', 'JWTs are not accepted by this policy');
          else {
            let v = e.jwt.lookup(token, nowMs);
            if (trace) trace.push({ phase: 'authenticate', step: 'jwt-cache', outcome: 'info', detail: v === undefined ? 'not cached: verified now' : 'cached verification' });
            if (v === undefined) {
              if (!hasTokenSyntax(token)) throw new Refusal('request.malformed');
              // Synchronous when the key is at hand (a local key, or a fetched JWK Set): no promise then.
              // The header goes with it: a Bearer header equal to this one finds the verification whole (lookupHeader).
              const checked = e.jwt.verify(token, nowMs, bearerCandidate(this.headers));
              if (isThenable(checked)) return this.wait(VOUCH_WAIT, checked);
              v = checked;
            }
            this.vouched(v);
          }
          break;
        }
        case KEY_WAIT:
          this.token = answer as Holder;
          this.at = AUTHENTICATED;
          break;
        case VOUCH_WAIT:
          this.vouched(answer as VerifiedJwt | JwtFailure | IntrospectedToken | IntrospectionFailure);
          break;
        case AUTHENTICATED: {
          const holder = this.token as Holder;
          // An API key needs every slot after this (its record may have values of its own, or count uses).
          if (holder.record !== undefined) this.valued = p.checks.phases;
          // Deprecation / Sunset of a key in its rotation grace or near its maxAge (key-records.ts decides).
          if (holder.notices) Object.assign(this.responseHeaders, holder.notices);
          if (trace) {
            const step = holder.record ? 'api-key' : holder.info.kind === 'opaque' ? 'introspection' : 'jwt';
            trace.push({ phase: 'authenticate', step, outcome: 'pass', detail: `token ${holder.info.id} of ${holder.info.subject}` });
          }
          // Passed this rule's checks before (Check.memo): revocation and the decision only. A trace runs every check.
          this.memo = trace === undefined && passedBefore(holder, this.rule, this.scheme);
          this.at = this.memo ? REVOKE : BIND;
          break;
        }

        // Phase: bind (proof of possession). A refusal here ends the evaluation.
        case BIND:
        case BIND_WAIT:
          w = this.phase('bind', this.phases.bind, undefined, this.at === BIND_WAIT, answer);
          if (w) return this.wait(BIND_WAIT, w);
          this.at = REVOKE;
          break;

        // Phase: revoke. What later checks will read from the store is fetched alongside (one round trip's wait).
        case REVOKE: {
          const holder = this.token as Holder;
          const info = holder.info;
          for (const slot of e.prefetchers) {
            const pre: unknown = slot.check.prefetch?.(this, slot.policy);
            if (pre === undefined) continue;
            // Awaited by its check, or abandoned by a refusal: never an unhandled rejection.
            if (isThenable(pre)) Promise.resolve(pre).catch(() => undefined);
            this.prefetched ??= [];
            this.prefetched[slot.index] = pre;
          }
          const revocation: unknown = readRevocation(e.invoke, info.id, info.subject, holder.subjectKey, nowMs);
          if (isThenable(revocation)) return this.wait(REVOKE_WAIT, revocation);
          this.revocation(revocation);
          break;
        }
        case REVOKE_WAIT:
          this.revocation(answer);
          break;

        // Phase: constraints.
        case CONSTRAINTS:
        case CONSTRAINTS_WAIT:
          w = this.phase('constraints', this.valued.constraints, (this.token as Holder).recordChecks, this.at === CONSTRAINTS_WAIT, answer);
          if (w) return this.wait(CONSTRAINTS_WAIT, w);
          this.constrained();
          break;

        // Phases: risk, then quota (counters and uses are only spent by requests that go through).
        case RISK:
        case RISK_WAIT:
          w = this.phase('risk', this.valued.risk, (this.token as Holder).recordChecks, this.at === RISK_WAIT, answer);
          if (w) return this.wait(RISK_WAIT, w);
          this.at = QUOTA;
          break;
        case QUOTA:
        case QUOTA_WAIT:
          w = this.phase('quota', this.valued.quota, (this.token as Holder).recordChecks, this.at === QUOTA_WAIT, answer);
          if (w) return this.wait(QUOTA_WAIT, w);
          this.at = COMMIT;
          break;

        // Phase: commit. What only a request nothing refused may spend (a DPoP proof's one use), taken last; only by
        // a check that kept a note of this request (nothing else to spend).
        case COMMIT_WAIT:
          if (trace) commitNote(this, e.committers[this.committed] as CheckSlot, answer as ReasonCode | undefined);
          if (answer) throw new Refusal(answer as ReasonCode, this.detail);
          this.committed++;
          this.at = COMMIT;
          break;
        case COMMIT: {
          this.at = DECIDE;
          if (this.blocking !== undefined || this.notes === undefined) break;
          const committers = e.committers;
          for (; this.committed < committers.length; this.committed++) {
            const slot = committers[this.committed] as CheckSlot;
            if (this.notes[slot.check.name] === undefined) continue;
            this.skipped = undefined;
            const r = slot.check.commit?.(this, slot.policy);
            if (isThenable(r)) return this.wait(COMMIT_WAIT, r);
            if (trace) commitNote(this, slot, r);
            if (r) throw new Refusal(r, this.detail);
          }
          break;
        }

        // Phase: decide.
        default:
          return this.decided();
      }
    }
  }

  /** Takes over a memoised request (pipeline.ts) at the revocation answer it read: the Outcome, or the promise to wait for. */
  revocationAnswered(holder: Holder, token: string, scheme: Evaluation['scheme'], ip: ParsedIp | null, answer: unknown, failed: boolean): Outcome | PromiseLike<unknown> {
    this.ip = ip;
    this.read = true;
    this.token = holder;
    this.rawToken = token;
    this.scheme = scheme;
    this.memo = true;
    this.at = REVOKE_WAIT;
    return !failed && isThenable(answer) ? answer : this.step(answer, failed);
  }

  /** Runs one phase's slots, or (`resuming`) goes on with them once the promise it waited for answered. */
  private phase(phase: CheckPhase, slots: readonly CheckSlot[], record: readonly unknown[] | undefined, resuming: boolean, answer: unknown): PromiseLike<unknown> | undefined {
    return resuming ? resumePhase(this, phase, slots, record, answer) : startPhase(this, phase, slots, record);
  }

  private wait(at: number, w: PromiseLike<unknown>): PromiseLike<unknown> {
    this.at = at;
    return w;
  }

  /** A JWT's verification or an opaque token's introspection: its holder, or the refusal. */
  private vouched(v: VerifiedJwt | JwtFailure | IntrospectedToken | IntrospectionFailure): void {
    if ('reason' in v) throw new Refusal(v.reason, v.detail);
    this.token = this.e.jwtHolder(v);
    this.at = AUTHENTICATED;
  }

  private revocation(answer: unknown): void {
    const holder = this.token as Holder;
    const revocation = checkRevocationState(answer);
    if (isRevoked(revocation, holder.issuedAtMs, this.e.p.clockToleranceS * 1000)) throw new Refusal('token.revoked', revocationDetail(revocation));
    const detail = revocation ? 'store has a subject-wide revocation older than the token' : 'not revoked';
    if (this.trace) this.trace.push({ phase: 'revoke', step: 'revocation', outcome: 'pass', detail });
    if (!holder.granted) {
      this.e.scopeSets.set(holder.info, holder.scopeSet);
      holder.granted = true;
    }
    this.at = this.memo ? COMMIT : CONSTRAINTS;
  }

  private constrained(): void {
    const { e, rule, method, path } = this;
    if (!rule && e.p.unmatched === 'deny') {
      this.blocking = add(this.blocking as ReasonCode[] | undefined, 'rule.unmatched');
      this.unmatchedDetail = explainUnmatched(e.p.rules, method, path, caseReading(this.request));
    }
    this.at = RISK;
  }

  private decided(): Outcome {
    const { e, trial, mode } = this;
    const holder = this.token as Holder;
    const blocking = this.blocking as ReasonCode[] | undefined;
    const ruled = this.ruled;
    const enforced = blocking !== undefined || !trial || ruled === undefined;
    const reasons = trial && ruled ? [...(blocking ?? []), ...ruled] : (blocking ?? NO_REASONS);
    const detail = this.detail ?? (reasons[0] === 'rule.unmatched' ? this.unmatchedDetail : undefined);
    const decision = e.decider.decide(reasons, enforced ? mode : 'report-only', this.rule, this.responseHeaders, detail);
    decision.token = holder.info;
    if (!this.memo && reasons.length === 0 && !this.trace && !this.notes) rememberPass(holder, this.rule, this);
    decorate(e, this, decision);
    if (e.p.trackUsage && this.recordsUsage && passes(decision)) recordRequestUsage(e, this.request, holder, this.nowMs, this.ip, this.headers);
    return this.outcome(decision);
  }

  /** A refusal, a store failure or a bug: the decision it ends with (a failure is 503, never an allow). */
  private failed(err: unknown): Outcome {
    const { e, trace, identity, mode, rule } = this;
    const ctx = this.read ? this : undefined;
    if (err instanceof Refusal) {
      if (ctx && identity === undefined) {
        for (const slot of e.p.checks.phases['pre-auth']) if (slot.policy !== undefined) slot.check.onRefusal?.(ctx, slot.policy, err.reason);
      }
      const refused = identity === undefined ? 'authenticate' : 'decide';
      if (trace) trace.push({ phase: refused, step: 'refusal', outcome: 'fail', reason: err.reason, ...(err.detail !== undefined && { detail: err.detail }) });
      // A reason the pre-auth phase only reported (report-only) stays in the report.
      // Before a token is verified only the pre-auth checks write headers (their RateLimit budget): kept.
      const kept = ctx && identity === undefined ? ctx.responseHeaders : {};
      const blocking = ctx?.blocking as ReasonCode[] | undefined;
      return this.outcome(decorate(e, ctx, e.decider.decide(blocking && identity === undefined ? [...blocking, err.reason] : [err.reason], mode, rule, kept, err.detail)));
    }
    // Neither a failed authentication nor a pass: a pre-auth check holding the attempt hands it back (settling twice is a no-op).
    if (ctx) for (const slot of e.p.checks.phases['pre-auth']) if (slot.policy !== undefined) slot.check.onRefusal?.(ctx, slot.policy, 'store.unavailable');
    const what = err instanceof StoreFailure ? 'store call failed' : 'internal error';
    if (trace) trace.push({ phase: 'decide', step: 'failure', outcome: 'fail', reason: 'store.unavailable', detail: what });
    return this.outcome(e.decider.decide(['store.unavailable'], mode, rule, {}, what), err);
  }
}
