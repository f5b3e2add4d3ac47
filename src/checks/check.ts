// The one shape every registered check has: the policy slice it owns (keys, schema, compile step), the reason
// codes it can return, and `check(ctx, compiled) → reason | undefined`. The engine (core/registry.ts) runs them;
// a check is registered by one line in checks/registered.ts.
import type { ZodType } from 'zod';
import type { ParsedIp } from '../leaf/ip.js';
import type { ReasonInfo } from '../leaf/reasons.js';
import type { ApiKeyRecord, ClaimOptions, ClaimQuery, RateLimitCheck, RateLimitResult, TokenUsage } from '../leaf/store.js';
import type { Confirmation } from '../leaf/confirmation.js';
import type { Decision, GuardRequest, ReasonCode, TokenInfo } from '../leaf/types.js';
import type { AuthenticationFacts } from './step-up.js';

/**
 * When a check runs, in this order around the engine's own steps (authenticate after `pre-auth`, revocation
 * after `bind`, the decision after `quota`):
 * - `pre-auth`: before the token is read or verified (no store call per guess);
 * - `bind`: once the token is verified: proof of possession; a refusal here ends the evaluation;
 * - `constraints`: once the token is bound and not revoked;
 * - `risk`: scoring, after every constraint (it may read what they refused);
 * - `quota`: counters and uses, spent only by requests nothing refused (or under report-only).
 */
export type CheckPhase = 'pre-auth' | 'bind' | 'constraints' | 'risk' | 'quota';

/** The phases in run order. */
export const CHECK_PHASES: readonly CheckPhase[] = ['pre-auth', 'bind', 'constraints', 'risk', 'quota'];

/** The verified token as the checks see it. */
export interface CheckedToken {
  readonly info: TokenInfo;
  readonly scopeSet: ReadonlySet<string>;
  readonly facts: AuthenticationFacts;
  /** The API key record, for API keys. */
  readonly record: ApiKeyRecord | undefined;
  /** The token's confirmation (`cnf`): what it is bound to. */
  readonly cnf: Confirmation | undefined;
  /**
   * A JWT's subject under its own issuer configuration (`isub:<name>:<sub>`) when the policy has several: its by-subject
   * counters, and the revocations of that issuer's subject alone (read beside the shared `sub`). Undefined otherwise.
   */
  readonly subjectKey: string | undefined;
}

/**
 * The store calls a check may make: answers checked for shape by the engine (a wrong shape, a throw, a
 * rejection or a timeout becomes a store failure, which answers 503), synchronous when the store is. Call them on
 * the store (`ctx.store.consume(…)`), never detached: a request an adapter made has a store of its own, which
 * gives a second evaluation of that request (one guard mounted twice on its way) what the first one spent.
 */
export interface CheckStore {
  /**
   * False under `guard.explain(request, { spend: false })`: nothing may be spent. Uses and claims are then answered
   * from what the store holds, without taking them, and rate-limit counters are peeked at (`peekRateLimit`); a check
   * that cannot read without spending (a counter of a store without a peek) says it was not checked.
   */
  readonly spends: boolean;
  consume(tokenId: string, limits: readonly RateLimitCheck[], nowMs: number): RateLimitResult | PromiseLike<RateLimitResult>;
  /** What `consume` would answer, charging nothing; undefined when the store cannot tell (`peekRateLimit` is optional). */
  readonly peekRateLimit: ((tokenId: string, limits: readonly RateLimitCheck[], nowMs: number) => RateLimitResult | PromiseLike<RateLimitResult>) | undefined;
  /** Spends one use of a limited key: the uses left after it (negative when none was left). */
  useApiKey(hash: string): number | PromiseLike<number>;
  /** A key's record as the store has it now (a plain object, unvalidated), e.g. to say why a use was refused. */
  getApiKey(hash: string): Readonly<Record<string, unknown>> | undefined | PromiseLike<Readonly<Record<string, unknown>> | undefined>;
  claimOnce(key: string, options: ClaimOptions): boolean | PromiseLike<boolean>;
  /** Whether a claim is live, without taking it; undefined when the store cannot tell (`isClaimed` is optional). */
  readonly isClaimed: ((key: string, options: ClaimQuery) => boolean | PromiseLike<boolean>) | undefined;
  getUsage(tokenId: string): TokenUsage | undefined | PromiseLike<TokenUsage | undefined>;
  /**
   * What an earlier evaluation of this same request by this guard kept under (`owner`, `key`) with `remember`, or
   * undefined: for a spend the store does not see (the pre-auth limiter's), which a guard mounted twice on a request's
   * way must not make twice. Undefined (the method) for a request no adapter of this package made.
   */
  readonly recall: ((owner: object, key: string) => unknown) | undefined;
  /** Keeps this evaluation's spend under (`owner`, `key`) for `recall`. Undefined where `recall` is. */
  readonly remember: ((owner: object, key: string, answer: unknown) => void) | undefined;
}

/** What a check reads about one request. Built once per request by the engine; never handed to user code. */
export interface CheckContext {
  readonly request: GuardRequest;
  /** Upper-case method. */
  readonly method: string;
  /** Normalised path (no query string). */
  readonly path: string;
  readonly headers: GuardRequest['headers'];
  readonly nowMs: number;
  /** Client address after trustProxy; null when unknown. */
  readonly ip: ParsedIp | null;
  /** Leeway for time checks, seconds. */
  readonly clockToleranceS: number;
  /** The verified token: undefined in the pre-auth phase. */
  readonly token: CheckedToken | undefined;
  /** The raw token (for proofs that hash it, such as DPoP's `ath`): undefined in the pre-auth phase. */
  readonly rawToken: string | undefined;
  /** The Authorization scheme the token came with. */
  readonly scheme: 'bearer' | 'dpop' | undefined;
  /** Whether the matched rule is trialled (its own values are reported, not enforced). */
  readonly trial: boolean;
  /** The reasons that refuse the request so far (a later check may read what an earlier one refused). */
  readonly blocking: readonly ReasonCode[] | undefined;
  /** Response headers of the decision (RateLimit-*, Retry-After): a check may add to them. */
  readonly responseHeaders: Record<string, string>;
  /** The store, for checks that count or claim. */
  readonly store: CheckStore;
  /** Operator-facing detail of a refusal, set by the check that refuses (never sent to the client). */
  detail: string | undefined;
  /** Why a check that answered nothing had nothing to check here: a trace shows it `skipped`, not `pass`. */
  skipped: string | undefined;
  /** What a check keeps about this request for its own later hooks (`commit`, `decorate`), by check name. */
  notes: Record<string, unknown> | undefined;
}

/** What a compile step may read from the rest of the policy. */
export interface CompileEnv {
  /** `realm` of WWW-Authenticate challenges. */
  readonly realm: string | undefined;
  /** Where the value sits: `'policy'`, `'rule:<name>'` or `'key'`, e.g. to name a counter. */
  readonly scope: string;
  /** The policy's clock tolerance, seconds. */
  readonly clockToleranceS: number;
  /** The policy's `maxTokenBytes`. */
  readonly maxTokenBytes: number;
  /** The policy's RFC 9728 metadata URL, named in every challenge. */
  readonly resourceMetadata?: string | undefined;
}

/** A check's answer: a reason that refuses, or undefined; a promise only where the check must wait (a store). */
export type CheckResult = ReasonCode | undefined | PromiseLike<ReasonCode | undefined>;

/**
 * A registered check. `P` is the policy slice it adds to TokenGuardPolicy, `R` the slice it adds to
 * RulePolicy, `C` its compiled form. Policy-level and key-record values refuse; a rule-level value is that
 * rule's own constraint, which `mode: 'report-only'` on the rule trials (reports, never enforces).
 */
export interface Check<P extends object = object, R extends object = object, C = unknown> {
  /** Unique name, for messages and traces. */
  readonly name: string;
  readonly phase: CheckPhase;
  /** Run order within the phase: lower first. */
  readonly order: number;
  /**
   * Runs even when neither the policy, a rule nor a key record gives it a value: it is then compiled from
   * `undefined` (proof of possession, which a token's own `cnf` asks for).
   */
  readonly always?: boolean;
  /** Acts only on API keys (their records): a JWT or introspected token's evaluation skips it. */
  readonly keysOnly?: boolean;
  /** The policy key it reads (`ip`), if it has a policy-level form. */
  readonly policyKey?: keyof P & string;
  /** The rule key it reads (`scopes`), if it has a rule-level form. */
  readonly ruleKey?: keyof R & string;
  /** The API key record field it reads (`ip`), if a key may carry its own value. */
  readonly recordKey?: keyof ApiKeyRecord & string;
  /** Schema of the value under `policyKey`. */
  readonly policySchema?: ZodType;
  /** Schema of the value under `ruleKey`. Default: `policySchema`. */
  readonly ruleSchema?: ZodType;
  /** Reason codes this check adds to the built-in ones, with their HTTP answer. */
  readonly reasons?: Readonly<Record<string, ReasonInfo>>;
  /** Compiles a validated value once, at start-up (or once per distinct key record). */
  compile(value: never, env: CompileEnv): C;
  /** Decides one request against one compiled value; `prefetched` is what `prefetch` started, if it has one. */
  check(ctx: CheckContext, compiled: C, prefetched?: unknown): CheckResult;
  /**
   * Decides the policy's, the key record's and (unless trialled) the rule's values of one request together,
   * instead of `check` on each: one store call for several counters. Called again with only the trialled
   * rule's value and `trial` set, so a trialled limit has its own call and cannot refuse the request.
   */
  checkAll?(ctx: CheckContext, values: readonly C[], trial: boolean): CheckResult;
  /** Starts a store read the check will need, while the engine reads the revocation (one round trip for both). */
  prefetch?(ctx: CheckContext, compiled: C): unknown;
  /**
   * Runs once every phase passed, before the decision: for what only an allowed request may spend (a one-time
   * claim). Runs only when the check kept a note of the request under its own name (`setNote(ctx, name, …)`).
   */
  commit?(ctx: CheckContext, compiled: C): CheckResult;
  /**
   * Whether this request's pass of `compiled` (the policy's value, or the rule's own) stands for every later request
   * with the same verified token (a JWT or an introspected token, not an API key), the same rule and the same
   * Authorization scheme: true only when the answer depends on nothing else (not the time, the client, the method or
   * path, other headers, or the store).
   * When every check after authentication a rule runs says so, a token that passed them on that rule skips them
   * from then on (authentication, its time checks, revocation and the usage record still run on every request).
   * Without it, the check runs on every request.
   */
  memo?(ctx: CheckContext, compiled: C): boolean;
  /** Adjusts the finished Decision (challenges, scores): called for the policy-level value on every decision after the pre-auth phase. */
  decorate?(ctx: CheckContext, compiled: C, decision: Decision): void;
  /** Whether `decorate` can change anything for this policy-level value (default: yes); a guard calls only those that can. */
  decorates?(compiled: C): boolean;
  /** Problems of the policy that involve other keys than the check's own (`dpop` needs `jwt`), as `[path, message]`. */
  policyIssues?(policy: Readonly<Record<string, unknown>>): readonly (readonly [readonly (string | number)[], string])[];
  /**
   * Told when authentication refused the request (a pre-auth check may count failed attempts), and of any store
   * failure or internal error as `store.unavailable`. Called for the policy-level value only; never changes the decision.
   */
  onRefusal?(ctx: CheckContext, compiled: C, reason: ReasonCode): void;
  /** The reason whose WWW-Authenticate challenge `challenge` builds. */
  readonly challengeReason?: ReasonCode;
  /** The challenge parameters for a refusal by this value (scope, step-up), built once at compile time. */
  challenge?(compiled: C): string | undefined;
  /** Type-only markers of the slices; never set. */
  readonly policySlice?: P;
  readonly ruleSlice?: R;
}

/** Whether a check's (or store's) answer is a promise to wait for (any thenable, not only a native Promise). */
export const isPromiseLike = <T>(v: T | PromiseLike<T>): v is PromiseLike<T> =>
  v !== null && (typeof v === 'object' || typeof v === 'function') && typeof (v as { then?: unknown }).then === 'function';

/** Keeps a value about this request for the check's own later hooks (`commit`, `decorate`). */
export function setNote(ctx: CheckContext, check: string, value: unknown): void {
  if (ctx.notes === undefined) ctx.notes = {};
  ctx.notes[check] = value;
}

/** Declares a check with its types inferred from the compile step. */
export function defineCheck<P extends object, R extends object, V, C>(check: Omit<Check<P, R, C>, 'compile'> & { compile(value: V, env: CompileEnv): C }): Check<P, R, C> {
  return Object.freeze(check) as unknown as Check<P, R, C>;
}

/** A registered check seen without its slice types (what the engine iterates over). */
export type AnyCheck = Omit<
  Check,
  'policyKey' | 'ruleKey' | 'recordKey' | 'compile' | 'check' | 'challenge' | 'onRefusal' | 'checkAll' | 'prefetch' | 'commit' | 'decorate' | 'decorates' | 'memo'
> & {
  onRefusal?(ctx: CheckContext, compiled: unknown, reason: ReasonCode): void;
  readonly policyKey?: string;
  readonly ruleKey?: string;
  readonly recordKey?: string;
  compile(value: unknown, env: CompileEnv): unknown;
  check(ctx: CheckContext, compiled: unknown, prefetched?: unknown): CheckResult;
  checkAll?(ctx: CheckContext, values: readonly unknown[], trial: boolean): CheckResult;
  prefetch?(ctx: CheckContext, compiled: unknown): unknown;
  commit?(ctx: CheckContext, compiled: unknown): CheckResult;
  decorate?(ctx: CheckContext, compiled: unknown, decision: Decision): void;
  decorates?(compiled: unknown): boolean;
  memo?(ctx: CheckContext, compiled: unknown): boolean;
  challenge?(compiled: unknown): string | undefined;
};
