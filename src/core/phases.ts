// The phase runner: runs the registered checks of one phase over a request (the pipeline calls it for each phase).
// The policy's value, or else the key record's, refuses; a rule's own value refuses too unless the rule is
// trialled. A phase runs as a plain loop and stops only where a check answers with a promise.
import type { Decision, ReasonCode, TraceStep } from '../leaf/types.js';
import type { CheckContext, CheckPhase, CheckResult } from '../checks/check.js';
import type { CompiledRule } from './rule-match.js';
import type { CheckSlot } from './registry.js';
import { Refusal } from './refusal.js';
import { isThenable } from './store-calls.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
export type Ctx = Mutable<CheckContext>;

/**
 * One evaluation as the phases see it: the request's CheckContext (what the checks read) and where the running
 * phase stands. One object for both, so a request allocates one record, not three.
 */
export interface Run extends Ctx {
  readonly rule: CompiledRule | undefined;
  readonly mode: Decision['mode'];
  /** A trialled rule's own refusals (reported, never enforced). */
  ruled: ReasonCode[] | undefined;
  prefetched: unknown[] | undefined;
  readonly trace: TraceStep[] | undefined;
  /** Where the running phase is: the slot, its stage, and what the stage's verdict and trace note need. */
  slot: number;
  stage: number;
  before: string | undefined;
  level: TraceStep['level'];
  r: ReasonCode | undefined;
}

/** Adds a reason once; a list is made only when there is something to add (an allow allocates none). */
export function add(list: ReasonCode[] | undefined, reason: ReasonCode): ReasonCode[] {
  if (!list) return [reason];
  if (!list.includes(reason)) list.push(reason);
  return list;
}

/**
 * An enforced refusal. Listed once in the decision's reasons (blocking, then the trialled rule's): the same reason a
 * trialled rule reported earlier (its stepUp, then risk asking for step-up) leaves the trial's list.
 */
function block(run: Run, r: ReasonCode): void {
  run.blocking = add(run.blocking as ReasonCode[] | undefined, r);
  const i = run.ruled ? run.ruled.indexOf(r) : -1;
  if (i !== -1) (run.ruled as ReasonCode[]).splice(i, 1);
}

/** A trialled rule's refusal: reported, unless the same reason already refuses the request. */
function report(run: Run, r: ReasonCode): void {
  if (!run.blocking?.includes(r)) run.ruled = add(run.ruled, r);
}

function note(run: Run, phase: CheckPhase, slot: CheckSlot, level: TraceStep['level'], r: ReasonCode | undefined, before: string | undefined, reported: boolean): void {
  const skipped = r === undefined ? run.skipped : undefined;
  const step: TraceStep = { phase, step: slot.check.name, level, outcome: skipped !== undefined ? 'skipped' : r === undefined ? 'pass' : reported ? 'reported' : 'fail' };
  if (skipped !== undefined) step.detail = skipped;
  if (r !== undefined) step.reason = r;
  if (r !== undefined && run.detail !== before && run.detail !== undefined) step.detail = run.detail;
  (run.trace as TraceStep[]).push(step);
}

/** The trace step of a check's commit: what only a request nothing refused spends (a DPoP proof's one use). */
export function commitNote(run: Run, slot: CheckSlot, r: ReasonCode | undefined): void {
  const skipped = r === undefined ? run.skipped : undefined;
  const step: TraceStep = { phase: 'commit', step: slot.check.name, outcome: r !== undefined ? 'fail' : skipped !== undefined ? 'skipped' : 'pass' };
  if (r !== undefined) step.reason = r;
  const detail = r !== undefined ? run.detail : skipped;
  if (detail !== undefined) step.detail = detail;
  (run.trace as TraceStep[]).push(step);
}

// Where a phase is within a slot. A phase runs as a plain loop (no generator, nothing allocated) and stops only where
// a check answers with a promise: the pipeline yields that promise, hands the answer to `settle` and goes on from
// the same slot and stage. So a phase whose checks all answer synchronously costs no allocation at all.
/** A slot's first stage: where every phase starts. */
export const START = 0;
/** checkAll over the enforced values (the policy's, the rule's unless trialled, the key record's). */
const ALL = 1;
/** checkAll over a trialled rule's own value. */
const ALL_TRIAL = 2;
const POLICY = 3;
const KEY = 4;
/** The policy's or key's answer applied (synchronous: no check runs here). */
const VERDICT = 5;
const RULE = 6;
const END = 7;
/** `call`'s answer when the slot is finished. */
const DONE: unique symbol = Symbol('done');

/** Starts the stage the slot is at, skipping those that do not apply: the check's answer, or DONE when the slot is finished. */
function call(run: Run, phase: CheckPhase, slot: CheckSlot, record: readonly unknown[] | undefined): CheckResult | typeof DONE {
  const rule = run.rule;
  const c = slot.check;
  const i = slot.index;
  for (;;) {
    switch (run.stage) {
      case START:
        // Counters and uses are only spent by requests that go through.
        if (phase === 'quota' && run.blocking !== undefined && run.mode !== 'report-only') {
          if (run.trace) run.trace.push({ phase, step: c.name, outcome: 'skipped', detail: 'the request is already refused: nothing spent' });
          return DONE;
        }
        run.before = run.detail;
        run.skipped = undefined;
        run.level = undefined;
        run.r = undefined;
        run.stage = c.checkAll ? ALL : POLICY;
        break;
      case ALL: {
        const kv = record?.[i];
        const group = rule ? (rule.checks.groups[i] as readonly unknown[]) : slot.policyGroup;
        const values = kv === undefined ? group : [...group, kv];
        if (values.length) {
          run.level = kv === undefined ? (group.length > slot.policyGroup.length ? 'rule' : 'policy') : 'key';
          return (c.checkAll as NonNullable<typeof c.checkAll>)(run, values, false);
        }
        run.stage = ALL_TRIAL;
        break;
      }
      case ALL_TRIAL: {
        const tg = rule?.checks.trialGroups[i];
        if (!tg) return DONE;
        run.before = run.detail;
        run.skipped = undefined;
        return (c.checkAll as NonNullable<typeof c.checkAll>)(run, tg, true);
      }
      case POLICY:
        if (slot.policy !== undefined) {
          run.level = 'policy';
          return c.check(run, slot.policy, run.prefetched?.[i]);
        }
        run.stage = KEY;
        break;
      case KEY: {
        const kv = record?.[i];
        if (run.r === undefined && kv !== undefined) {
          run.level = 'key';
          run.skipped = undefined;
          return c.check(run, kv);
        }
        run.stage = VERDICT;
        break;
      }
      case VERDICT: {
        const r = run.r;
        if (run.level && run.trace) note(run, phase, slot, run.level, r, run.before, false);
        if (r) {
          if (phase === 'bind') throw new Refusal(r, run.detail);
          block(run, r);
        }
        run.stage = RULE;
        break;
      }
      case RULE: {
        const rv = rule?.checks.values[i];
        if (rv === undefined) {
          if (!run.level && run.trace) run.trace.push({ phase, step: c.name, outcome: 'skipped', detail: 'no value for this request' });
          return DONE;
        }
        run.before = run.detail;
        run.skipped = undefined;
        return c.check(run, rv);
      }
      default:
        return DONE;
    }
  }
}

/** Applies a check's answer to the stage that asked for it, and moves to the next stage. */
function settle(run: Run, phase: CheckPhase, slot: CheckSlot, r: ReasonCode | undefined): void {
  switch (run.stage) {
    case ALL:
      if (r) block(run, r);
      if (run.trace) note(run, phase, slot, run.level, r, run.before, false);
      run.stage = ALL_TRIAL;
      return;
    case ALL_TRIAL:
      if (r) report(run, r);
      if (run.trace) note(run, phase, slot, 'rule', r, run.before, true);
      run.stage = END;
      return;
    case POLICY:
      run.r = r;
      run.stage = KEY;
      return;
    case KEY:
      run.r = r;
      run.stage = VERDICT;
      return;
    case RULE:
      if (r) {
        if (run.trial) report(run, r);
        else block(run, r);
      }
      if (run.trace) note(run, phase, slot, 'rule', r, run.before, run.trial);
      run.stage = END;
      return;
  }
}

/** Runs the phase's slots from where it stands until one answers with a promise (returned) or all are done. */
function advance(run: Run, phase: CheckPhase, slots: readonly CheckSlot[], record: readonly unknown[] | undefined): PromiseLike<unknown> | undefined {
  while (run.slot < slots.length) {
    const slot = slots[run.slot] as CheckSlot;
    const r = call(run, phase, slot, record);
    if (r === DONE) {
      run.slot++;
      run.stage = START;
    } else if (isThenable(r)) return r;
    else settle(run, phase, slot, r);
  }
  return undefined;
}

/**
 * Runs the registered checks of one phase. The policy's value, or else the key record's, refuses; the rule's
 * own value refuses too, unless the rule is trialled (then its refusal is only reported). In the bind phase a
 * refusal ends the evaluation. Returns a promise the pipeline must wait for, then pass to `resumePhase`.
 */
export function startPhase(run: Run, phase: CheckPhase, slots: readonly CheckSlot[], record: readonly unknown[] | undefined): PromiseLike<unknown> | undefined {
  if (slots.length === 0) return undefined;
  run.slot = 0;
  run.stage = START;
  return advance(run, phase, slots, record);
}

/** Goes on with a phase once the promise `startPhase` (or this) returned has answered. */
export function resumePhase(
  run: Run,
  phase: CheckPhase,
  slots: readonly CheckSlot[],
  record: readonly unknown[] | undefined,
  answer: unknown,
): PromiseLike<unknown> | undefined {
  settle(run, phase, slots[run.slot] as CheckSlot, answer as ReasonCode | undefined);
  return advance(run, phase, slots, record);
}
