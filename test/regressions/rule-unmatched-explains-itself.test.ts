// Regression (issue 8 item 6): `rule.unmatched` was an opaque 403. Its detail (logs only, never sent) now names the
// method and normalised path tried, and a rule that would have matched under the mount prefix (the
// `app.use('/api', guard)` mistake), another letter case, or another method.
import { describe, expect, it } from 'vitest';
import express from 'express';
import request from 'supertest';
import { createGuard, type DecisionEvent, type GuardRequest, type TokenGuardPolicy } from '../../src/index.js';
import { tokenGuard } from '../../src/adapters/express.js';
import { basePolicy, signToken, NOW } from '../helpers/tokens.js';

const ask = (method: string, path: string, token: string): GuardRequest => ({
  method,
  path,
  headers: { authorization: `Bearer ${token}` },
  remoteAddress: '127.0.0.1',
  now: NOW,
});

async function detailOf(policy: Partial<TokenGuardPolicy>, method: string, path: string): Promise<string | undefined> {
  const guard = createGuard(await basePolicy(policy));
  const d = await guard.evaluate(ask(method, path, await signToken({ scope: 'orders:read' })));
  expect(d.reason).toBe('rule.unmatched');
  return d.detail;
}

describe('regression: rule.unmatched explains itself', () => {
  it("names the rule written without the mount prefix when the guard is mounted with app.use('/api', guard) (Express)", async () => {
    const events: DecisionEvent[] = [];
    const app = express();
    app.use(
      '/api',
      tokenGuard(
        await basePolicy({
          rules: [{ methods: ['GET'], path: '/orders/**', scopes: ['orders:read'] }],
          onDecision: (e) => {
            events.push(e);
          },
        }),
      ),
    );
    app.use((_req, res) => {
      res.json({ ok: true });
    });
    const res = await request(app)
      .get('/api/orders/1?x=1')
      .set('Authorization', `Bearer ${await signToken({ scope: 'orders:read' })}`);
    expect(res.status).toBe(403);
    expect(res.body.reason).toBe('rule.unmatched');
    expect(JSON.stringify(res.body)).not.toContain('mount');
    expect(events[0]?.detail).toBe(
      'no rule matches GET /api/orders/1; rule "GET,HEAD /orders/**" would match /orders/1: rules match the full path, mount prefix (/api) included, so write the rule\'s path with it',
    );
  });

  it('names the rule that has a prefix the path given to the guard lacks', async () => {
    expect(await detailOf({ rules: [{ name: 'orders', path: '/api/orders/**' }] }, 'GET', '/orders/1')).toBe(
      'no rule matches GET /orders/1; rule "orders" would match /api/orders/1: the guard was given the path without the mount prefix /api (pass the full request path)',
    );
  });

  it('names the rule that would match in another letter case under caseSensitive', async () => {
    expect(await detailOf({ caseSensitive: true, rules: [{ methods: ['GET'], path: '/Orders/**' }] }, 'GET', '/orders/1')).toBe(
      'no rule matches GET /orders/1; rule "GET,HEAD /Orders/**" would match in another letter case (caseSensitive is on)',
    );
  });

  it("names the rule that would match in another letter case when the request's router reads case (policy leaves case open)", async () => {
    const guard = createGuard(await basePolicy({ rules: [{ methods: ['GET'], path: '/Orders/**' }] }));
    const token = await signToken({ scope: 'orders:read' });
    const cased = await guard.evaluate({ ...ask('GET', '/orders/1', token), caseSensitive: true });
    expect([cased.reason, cased.detail]).toEqual([
      'rule.unmatched',
      'no rule matches GET /orders/1; rule "GET,HEAD /Orders/**" would match in another letter case (the app\'s router reads case)',
    ]);
    // A router that ignores case matches the rule itself: no refusal to explain.
    expect((await guard.evaluate(ask('GET', '/orders/1', token))).reason).toBe('ok');
  });

  it('names the rule that matches the path for other methods', async () => {
    expect(await detailOf({ rules: [{ methods: ['GET'], path: '/orders/**' }] }, 'DELETE', '/orders/1')).toBe(
      'no rule matches DELETE /orders/1; rule "GET,HEAD /orders/**" matches the path, but not the method DELETE',
    );
  });

  it('says which normalised path was tried when no rule is near, and when the policy has no rules', async () => {
    expect(await detailOf({ rules: [{ path: '/orders/**' }] }, 'get', '/nowhere//else/?q=1')).toBe('no rule matches GET /nowhere/else');
    expect(await detailOf({ rules: [] }, 'GET', '/orders/1')).toBe('no rule matches GET /orders/1 (the policy has no rules)');
  });

  it('bounds the path it quotes', async () => {
    const detail = await detailOf({ rules: [{ path: '/orders/**' }] }, 'GET', `/${'a'.repeat(1000)}`);
    expect(detail?.length).toBeLessThan(260);
  });
});
