import { describe, expect, it } from 'vitest';
import { createGuard, MemoryStore, type DecisionEvent, type GuardRequest } from '../../src/index.js';
import { basePolicy, signToken, NOW } from '../helpers/tokens.js';

const req = (token: string, over: Partial<GuardRequest> = {}): GuardRequest => ({
  method: 'GET',
  path: '/orders/1',
  headers: { authorization: `Bearer ${token}` },
  remoteAddress: '127.0.0.1',
  now: NOW,
  ...over,
});

describe('policy auditTrace', () => {
  it("puts a refused decision's steps on its audit event, the refusing check among them; an allow carries none", async () => {
    const events: DecisionEvent[] = [];
    const store = new MemoryStore();
    const guard = createGuard(await basePolicy({ store, auditTrace: true, onDecision: (e) => void events.push(e) }));
    const weak = await signToken({ scope: 'profile', jti: 'tok-weak' });
    const denied = await guard.evaluate(req(weak));
    expect(denied).toMatchObject({ effect: 'deny', reason: 'scope.insufficient' });
    const good = await signToken({ scope: 'orders:read', jti: 'tok-good' });
    expect(await guard.evaluate(req(good))).toMatchObject({ effect: 'allow' });

    expect(events).toHaveLength(2);
    const [refused, allowed] = events as [DecisionEvent, DecisionEvent];
    expect(refused.trace).toBeDefined();
    expect(refused.trace).toContainEqual(expect.objectContaining({ phase: 'constraints', step: 'scopes', level: 'rule', outcome: 'fail', reason: 'scope.insufficient' }));
    expect(refused.trace).toContainEqual(expect.objectContaining({ phase: 'authenticate', step: 'jwt', outcome: 'pass', detail: 'token tok-weak of alice' }));
    // Ids and subjects only: never the token itself.
    expect(JSON.stringify(refused)).not.toContain(weak);
    expect(allowed.trace).toBeUndefined();
    expect('trace' in allowed).toBe(false);
    // Tracing for the audit event still records usage (explain does not): the allowed request's use is kept.
    expect((await store.getUsage('tok-good'))?.count).toBe(1);
  });

  it('traces a refusal by the engine (an unreadable token) too', async () => {
    const events: DecisionEvent[] = [];
    const guard = createGuard(await basePolicy({ auditTrace: true, onDecision: (e) => void events.push(e) }));
    await guard.evaluate(req('not-a-token'));
    expect(events[0]?.effect).toBe('deny');
    expect(events[0]?.trace).toContainEqual(expect.objectContaining({ step: 'refusal', outcome: 'fail', reason: events[0]?.reason }));
  });

  it('puts no trace on any event when the option is off (the default)', async () => {
    const events: DecisionEvent[] = [];
    const guard = createGuard(await basePolicy({ onDecision: (e) => void events.push(e) }));
    await guard.evaluate(req(await signToken({ scope: 'profile' })));
    await guard.evaluate(req(await signToken({ scope: 'orders:read' })));
    expect(events.map((e) => e.effect)).toEqual(['deny', 'allow']);
    for (const e of events) expect(e.trace).toBeUndefined();
  });

  it('is checked by the schema', async () => {
    await expect(async () => createGuard(await basePolicy({ auditTrace: 'yes' as unknown as boolean }))).rejects.toThrow(/auditTrace/);
  });
});
