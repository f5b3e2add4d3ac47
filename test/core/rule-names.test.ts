// Named rules: `rules[].name`, or by default its methods and path, in decisions, audit events and details.
import { describe, expect, it } from 'vitest';
import { createGuard, PolicyError, type DecisionEvent, type GuardRequest } from '../../src/index.js';
import { basePolicy, signToken, NOW } from '../helpers/tokens.js';

const ask = (method: string, path: string, token: string): GuardRequest => ({
  method,
  path,
  headers: { authorization: `Bearer ${token}` },
  remoteAddress: '10.1.2.3',
  now: NOW,
});

function policyError(fn: () => unknown): PolicyError {
  try {
    fn();
  } catch (err) {
    if (err instanceof PolicyError) return err;
    throw err;
  }
  throw new Error('expected a PolicyError');
}

describe('rule names', () => {
  it('names a rule by its methods (GET covering HEAD) and path, or * for every method, by default', async () => {
    const guard = createGuard(
      await basePolicy({
        rules: [
          { path: '/health', public: true },
          { methods: ['GET'], path: '/orders/**', scopes: ['orders:read'] },
          { methods: ['POST', 'DELETE'], path: '/orders/**', scopes: ['orders:write'] },
        ],
      }),
    );
    const token = await signToken({ scope: 'orders:read' });
    expect((await guard.evaluate(ask('GET', '/health', token))).rule).toBe('* /health');
    expect((await guard.evaluate(ask('HEAD', '/orders/1', token))).rule).toBe('GET,HEAD /orders/**');
    expect((await guard.evaluate(ask('DELETE', '/orders/1', token))).rule).toBe('POST,DELETE /orders/**');
  });

  it('uses rules[].name in the decision, the audit event and a requireScopes decision', async () => {
    const events: DecisionEvent[] = [];
    const guard = createGuard(
      await basePolicy({
        rules: [{ name: 'orders read', methods: ['GET'], path: '/orders/**', scopes: ['orders:read'] }],
        onDecision: (e) => {
          events.push(e);
        },
      }),
    );
    const token = await signToken({ scope: 'orders:read' });
    const request = ask('GET', '/orders/1', token);
    const d = await guard.evaluate(request);
    expect(d.rule).toBe('orders read');
    const route = guard.authorize({ token: d.token, decision: d }, ['orders:export'], request);
    expect([route.reason, route.rule]).toEqual(['scope.insufficient', 'orders read']);
    expect(events.map((e) => [e.source, e.rule])).toEqual([
      ['guard', 'orders read'],
      ['requireScopes', 'orders read'],
    ]);
  });

  it("keeps a rule's rate-limit counter with its name when rules are inserted before it", async () => {
    const limited = { name: 'exports', path: '/exports/**', rateLimit: { limit: 1, window: '1h' as const } };
    const store = (await basePolicy()).store;
    const token = await signToken({ scope: 'x', jti: 'tok-1' });
    const first = createGuard(await basePolicy({ store, rules: [limited] }));
    expect((await first.evaluate(ask('GET', '/exports/1', token))).reason).toBe('ok');
    const second = createGuard(await basePolicy({ store, rules: [{ path: '/health', public: true }, limited] }));
    expect((await second.evaluate(ask('GET', '/exports/1', token))).reason).toBe('rate.limited');
  });

  it("refuses a duplicate name, a rule that repeats another's methods and path, and a name with control characters", async () => {
    const dup = policyError(() =>
      createGuard({
        apiKeys: { prefix: 'tg_' },
        rules: [
          { name: 'a', path: '/a' },
          { name: 'a', path: '/b' },
        ],
      }),
    );
    expect(dup.issues).toEqual([{ path: 'rules[1].name', message: 'rule name "a" is already taken by rules[0]: names must be unique' }]);
    const same = policyError(() =>
      createGuard({
        apiKeys: { prefix: 'tg_' },
        rules: [
          { methods: ['GET'], path: '/a/**' },
          { methods: ['GET'], path: '/a/**', scopes: ['x'] },
        ],
      }),
    );
    expect(same.issues).toEqual([{ path: 'rules[1].path', message: 'same methods and path as rules[0] ("GET,HEAD /a/**"), so it never matches: remove it or merge the two' }]);
    const taken = policyError(() => createGuard({ apiKeys: { prefix: 'tg_' }, rules: [{ path: '/a' }, { name: '* /a', path: '/b' }] }));
    expect(taken.issues[0]?.path).toBe('rules[1].name');
    for (const name of ['', 'line\nbreak', 'x'.repeat(129)]) {
      expect(policyError(() => createGuard({ apiKeys: { prefix: 'tg_' }, rules: [{ name, path: '/a' }] })).issues[0]?.path).toBe('rules[0].name');
    }
  });
});
