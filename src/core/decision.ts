// Reasons → Decision: effect, status and the WWW-Authenticate challenge, all built once per guard.
import { REASONS } from '../leaf/reasons.js';
import type { Decision, ReasonCode } from '../leaf/types.js';
import { challenge, type CompiledPolicy } from './policy.js';
import type { CompiledRule } from './rule-match.js';

/** An empty reasons list shared by every allow. */
export const NO_REASONS: ReasonCode[] = Object.freeze([]) as unknown as ReasonCode[];

/** Turns reasons into Decisions for one compiled policy. */
export class Decider {
  private readonly challenges = new Map<ReasonCode, string>();
  constructor(p: CompiledPolicy) {
    for (const [reason, info] of Object.entries(REASONS) as [ReasonCode, (typeof REASONS)[ReasonCode]][]) {
      if (!info.challenge) continue;
      this.challenges.set(reason, challenge(p.realm, info.error ? `error="${info.error}", error_description="${info.title}"` : '', p.resourceMetadata));
    }
  }

  /** The Decision for these reasons (the first one answers), under a mode and rule. */
  decide(reasons: ReasonCode[], mode: Decision['mode'], rule: CompiledRule | undefined, headers: Record<string, string>, detail?: string): Decision {
    const reason = reasons.length ? (reasons[0] as ReasonCode) : 'ok';
    // Every field the engine may set later (token, risk) is in the literal, undefined until then: one shape
    // for all decisions, with no map transition and no out-of-object property store added per request.
    const decision: Decision = {
      effect: reason === 'ok' ? 'allow' : reason === 'step_up.required' ? 'step_up' : 'deny',
      status: reason === 'ok' ? 200 : REASONS[reason].status,
      reason,
      reasons,
      mode,
      headers,
      rule: rule?.name,
      token: undefined,
      detail,
      risk: undefined,
    };
    if (reason !== 'ok') {
      const c = rule?.challenges.get(reason) ?? this.challenges.get(reason);
      if (c) headers['WWW-Authenticate'] = c;
    }
    return decision;
  }
}
