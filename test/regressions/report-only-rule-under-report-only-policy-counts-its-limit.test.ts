// A rule in report-only under a report-only policy is not a trial (everything is reported anyway): its rate limit
// is counted with the policy's, and going over it is reported. Pins the per-rule limit list built at start-up.
import { describe, expect, it } from 'vitest';
import { createGuard, MemoryStore } from '../../src/index.js';
import { basePolicy, signToken, NOW } from '../helpers/tokens.js';

describe('a report-only rule under a report-only policy', () => {
  it('counts the rule’s rate limit and reports rate.limited once it is spent', async () => {
    const guard = createGuard(
      await basePolicy({ store: new MemoryStore(), mode: 'report-only', rules: [{ path: '/orders/**', rateLimit: { limit: 1, window: '1h' }, mode: 'report-only' }] }),
    );
    const req = { method: 'GET', path: '/orders/1', headers: { authorization: `Bearer ${await signToken({ scope: 'orders:read' })}` }, remoteAddress: '203.0.113.9', now: NOW };
    expect((await guard.evaluate(req)).reason).toBe('ok');
    const d = await guard.evaluate(req);
    expect([d.mode, d.reason, d.headers['RateLimit-Limit']]).toEqual(['report-only', 'rate.limited', '1']);
  });
});
