// Reasons → Decision: effect, status and the WWW-Authenticate challenge, all built once per guard.
import { REASONS } from '../leaf/reasons.js';
import type { Decision, ReasonCode } from '../leaf/types.js';
import { stepUpChallengeParams } from '../checks/step-up.js';
import { challenge, type CompiledPolicy } from './policy.js';
import type { CompiledRule } from './rule-match.js';

/** An empty reasons list shared by every allow. */
export const NO_REASONS: ReasonCode[] = Object.freeze([]) as unknown as ReasonCode[];

/** Turns reasons into Decisions for one compiled policy. */
export class Decider {
  private readonly challenges = new Map<ReasonCode, string>();
  /** The challenge of a risk step-up (the risk policy's own requirement). */
  readonly riskChallenge: string | undefined;

  constructor(private readonly p: CompiledPolicy) {
    for (const [reason, info] of Object.entries(REASONS) as [ReasonCode, (typeof REASONS)[ReasonCode]][]) {
      if (!info.challenge) continue;
      this.challenges.set(reason, challenge(p.realm, info.error ? `error="${info.error}", error_description="${info.title}"` : '', p.resourceMetadata));
    }
    this.riskChallenge = p.risk ? challenge(p.realm, stepUpChallengeParams(p.risk.stepUp), p.resourceMetadata) : undefined;
  }

  /** The Decision for these reasons (the first one answers), under a mode and rule. */
  decide(reasons: ReasonCode[], mode: Decision['mode'], rule: CompiledRule | undefined, headers: Record<string, string>, detail?: string): Decision {
    const reason = reasons.length ? (reasons[0] as ReasonCode) : 'ok';
    const decision: Decision = {
      effect: reason === 'ok' ? 'allow' : reason === 'step_up.required' ? 'step_up' : 'deny',
      status: REASONS[reason].status,
      reason,
      reasons,
      mode,
      headers,
    };
    if (rule) decision.rule = rule.name;
    if (reason !== 'ok') {
      const c = rule?.challenges.get(reason) ?? this.challenges.get(reason);
      if (c) headers['WWW-Authenticate'] = c;
    }
    if (detail !== undefined) decision.detail = detail;
    return decision;
  }

  /**
   * RFC 9449 §7.1: a request made with the DPoP scheme is answered in that scheme, and a request without
   * a token learns that DPoP is accepted.
   */
  dpopChallenge(d: Decision, scheme: 'bearer' | 'dpop' | undefined): void {
    const dpop = this.p.dpop;
    const current = d.headers['WWW-Authenticate'];
    if (!dpop || current === undefined) return;
    if (d.reason === 'token.missing') d.headers['WWW-Authenticate'] = `${current}, ${dpop.challenge}`;
    else if (scheme === 'dpop') {
      const params = current.replace(/^Bearer ?/, '').replace('error="invalid_token"', d.reason === 'pop.invalid' ? 'error="invalid_dpop_proof"' : 'error="invalid_token"');
      d.headers['WWW-Authenticate'] = `DPoP ${params ? `${params}, ` : ''}${dpop.challenge.slice('DPoP '.length)}`;
    }
  }
}
