import { describe, expect, it } from 'vitest';
import { createGuard, MemoryStore, PolicyError, type DecisionEvent, type GuardRequest, type TokenGuardPolicy, type TokenStore } from '../../src/index.js';
import { basePolicy, signToken, NOW, NOW_S } from '../helpers/tokens.js';

const at = (ms: number) => new Date(NOW.getTime() + ms);

async function setup(risk: TokenGuardPolicy['risk'], extra: Partial<TokenGuardPolicy> = {}) {
  const store = new MemoryStore();
  const events: DecisionEvent[] = [];
  const guard = createGuard(
    await basePolicy({
      store,
      risk,
      unmatched: 'authenticate',
      onDecision: (e) => {
        events.push(e);
      },
      ...extra,
    }),
  );
  const token = await signToken({ scope: 'orders:read', jti: 'risky' });
  const ask = (over: Partial<GuardRequest> = {}) =>
    guard.evaluate({
      method: 'GET',
      path: '/orders/1',
      headers: { authorization: `Bearer ${token}`, 'user-agent': 'app/1.0' },
      remoteAddress: '203.0.113.1',
      now: NOW,
      ...over,
    });
  return { guard, store, events, ask, token };
}

describe('risk signals', () => {
  it('scores a client IP the token has not been used from, but not its first use or a known IP', async () => {
    const { ask } = await setup({ newIp: 40 });
    expect((await ask()).risk).toEqual({ score: 0, signals: [] });
    expect((await ask()).risk?.score).toBe(0);
    const moved = await ask({ remoteAddress: '198.51.100.7', now: at(1000) });
    expect(moved.risk).toEqual({ score: 40, signals: [{ name: 'newIp', score: 40 }] });
    expect(moved.reason).toBe('ok');
    expect((await ask({ now: at(2000) })).risk?.score).toBe(0);
  });

  it('scores a User-Agent change', async () => {
    const { ask, token } = await setup({ userAgentChange: 25 });
    await ask();
    expect((await ask()).risk?.score).toBe(0);
    const d = await ask({ headers: { authorization: `Bearer ${token}`, 'user-agent': 'curl/8.4' } });
    expect(d.risk?.signals).toEqual([{ name: 'userAgentChange', score: 25 }]);
  });

  it('scores off-hours use', async () => {
    const { ask } = await setup({ offHours: { score: 10, hours: { timezone: 'UTC', windows: [{ from: '10:30', to: '18:00' }] } } });
    expect((await ask()).risk?.signals).toEqual([{ name: 'offHours', score: 10 }]); // 10:00 UTC
    expect((await ask({ now: at(30 * 60_000) })).risk?.score).toBe(0); // 10:30 UTC
  });

  it("scores a burst above the token's own baseline rate, once it has history", async () => {
    const { ask, store } = await setup({ velocity: { score: 30, factor: 5, minPerMinute: 10, minHistory: 50 } });
    const first = await ask();
    const id = first.token!.id;
    // 60 uses spread over the past 10 hours: a baseline of 0.1 per minute.
    for (let i = 0; i < 60; i++) store.recordUsage(id, { at: NOW.getTime() - 36_000_000 + i * 600_000 });
    const calm = await ask({ now: at(61_000) });
    expect(calm.risk?.score).toBe(0);
    let burst = calm;
    for (let i = 0; i < 12; i++) burst = await ask({ now: at(120_000 + i * 1000) });
    expect(burst.risk?.signals).toEqual([{ name: 'velocity', score: 30 }]);
  });

  it('adds custom signals, which see the token, the request and its usage', async () => {
    const seen: unknown[] = [];
    const { ask } = await setup({
      custom: {
        adminPath: (ctx) => {
          seen.push([ctx.token.subject, ctx.ip, ctx.method, ctx.path, ctx.usage?.count ?? 0]);
          return ctx.path.startsWith('/admin') ? 50 : 0;
        },
      },
    });
    await ask();
    const d = await ask({ path: '/admin/x?y=1' });
    expect(d.risk).toEqual({ score: 50, signals: [{ name: 'adminPath', score: 50 }] });
    expect(seen).toEqual([
      ['alice', '203.0.113.1', 'GET', '/orders/1', 0],
      ['alice', '203.0.113.1', 'GET', '/admin/x', 1],
    ]);
  });

  it.each([
    [
      'throws',
      () => {
        throw new Error('geo lookup down');
      },
    ],
    ['returns NaN', () => Number.NaN],
    ['returns a negative score', () => -5],
    ['returns a string', () => '10' as unknown as number],
  ])('fails closed with risk.denied when a custom signal %s', async (_name, signal) => {
    const { ask, events } = await setup({ custom: { geo: signal } });
    const d = await ask();
    expect([d.status, d.reason, d.detail]).toEqual([403, 'risk.denied', 'risk signal "geo" failed']);
    expect(events[0]).toMatchObject({ reason: 'risk.denied', detail: 'risk signal "geo" failed' });
  });
});

describe('risk thresholds', () => {
  it('denies at denyAt with 403 risk.denied and reports the score', async () => {
    const { ask, events, token } = await setup({ newIp: 40, userAgentChange: 30, denyAt: 70 });
    await ask();
    const d = await ask({ remoteAddress: '198.51.100.7', headers: { authorization: `Bearer ${token}`, 'user-agent': 'curl/8.4' } });
    expect([d.status, d.reason, d.risk?.score, d.headers['WWW-Authenticate']]).toEqual([403, 'risk.denied', 70, undefined]);
    expect(events.at(-1)?.risk).toEqual({
      score: 70,
      signals: [
        { name: 'newIp', score: 40 },
        { name: 'userAgentChange', score: 30 },
      ],
    });
  });

  it('asks for step-up at stepUpAt with the risk step-up challenge, satisfied by a fresh login', async () => {
    const { ask } = await setup({ newIp: 40, stepUpAt: 30, denyAt: 90, stepUp: { maxAge: '5m', acr: ['urn:mfa'] } });
    await ask();
    const d = await ask({ remoteAddress: '198.51.100.7' });
    expect([d.effect, d.status, d.reason]).toEqual(['step_up', 401, 'step_up.required']);
    expect(d.headers['WWW-Authenticate']).toBe(
      'Bearer error="insufficient_user_authentication", error_description="Stronger or more recent authentication required", max_age="300", acr_values="urn:mfa"',
    );
    const fresh = await signToken({ scope: 'orders:read', jti: 'risky', auth_time: NOW_S - 60, acr: 'urn:mfa' });
    const ok = await ask({ remoteAddress: '198.51.100.8', headers: { authorization: `Bearer ${fresh}` } });
    expect([ok.reason, ok.risk?.score]).toEqual(['ok', 40]);
  });

  it("keeps the rule's own step-up challenge when the rule's requirement fails too", async () => {
    const { ask } = await setup({ newIp: 40, stepUpAt: 30 });
    await ask();
    const d = await ask({
      method: 'POST',
      path: '/orders',
      remoteAddress: '198.51.100.7',
      headers: { authorization: `Bearer ${await signToken({ scope: 'orders:write', jti: 'risky' })}` },
    });
    expect(d.reasons).toEqual(['step_up.required']);
    expect(d.headers['WWW-Authenticate']).toContain('max_age="600"');
  });

  it('reports but lets the request through in report-only mode', async () => {
    const { ask } = await setup({ newIp: 40, denyAt: 40 }, { mode: 'report-only' });
    await ask();
    const d = await ask({ remoteAddress: '198.51.100.7' });
    expect([d.reason, d.mode]).toEqual(['risk.denied', 'report-only']);
  });

  it('fails closed when the usage the signals need cannot be read', async () => {
    const { ask, store } = await setup({ newIp: 40, denyAt: 90 });
    (store as TokenStore).getUsage = () => Promise.reject(new Error('usage down'));
    expect((await ask()).reason).toBe('store.unavailable');
  });

  it('rejects inconsistent risk policies at start-up', async () => {
    const policy = await basePolicy();
    expect(() => createGuard({ ...policy, risk: { stepUpAt: 50, denyAt: 50 } })).toThrow(PolicyError);
    expect(() => createGuard({ ...policy, risk: { stepUpAt: 50, denyAt: 50 } })).toThrow('risk.stepUpAt: must be lower than denyAt');
    expect(() => createGuard({ ...policy, trackUsage: false, risk: { newIp: 10 } })).toThrow('risk: newIp, userAgentChange and velocity read the usage');
    expect(() => createGuard({ ...policy, risk: { newIp: -1 } })).toThrow('risk.newIp: expected points ≥ 0');
    expect(() => createGuard({ ...policy, risk: { geo: 1 } as never })).toThrow('risk.geo: unknown key');
  });
});
