// Regression (security review): a hand-made GuardRequest (a custom adapter through token-guard/adapter-kit) whose
// Authorization or DPoP value is not a string made guard.decide throw a TypeError from the token reader, on the
// cached path and with telemetry on, instead of answering: the adapter's error path could then show a stack trace.
import { describe, expect, it } from 'vitest';
import { createGuard, MemoryStore, type GuardRequest } from '../../src/index.js';
import { basePolicy, signToken, NOW } from '../helpers/tokens.js';

const req = (headers: Record<string, unknown>, path = '/orders/1'): GuardRequest => ({ method: 'GET', path, headers, remoteAddress: '10.1.2.3', now: NOW }) as GuardRequest;

const odd: unknown[] = [12345, { toString: () => 'Bearer x' }, [42], null, true];

describe('regression: non-string header values', () => {
  it('an Authorization value that is not a string is 400 request.malformed, on the cached path too', async () => {
    const guard = createGuard(await basePolicy({ store: new MemoryStore() }));
    // A verified token first, so the memoised path is live for this rule.
    expect((await guard.evaluate(req({ authorization: `Bearer ${await signToken({ scope: 'orders:read' })}` }))).reason).toBe('ok');
    for (const value of odd) {
      const d = await guard.decide(req({ authorization: value }));
      expect([d.status, d.reason], String(value)).toEqual([400, 'request.malformed']);
    }
  });

  it('with telemetry on (the token is read before the pipeline) the answer is the same', async () => {
    const guard = createGuard(await basePolicy({ store: new MemoryStore(), telemetry: { decision: () => {} } }));
    for (const value of odd) {
      const d = await guard.decide(req({ authorization: value }, '/admin/x'));
      expect([d.status, d.reason], String(value)).toEqual([400, 'request.malformed']);
    }
  });

  it('a DPoP proof that is not a string is 400 request.malformed', async () => {
    const guard = createGuard(await basePolicy({ store: new MemoryStore() }));
    const token = await signToken({ scope: 'orders:read' });
    for (const proof of [42, [42], { jwt: 'x' }]) {
      const d = await guard.decide(req({ authorization: `DPoP ${token}`, dpop: proof }));
      expect([d.status, d.reason], String(proof)).toEqual([400, 'request.malformed']);
    }
  });
});
