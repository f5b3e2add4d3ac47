// Regression (security review): a rule-level `mode: 'report-only'` reports-only the whole
// decision for that path: authentication, revocation and the policy-wide IP deny list included, not just the
// rule's own constraints. These pass once rule-level report-only covers only the rule's own checks.
import { describe, expect, it } from 'vitest';
import { createGuard, MemoryStore, type GuardRequest } from '../../src/index.js';
import { basePolicy, signToken, NOW } from '../helpers/tokens.js';

const req = (token: string | undefined, over: Partial<GuardRequest> = {}): GuardRequest => ({
  method: 'GET',
  path: '/admin/users',
  headers: token ? { authorization: `Bearer ${token}` } : {},
  remoteAddress: '10.1.2.3',
  now: NOW,
  ...over,
});
const trialRule = { path: '/admin/**', scopes: ['admin'], ip: { allow: ['10.0.0.0/8'] }, mode: 'report-only' as const };

describe('regression: rule-level report-only reaches past the rule', () => {
  it('still refuses a request without a token', async () => {
    const d = await createGuard(await basePolicy({ rules: [trialRule] })).evaluate(req(undefined));
    expect([d.reason, d.mode]).toEqual(['token.missing', 'enforce']);
  });

  it('still refuses a revoked token', async () => {
    const store = new MemoryStore();
    const guard = createGuard(await basePolicy({ store, rules: [trialRule] }));
    await guard.revoke('stolen', { now: NOW });
    const d = await guard.evaluate(req(await signToken({ scope: 'admin', jti: 'stolen' })));
    expect([d.reason, d.mode]).toEqual(['token.revoked', 'enforce']);
  });

  it('still applies the policy-wide IP deny list', async () => {
    const guard = createGuard(await basePolicy({ ip: { deny: ['198.51.100.0/24'] }, rules: [trialRule] }));
    const d = await guard.evaluate(req(await signToken({ scope: 'admin' }), { remoteAddress: '198.51.100.9' }));
    expect([d.reasons.includes('ip.denied'), d.mode]).toEqual([true, 'enforce']);
  });
});
