// The one shape every registered check has: the policy slice it owns (keys, schema, compile step), the reason
// codes it can return, and `check(ctx, compiled) → reason | undefined`. The engine (core/registry.ts) runs them.
import type { ZodType } from 'zod';
import type { ParsedIp } from '../leaf/ip.js';
import type { ReasonInfo } from '../leaf/reasons.js';
import type { ApiKeyRecord } from '../leaf/store.js';
import type { GuardRequest, ReasonCode, TokenInfo } from '../leaf/types.js';
import type { AuthenticationFacts } from './step-up.js';

/**
 * When a check runs. `pre-auth`: before the token is read or verified (no store call per guess);
 * `constraints`: once the token is verified, bound and not revoked. The other phases (authenticate, bind,
 * revoke, risk, quota) are the engine's own.
 */
export type CheckPhase = 'pre-auth' | 'constraints';

/** The verified token as the constraint checks see it. */
export interface CheckedToken {
  readonly info: TokenInfo;
  readonly scopeSet: ReadonlySet<string>;
  readonly facts: AuthenticationFacts;
  /** The API key record, for API keys. */
  readonly record: ApiKeyRecord | undefined;
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
  /** Response headers of the decision (RateLimit-*, Retry-After): a check may add to them. */
  readonly responseHeaders: Record<string, string>;
  /** Operator-facing detail of a refusal, set by the check that refuses (never sent to the client). */
  detail: string | undefined;
}

/** What a compile step may read from the rest of the policy. */
export interface CompileEnv {
  /** `realm` of WWW-Authenticate challenges. */
  readonly realm: string | undefined;
  /** Where the value sits: `'policy'`, `'rule:<name>'` or `'key'`, e.g. to name a counter. */
  readonly scope: string;
}

/** A check's answer: a reason that refuses, or undefined; a promise only where the check must wait (a store). */
export type CheckResult = ReasonCode | undefined | PromiseLike<ReasonCode | undefined>;

/**
 * A registered check. `P` is the policy slice it adds to TokenGuardPolicy, `R` the slice it adds to
 * RulePolicy, `C` its compiled form. Policy-level and key-record values refuse; a rule-level value is that
 * rule's own constraint, which `mode: 'report-only'` on the rule trials (reports, never enforces).
 */
export interface Check<P extends object = object, R extends object = object, C = unknown> {
  /** Unique name, for messages. */
  readonly name: string;
  readonly phase: CheckPhase;
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
  /** Decides one request against one compiled value. */
  check(ctx: CheckContext, compiled: C): CheckResult;
  /**
   * Told when authentication refused the request (a pre-auth check may count failed attempts). Called for the
   * policy-level value only; never changes the decision.
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

/** Declares a check with its types inferred from the compile step. */
export function defineCheck<P extends object, R extends object, V, C>(check: Omit<Check<P, R, C>, 'compile'> & { compile(value: V, env: CompileEnv): C }): Check<P, R, C> {
  return Object.freeze(check) as unknown as Check<P, R, C>;
}

/** A registered check seen without its slice types (what the engine iterates over). */
export type AnyCheck = Omit<Check, 'policyKey' | 'ruleKey' | 'recordKey' | 'compile' | 'check' | 'challenge' | 'onRefusal'> & {
  onRefusal?(ctx: CheckContext, compiled: unknown, reason: ReasonCode): void;
  readonly policyKey?: string;
  readonly ruleKey?: string;
  readonly recordKey?: string;
  compile(value: unknown, env: CompileEnv): unknown;
  check(ctx: CheckContext, compiled: unknown): CheckResult;
  challenge?(compiled: unknown): string | undefined;
};
