// The check registry: every check the engine runs, in the order it runs them, each owning its policy slice
// (keys, schema, compile step, reason codes). Adding a check is one file in checks/ and one line here.
import type { ZodType } from 'zod';
import { REASONS, registerReasons } from '../leaf/reasons.js';
import type { ReasonCode } from '../leaf/types.js';
import type { AnyCheck, Check, CheckPhase, CompileEnv } from '../checks/check.js';
import { ipCheck } from '../checks/ip.js';
import { hoursCheck } from '../checks/hours.js';
import { scopesCheck } from '../checks/scopes.js';
import { stepUpCheck } from '../checks/step-up.js';
import { claimsCheck } from '../checks/claims.js';
import { preAuthLimitCheck } from '../checks/pre-auth-limit.js';
import { maxTokenAgeCheck } from '../checks/max-token-age.js';

/** Every registered check, in run order within its phase. */
export const CHECKS = [ipCheck, hoursCheck, scopesCheck, stepUpCheck, claimsCheck, preAuthLimitCheck, maxTokenAgeCheck] as const;

type Registered = (typeof CHECKS)[number];
type UnionToIntersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;
type PolicySliceOf<C> = C extends Check<infer P, object, infer _C> ? P : never;
type RuleSliceOf<C> = C extends Check<object, infer R, infer _C> ? R : never;

/** The policy keys the registered checks add to TokenGuardPolicy. */
export type CheckPolicySlices = UnionToIntersection<PolicySliceOf<Registered>>;
/** The rule keys the registered checks add to RulePolicy. */
export type CheckRuleSlices = UnionToIntersection<RuleSliceOf<Registered>>;

const ALL: readonly AnyCheck[] = CHECKS as unknown as readonly AnyCheck[];
for (const c of ALL) if (c.reasons) registerReasons(c.reasons);

/** Every reason code, in table order: the built-in ones, then those the registered checks add. */
export const REASON_CODES: readonly ReasonCode[] = Object.freeze(Object.keys(REASONS) as ReasonCode[]);

/** The zod shape the registered checks add to the policy object. */
export function policyShape(): Record<string, ZodType> {
  const shape: Record<string, ZodType> = {};
  for (const c of ALL) if (c.policyKey && c.policySchema) shape[c.policyKey] = c.policySchema.optional();
  return shape;
}

/** The zod shape the registered checks add to a rule. */
export function ruleShape(): Record<string, ZodType> {
  const shape: Record<string, ZodType> = {};
  for (const c of ALL) {
    const schema = c.ruleSchema ?? c.policySchema;
    if (c.ruleKey && schema) shape[c.ruleKey] = schema.optional();
  }
  return shape;
}

/** The rule keys that constrain a token (a public rule may have none of them). */
export const RULE_CONSTRAINT_KEYS: readonly string[] = ALL.flatMap((c) => (c.ruleKey ? [c.ruleKey] : []));

/** One registered check in a compiled policy, with its policy-level value compiled (if the policy has one). */
export interface CheckSlot {
  readonly check: AnyCheck;
  /** Its position in the phase: rules and key records keep their compiled values at the same index. */
  readonly index: number;
  readonly policy: unknown;
}

/** The registered checks of one phase, as a compiled policy runs them. */
export type PhaseSlots = readonly CheckSlot[];

const compileWith = (c: AnyCheck, value: unknown, env: CompileEnv): unknown => c.compile(value, env);

/** Compiles the policy-level values of a phase's checks. Checks the policy does not use anywhere are left out. */
export function compilePhase(phase: CheckPhase, policy: Record<string, unknown>, rules: readonly Record<string, unknown>[], realm: string | undefined): PhaseSlots {
  const slots: CheckSlot[] = [];
  for (const c of ALL) {
    if (c.phase !== phase) continue;
    const value = c.policyKey ? policy[c.policyKey] : undefined;
    const used = value !== undefined || c.recordKey !== undefined || (c.ruleKey !== undefined && rules.some((r) => r[c.ruleKey as string] !== undefined));
    if (!used) continue;
    slots.push({ check: c, index: slots.length, policy: value === undefined ? undefined : compileWith(c, value, { realm, scope: 'policy' }) });
  }
  return slots;
}

/** A rule's own values for a phase's checks (by slot index) and the challenges of their refusals. */
export interface CompiledRuleChecks {
  readonly values: readonly unknown[];
  /** WWW-Authenticate parameters by reason, for the checks that have a challenge. */
  readonly challenges: ReadonlyMap<ReasonCode, string>;
  /** Whether the rule has any value for this phase. */
  readonly any: boolean;
}

/** Compiles a rule's values for the checks of a phase. */
export function compileRuleChecks(slots: PhaseSlots, rule: Record<string, unknown>, env: CompileEnv): CompiledRuleChecks {
  const values: unknown[] = [];
  const challenges = new Map<ReasonCode, string>();
  let any = false;
  for (const slot of slots) {
    const key = slot.check.ruleKey;
    const value = key ? rule[key] : undefined;
    if (value === undefined) {
      values.push(undefined);
      continue;
    }
    any = true;
    const compiled = compileWith(slot.check, value, env);
    values.push(compiled);
    const reason = slot.check.challengeReason;
    const params = slot.check.challenge?.(compiled);
    if (reason && params) challenges.set(reason, params);
  }
  return { values, challenges, any };
}

/** Compiles a key record's own values for a phase's checks (by slot index); undefined when it has none. */
export function compileRecordChecks(slots: PhaseSlots, record: Record<string, unknown>, compile: (c: AnyCheck, value: unknown) => unknown): readonly unknown[] | undefined {
  let values: unknown[] | undefined;
  for (const slot of slots) {
    const key = slot.check.recordKey;
    const value = key ? record[key] : undefined;
    if (value === undefined) continue;
    values ??= new Array<unknown>(slots.length).fill(undefined);
    values[slot.index] = compile(slot.check, value);
  }
  return values;
}
