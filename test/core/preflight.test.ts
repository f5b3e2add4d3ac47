// `preflight: 'pass'`: CORS preflights go through the guard untouched, audited, with no token; nothing else does.
import { describe, expect, it } from 'vitest';
import { createGuard, PolicyError, type DecisionEvent, type GuardRequest } from '../../src/index.js';
import { basePolicy, NOW } from '../helpers/tokens.js';

const preflight = (over: Partial<GuardRequest> = {}, headers: GuardRequest['headers'] = {}): GuardRequest => ({
  method: 'OPTIONS',
  path: '/admin/users',
  headers: { origin: 'https://app.example.test', 'access-control-request-method': 'DELETE', ...headers },
  remoteAddress: '203.0.113.9',
  now: NOW,
  ...over,
});

describe("preflight: 'pass'", () => {
  it('allows a CORS preflight without a token and audits it as such', async () => {
    const events: DecisionEvent[] = [];
    const guard = createGuard(await basePolicy({ preflight: 'pass', ip: { deny: ['203.0.113.0/24'] }, onDecision: (e) => void events.push(e) }));
    const d = await guard.evaluate(preflight());
    expect(d).toMatchObject({ effect: 'allow', status: 200, reason: 'ok', reasons: [], detail: 'CORS preflight' });
    expect(d.token).toBeUndefined();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ effect: 'allow', reason: 'ok', method: 'OPTIONS', path: '/admin/users', passed: true, detail: 'CORS preflight', ip: '203.0.113.9' });
    expect(events[0]?.tokenId).toBeUndefined();
  });

  it('guards preflights by default', async () => {
    const d = await createGuard(await basePolicy()).evaluate(preflight());
    expect(d.reason).toBe('token.missing');
  });

  it('guards an OPTIONS request that lacks Origin or Access-Control-Request-Method, or has them empty', async () => {
    const guard = createGuard(await basePolicy({ preflight: 'pass' }));
    for (const headers of [{ origin: undefined }, { 'access-control-request-method': undefined }, { origin: '' }, { 'access-control-request-method': ['DELETE', 'PUT'] }]) {
      expect((await guard.evaluate(preflight({}, headers))).reason).toBe('token.missing');
    }
  });

  it('verifies an OPTIONS request that carries Authorization, even a preflight-shaped one', async () => {
    const guard = createGuard(await basePolicy({ preflight: 'pass' }));
    expect((await guard.evaluate(preflight({}, { authorization: 'Bearer not-a-jwt' }))).reason).toBe('token.malformed');
  });

  it('passes no other method with preflight headers', async () => {
    const guard = createGuard(await basePolicy({ preflight: 'pass' }));
    for (const method of ['GET', 'DELETE', 'POST']) expect((await guard.evaluate(preflight({ method }))).reason).toBe('token.missing');
  });

  it('still refuses a malformed path', async () => {
    const guard = createGuard(await basePolicy({ preflight: 'pass' }));
    expect((await guard.evaluate(preflight({ path: '/orders/../admin' }))).reason).toBe('request.malformed');
  });

  it('refuses an unknown preflight value at start-up', async () => {
    expect(() => createGuard({ ...{ apiKeys: { prefix: 'tg_' } }, preflight: 'allow' as 'pass' })).toThrow(PolicyError);
  });
});
