// The check registry: every check the engine runs, by phase and order, each owning its policy slice (keys,
// schema, compile step, reason codes). Adding a check is one file in checks/ and one line in checks/registered.ts.
import type { ZodType } from 'zod';
import { REASONS, registerReasons } from '../leaf/reasons.js';
import type { ReasonCode } from '../leaf/types.js';
import { CHECK_PHASES, type AnyCheck, type Check, type CheckContext, type CheckPhase, type CompileEnv } from '../checks/check.js';
import * as registered from '../checks/registered.js';

type Registered = (typeof registered)[keyof typeof registered];
type UnionToIntersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;
type PolicySliceOf<C> = C extends Check<infer P, object, infer _C> ? P : never;
type RuleSliceOf<C> = C extends Check<object, infer R, infer _C> ? R : never;

/** The policy keys the registered checks add to TokenGuardPolicy. */
export type CheckPolicySlices = UnionToIntersection<PolicySliceOf<Registered>>;
/** The rule keys the registered checks add to RulePolicy. */
export type CheckRuleSlices = UnionToIntersection<RuleSliceOf<Registered>>;

/** Every registered check, in run order: by phase, then by `order`. */
export const CHECKS: readonly AnyCheck[] = Object.freeze(
  (Object.values(registered) as unknown as AnyCheck[]).sort((a, b) => CHECK_PHASES.indexOf(a.phase) - CHECK_PHASES.indexOf(b.phase) || a.order - b.order),
);

for (const c of CHECKS) if (c.reasons) registerReasons(c.reasons);

/** Every reason code, in table order: the built-in ones, then those the registered checks add. */
export const REASON_CODES: readonly ReasonCode[] = Object.freeze(Object.keys(REASONS) as ReasonCode[]);

/** The zod shape the registered checks add to the policy object. */
export function policyShape(): Record<string, ZodType> {
  const shape: Record<string, ZodType> = {};
  for (const c of CHECKS) if (c.policyKey && c.policySchema) shape[c.policyKey] = c.policySchema.optional();
  return shape;
}

/** The zod shape the registered checks add to a rule. */
export function ruleShape(): Record<string, ZodType> {
  const shape: Record<string, ZodType> = {};
  for (const c of CHECKS) {
    const schema = c.ruleSchema ?? c.policySchema;
    if (c.ruleKey && schema) shape[c.ruleKey] = schema.optional();
  }
  return shape;
}

/** The rule keys that constrain a token (a public rule may have none of them). */
export const RULE_CONSTRAINT_KEYS: readonly string[] = CHECKS.flatMap((c) => (c.ruleKey ? [c.ruleKey] : []));

/** The problems of a policy that involve several keys, as the registered checks see them. */
export function crossIssues(policy: Readonly<Record<string, unknown>>): [readonly (string | number)[], string][] {
  const out: [readonly (string | number)[], string][] = [];
  for (const c of CHECKS) if (c.policyIssues && c.policyKey && policy[c.policyKey] !== undefined) for (const [path, m] of c.policyIssues(policy)) out.push([path, m]);
  return out;
}

/** One registered check in a compiled policy, with its policy-level value compiled (if the policy has one). */
export interface CheckSlot {
  readonly check: AnyCheck;
  readonly phase: CheckPhase;
  /** Its position among the policy's slots: rules and key records keep their compiled values at the same index. */
  readonly index: number;
  readonly policy: unknown;
  /** For checks that decide their values together (`checkAll`): the policy's value as a list (empty without one). */
  readonly policyGroup: readonly unknown[];
}

/** The slots of each phase. */
export type PhaseSlots = Readonly<Record<CheckPhase, readonly CheckSlot[]>>;

/** The registered checks a compiled policy runs: all of them, and by phase. */
export interface CompiledChecks {
  readonly all: readonly CheckSlot[];
  readonly phases: PhaseSlots;
  /**
   * By phase, the slots that can act on a request no rule matches when its token is not an API key: the others
   * would do nothing but note a skip in a trace (the cached JWT path runs only these).
   */
  readonly unruled: PhaseSlots;
}

/** By phase, the slots of `all` for which `has(slot)` holds. */
function slotsWhere(all: readonly CheckSlot[], has: (slot: CheckSlot) => boolean): PhaseSlots {
  const phases = Object.fromEntries(CHECK_PHASES.map((ph) => [ph, [] as CheckSlot[]])) as Record<CheckPhase, CheckSlot[]>;
  for (const slot of all) if (has(slot)) phases[slot.phase].push(slot);
  return phases;
}

/** Compiles the policy-level values of the registered checks. Checks the policy does not use anywhere are left out. */
export function compileChecks(policy: Record<string, unknown>, rules: readonly Record<string, unknown>[], env: Omit<CompileEnv, 'scope'>): CompiledChecks {
  const all: CheckSlot[] = [];
  for (const c of CHECKS) {
    const value = c.policyKey ? policy[c.policyKey] : undefined;
    const used = c.always || value !== undefined || c.recordKey !== undefined || (c.ruleKey !== undefined && rules.some((r) => r[c.ruleKey as string] !== undefined));
    if (!used) continue;
    const compiled = value !== undefined || c.always ? c.compile(value, { ...env, scope: 'policy' }) : undefined;
    const slot: CheckSlot = { check: c, phase: c.phase, index: all.length, policy: compiled, policyGroup: compiled === undefined ? [] : [compiled] };
    all.push(slot);
  }
  return { all, phases: slotsWhere(all, () => true), unruled: slotsWhere(all, (slot) => slot.policy !== undefined && !slot.check.keysOnly) };
}

/** A rule's own values for the registered checks (by slot index) and the challenges of their refusals. */
export interface CompiledRuleChecks {
  readonly values: readonly unknown[];
  /**
   * For checks that decide their values together: the values enforced together on this rule's requests (the
   * policy's, and the rule's own unless trialled), by slot index; the trialled value alone in `trialGroups`.
   */
  readonly groups: readonly (readonly unknown[] | undefined)[];
  readonly trialGroups: readonly (readonly unknown[] | undefined)[];
  /** WWW-Authenticate parameters by reason, for the checks that have a challenge. */
  readonly challenges: ReadonlyMap<ReasonCode, string>;
  /** Whether the rule has any value. */
  readonly any: boolean;
  /** By phase, the slots that can act on this rule's requests when the token is not an API key (see `unruled`). */
  readonly active: PhaseSlots;
  /**
   * The slots after authentication that act on this rule's requests (`active`, pre-auth aside), when every one of
   * them has a `memo`: a token that passed them may skip them on its later requests (see `Check.memo`). Undefined
   * when one cannot be skipped.
   */
  readonly memoSlots: readonly CheckSlot[] | undefined;
  /**
   * Whether a token that passed this rule before may be decided by the pipeline's memoised path: memoSlots, no pre-auth
   * check, not public (a public rule never reads the token, so none passes it today; excluded here, once, in case one does).
   */
  readonly memoPath: boolean;
}

/** Compiles a rule's values for the registered checks; `trial` when the rule's own values are only reported. */
export function compileRuleChecks(checks: CompiledChecks, rule: Record<string, unknown>, env: CompileEnv, trial: boolean): CompiledRuleChecks {
  const values: unknown[] = [];
  const groups: (readonly unknown[] | undefined)[] = [];
  const trialGroups: (readonly unknown[] | undefined)[] = [];
  const challenges = new Map<ReasonCode, string>();
  let any = false;
  for (const slot of checks.all) {
    const key = slot.check.ruleKey;
    const value = key ? rule[key] : undefined;
    if (value === undefined) {
      values.push(undefined);
      groups.push(slot.policyGroup);
      trialGroups.push(undefined);
      continue;
    }
    any = true;
    const compiled = slot.check.compile(value, env);
    values.push(compiled);
    groups.push(trial ? slot.policyGroup : [...slot.policyGroup, compiled]);
    trialGroups.push(trial ? [compiled] : undefined);
    const reason = slot.check.challengeReason;
    const params = slot.check.challenge?.(compiled);
    if (reason && params) challenges.set(reason, params);
  }
  const active = slotsWhere(checks.all, (slot) => !slot.check.keysOnly && (slot.policy !== undefined || values[slot.index] !== undefined));
  const after = CHECK_PHASES.filter((ph) => ph !== 'pre-auth').flatMap((ph) => active[ph]);
  // A trialled rule's requests are reported on (their reasons kept): never skipped.
  const memoSlots = !trial && after.every((slot) => slot.check.memo !== undefined) ? after : undefined;
  return { values, groups, trialGroups, challenges, any, active, memoSlots, memoPath: memoSlots !== undefined && active['pre-auth'].length === 0 && rule['public'] !== true };
}

/**
 * Whether every slot's pass on this request stands for the token's later requests on the same rule (`Check.memo`),
 * for the policy's value and the rule's own (`values`, by slot index).
 */
export function passStands(slots: readonly CheckSlot[], ctx: CheckContext, values: readonly unknown[]): boolean {
  for (const slot of slots) {
    const memo = slot.check.memo;
    if (memo === undefined) return false;
    if (slot.policy !== undefined && memo(ctx, slot.policy) !== true) return false;
    const own = values[slot.index];
    if (own !== undefined && memo(ctx, own) !== true) return false;
  }
  return true;
}

/** Compiles a key record's own values for the registered checks (by slot index); undefined when it has none. */
export function compileRecordChecks(
  slots: readonly CheckSlot[],
  record: Record<string, unknown>,
  compile: (c: AnyCheck, value: unknown) => unknown,
): readonly unknown[] | undefined {
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
