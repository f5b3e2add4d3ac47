import { describe, expect, it, vi } from 'vitest';
import { createGuard, MemoryStore, type GuardRequest, type TraceStep } from '../../src/index.js';
import { basePolicy, signToken, storeApiKey, NOW } from '../helpers/tokens.js';

const req = (token: string | undefined, over: Partial<GuardRequest> = {}): GuardRequest => ({
  method: 'GET',
  path: '/orders/1',
  headers: token ? { authorization: `Bearer ${token}` } : {},
  remoteAddress: '127.0.0.1',
  now: NOW,
  ...over,
});

const step = (steps: TraceStep[], name: string, level?: TraceStep['level']) => steps.find((s) => s.step === name && (level === undefined || s.level === level));

describe('guard.explain', () => {
  it('traces an allow: the rules tried, each check run, the checks the policy does not use, and the decision', async () => {
    const onDecision = vi.fn();
    const guard = createGuard(await basePolicy({ onDecision, rateLimit: { limit: 10, window: '1m' } }));
    const x = await guard.explain(req(await signToken({ scope: 'orders:read', jti: 'tok-1' })));
    expect(x.decision).toMatchObject({ effect: 'allow', reason: 'ok' });
    expect(x.rules).toEqual([
      { name: '* /health', matched: false, why: 'path /orders/1 does not match /health' },
      { name: 'GET,HEAD /orders/**', matched: true },
    ]);
    expect(step(x.steps, 'jwt')).toMatchObject({ phase: 'authenticate', outcome: 'pass' });
    expect(step(x.steps, 'revocation')).toMatchObject({ phase: 'revoke', outcome: 'pass', detail: 'not revoked' });
    expect(step(x.steps, 'scopes', 'rule')).toMatchObject({ phase: 'constraints', outcome: 'pass' });
    expect(step(x.steps, 'rateLimit')).toMatchObject({ phase: 'quota', level: 'policy', outcome: 'pass' });
    expect(step(x.steps, 'risk')).toMatchObject({ outcome: 'skipped', detail: 'not configured by this policy' });
    expect(x.steps.at(-1)).toEqual({ phase: 'decide', step: 'decision', outcome: 'pass', reason: 'ok' });
    // A diagnostic, not a request: not audited.
    expect(onDecision).not.toHaveBeenCalled();
  });

  it('names the check that refused, with its reason and detail, and the phases after it as not spent', async () => {
    const guard = createGuard(await basePolicy({ rateLimit: { limit: 10, window: '1m' } }));
    const x = await guard.explain(req(await signToken({ scope: 'orders:read' }), { path: '/admin/users', remoteAddress: '203.0.113.9' }));
    expect(x.decision.reason).toBe('ip.denied');
    expect(step(x.steps, 'ip', 'rule')).toMatchObject({ outcome: 'fail', reason: 'ip.denied' });
    expect(step(x.steps, 'scopes', 'rule')).toMatchObject({ outcome: 'fail', reason: 'scope.insufficient' });
    expect(step(x.steps, 'rateLimit')).toMatchObject({ phase: 'quota', outcome: 'skipped', detail: 'the request is already refused: nothing spent' });
  });

  it('shows a check with nothing to check on this request as skipped, with why, not as passed', async () => {
    const store = new MemoryStore();
    const guard = createGuard(await basePolicy({ store, dpop: { origins: ['https://api.example.test'] }, ip: { allow: ['127.0.0.0/8'] } }));
    const bearer = await guard.explain(req(await signToken({ scope: 'orders:read' })));
    expect(bearer.decision.reason).toBe('ok');
    expect(step(bearer.steps, 'dpop-replay')).toMatchObject({ phase: 'constraints', outcome: 'skipped', detail: 'no DPoP proof on this request' });
    expect(step(bearer.steps, 'keyUses')).toMatchObject({ phase: 'quota', outcome: 'skipped', detail: 'not an API key' });
    // The checks after a skip that do check say so.
    expect(step(bearer.steps, 'ip')).toEqual({ phase: 'constraints', step: 'ip', level: 'policy', outcome: 'pass' });
    expect(step(bearer.steps, 'scopes', 'rule')).toEqual({ phase: 'constraints', step: 'scopes', level: 'rule', outcome: 'pass' });
    const unlimited = await guard.explain(req((await storeApiKey(store)).key));
    expect(unlimited.decision.reason).toBe('ok');
    expect(step(unlimited.steps, 'keyUses')).toMatchObject({ outcome: 'skipped', detail: 'the key has no use limit' });
    // A key that counts its uses is checked: passed, and the skip above was that key's, not a leftover.
    const counted = await guard.explain(req((await storeApiKey(store, { uses: 3 })).key));
    expect(step(counted.steps, 'keyUses')).toEqual({ phase: 'quota', step: 'keyUses', level: 'policy', outcome: 'pass' });
  });

  it("reports a trialled rule's refusal as reported, not as failed", async () => {
    const guard = createGuard(await basePolicy({ rules: [{ path: '/orders/**', scopes: ['orders:write'], mode: 'report-only' }] }));
    const x = await guard.explain(req(await signToken({ scope: 'orders:read' })));
    expect(x.decision).toMatchObject({ effect: 'deny', mode: 'report-only', reason: 'scope.insufficient' });
    expect(step(x.steps, 'scopes', 'rule')).toMatchObject({ outcome: 'reported', reason: 'scope.insufficient' });
  });

  it('shows a revoked token refused by the engine and every later check as not reached', async () => {
    const store = new MemoryStore();
    const guard = createGuard(await basePolicy({ store }));
    await guard.revoke('tok-r', { now: NOW });
    const x = await guard.explain(req(await signToken({ scope: 'orders:read', jti: 'tok-r' })));
    expect(x.decision.reason).toBe('token.revoked');
    expect(step(x.steps, 'refusal')).toMatchObject({ outcome: 'fail', reason: 'token.revoked', detail: 'revoked in store' });
    expect(step(x.steps, 'scopes')).toMatchObject({ outcome: 'skipped', detail: 'not reached' });
  });

  it('explains a request without a token and an unmatched path', async () => {
    const guard = createGuard(await basePolicy());
    const missing = await guard.explain(req(undefined));
    expect(missing.decision.reason).toBe('token.missing');
    expect(step(missing.steps, 'refusal')).toMatchObject({ phase: 'authenticate', reason: 'token.missing' });
    const unmatched = await guard.explain(req(await signToken({ scope: 'orders:read' }), { path: '/nowhere' }));
    expect(unmatched.decision.reason).toBe('rule.unmatched');
    expect(unmatched.rules.every((r) => !r.matched)).toBe(true);
    expect(unmatched.rules).toHaveLength(5);
  });
});
