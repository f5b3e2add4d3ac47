// A decision's `reasons` lists each failing reason once. A rule trialled under an enforcing policy (mode
// 'report-only') reported its own refusals after the enforced ones, so a reason both refused listed twice:
// `step_up.required` from the trialled rule's stepUp and again from risk asking for step-up, `hours.outside` from the
// policy's hours and the trialled rule's. The challenge stays that of the step-up being enforced.
import { describe, expect, it } from 'vitest';
import { createGuard, MemoryStore, type DecisionEvent, type TokenGuardPolicy } from '../../src/index.js';
import { basePolicy, NOW, signToken } from '../helpers/tokens.js';

const RULE_CHALLENGE = 'max_age="600", acr_values="gold"';
const RISK_CHALLENGE = 'max_age="60"';
const night = { timezone: 'UTC', windows: [{ from: '00:00', to: '01:00' }] };

async function decide(overrides: Partial<TokenGuardPolicy>) {
  const events: DecisionEvent[] = [];
  const guard = createGuard(
    await basePolicy({
      store: new MemoryStore(),
      // Every request scores 10: risk asks for an authentication within the last minute, which the token lacks.
      risk: { custom: { always: () => 10 }, stepUpAt: 5, stepUp: { maxAge: '1m' } },
      onDecision: (e) => void events.push(e),
      ...overrides,
    }),
  );
  const token = await signToken({ scope: 'orders:read' });
  const d = await guard.evaluate({ method: 'GET', path: '/orders/1', headers: { authorization: `Bearer ${token}` }, remoteAddress: '203.0.113.9', now: NOW });
  return { d, event: events[0] as DecisionEvent };
}

describe('reasons a rule and risk both give', () => {
  it('lists step_up.required once when a trialled rule’s stepUp and risk both refuse, with risk’s challenge (the one enforced)', async () => {
    const { d, event } = await decide({ rules: [{ path: '/orders/**', stepUp: { maxAge: '10m', acr: ['gold'] }, mode: 'report-only' }] });
    expect([d.effect, d.status, d.mode, d.reasons]).toEqual(['step_up', 401, 'enforce', ['step_up.required']]);
    expect(event.reasons).toEqual(['step_up.required']);
    expect(d.headers['WWW-Authenticate']).toContain(RISK_CHALLENGE);
    expect(d.headers['WWW-Authenticate']).not.toContain('acr_values');
  });

  it('lists a reason once when the policy and a trialled rule both refuse with it, the enforced one first', async () => {
    const { d } = await decide({ hours: night, rules: [{ path: '/orders/**', hours: night, stepUp: { acr: ['gold'] }, mode: 'report-only' }] });
    expect([d.effect, d.status, d.reasons]).toEqual(['deny', 403, ['hours.outside', 'step_up.required']]);
  });

  it('keeps the trialled rule’s own reasons after the enforced ones when they differ', async () => {
    const { d } = await decide({ risk: undefined, hours: night, rules: [{ path: '/orders/**', stepUp: { acr: ['gold'] }, mode: 'report-only' }] });
    expect([d.effect, d.reasons]).toEqual(['deny', ['hours.outside', 'step_up.required']]);
  });

  it('lists step_up.required once, with the rule’s max_age and acr_values, when an enforced rule and risk both ask for step-up', async () => {
    for (const mode of ['enforce', 'report-only'] as const) {
      const { d } = await decide({ mode, rules: [{ path: '/orders/**', stepUp: { maxAge: '10m', acr: ['gold'] } }] });
      expect([d.status, d.mode, d.reasons]).toEqual([401, mode, ['step_up.required']]);
      expect(d.headers['WWW-Authenticate']).toContain(RULE_CHALLENGE);
    }
  });
});
