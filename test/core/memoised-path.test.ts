// The pipeline's memoised path (pipeline.ts `memoised`): a JWT that passed its rule before is decided without an
// Evaluation, and hands the request to one wherever the answer is not a plain "not revoked". Each test lets a token
// pass first (so the path is in place), then makes the store answer differently and expects what the Evaluation gives.
import { describe, expect, it } from 'vitest';
import { createApiKey, createGuard, MemoryStore, type Decision, type DecisionEvent, type GuardRequest, type TokenGuardPolicy } from '../../src/index.js';
import { jwtPolicy, NOW, NOW_S, signToken } from '../helpers/tokens.js';

const req = (token: string, over: Partial<GuardRequest> = {}): GuardRequest => ({
  method: 'GET',
  path: '/orders/1',
  headers: { authorization: `Bearer ${token}`, 'user-agent': 'memo-test/1' },
  remoteAddress: '10.1.2.3',
  now: NOW,
  ...over,
});

async function setup(over: Partial<TokenGuardPolicy> = {}) {
  const store = new MemoryStore();
  const guard = createGuard({ jwt: await jwtPolicy(), store, clock: () => NOW, rules: [{ path: '/orders/**', scopes: ['orders:read'] }], ...over });
  const token = await signToken({ scope: 'orders:read', jti: 'memo-path-1' }, { iat: NOW_S - 60 });
  // Two passes: the second is already decided on the memoised path.
  for (let i = 0; i < 2; i++) expect((await guard.decide(req(token))).reason).toBe('ok');
  return { store, guard, token };
}

const isPromise = (v: unknown): boolean => typeof (v as { then?: unknown } | null)?.then === 'function';

describe('the memoised path', () => {
  it('decides a repeat synchronously, with the token, the rule and the mode of a full evaluation', async () => {
    const { guard, token } = await setup();
    const d = guard.decide(req(token));
    expect(isPromise(d)).toBe(false);
    expect(d).toMatchObject({ effect: 'allow', status: 200, reason: 'ok', reasons: [], mode: 'enforce', rule: '* /orders/**', headers: {} });
    expect((d as Decision).token?.id).toBe('memo-path-1');
    // Each request its own Decision: a handler that edits one does not edit the next.
    (d as Decision).headers['X-Edited'] = '1';
    expect((guard.decide(req(token)) as Decision).headers).toEqual({});
  });

  it('keeps a report-only policy report-only', async () => {
    const { guard, token } = await setup({ mode: 'report-only' });
    expect(guard.decide(req(token))).toMatchObject({ effect: 'allow', mode: 'report-only' });
  });

  it('records each use, with the client address and user agent', async () => {
    const { store, guard, token } = await setup();
    guard.decide(req(token, { remoteAddress: '10.4.5.6' }));
    const usage = await store.getUsage('memo-path-1');
    expect(usage).toMatchObject({ count: 3, lastIp: '10.4.5.6', lastUserAgent: 'memo-test/1' });
  });

  it('hands the store each use as { at, ip, userAgent }, undefined where the address or User-Agent is unknown', async () => {
    const { store, guard, token } = await setup();
    const events: unknown[] = [];
    const record = store.recordUsage.bind(store);
    store.recordUsage = (id, use) => {
      events.push({ ...use });
      record(id, use);
    };
    guard.decide(req(token, { remoteAddress: '10.4.5.6' }));
    guard.decide(req(token, { remoteAddress: undefined, headers: { authorization: `Bearer ${token}` } }));
    expect(events).toEqual([
      { at: NOW.getTime(), ip: '10.4.5.6', userAgent: 'memo-test/1' },
      { at: NOW.getTime(), ip: undefined, userAgent: undefined },
    ]);
    // A use with neither known keeps the last known values.
    const usage = await store.getUsage('memo-path-1');
    expect(usage).toMatchObject({ count: 4, lastIp: '10.4.5.6', lastUserAgent: 'memo-test/1' });
  });

  it('reports each decision to onDecision with the token and the client address', async () => {
    const events: DecisionEvent[] = [];
    const { guard, token } = await setup({ onDecision: (e) => void events.push(e) });
    guard.decide(req(token, { remoteAddress: '10.9.9.9' }));
    expect(events.at(-1)).toMatchObject({ effect: 'allow', tokenId: 'memo-path-1', subject: 'alice', ip: '10.9.9.9', path: '/orders/1' });
  });

  it('refuses a token revoked by a store that answers with a promise, and allows it while not revoked', async () => {
    const { store, guard, token } = await setup();
    const sync = store.getRevocation.bind(store);
    store.getRevocation = ((id: string, subject: string | undefined, now: number) => Promise.resolve(sync(id, subject, now))) as unknown as MemoryStore['getRevocation'];
    const pending = guard.decide(req(token));
    expect(isPromise(pending)).toBe(true);
    expect((await pending).reason).toBe('ok');
    await guard.revoke('memo-path-1', { now: NOW });
    expect(await guard.decide(req(token))).toMatchObject({ effect: 'deny', status: 401, reason: 'token.revoked' });
  });

  it('refuses a token revoked after it passed, by id and by subject', async () => {
    const byId = await setup();
    await byId.guard.revoke('memo-path-1', { now: NOW });
    expect((await byId.guard.decide(req(byId.token))).reason).toBe('token.revoked');
    const bySubject = await setup();
    await bySubject.guard.revokeSubject('alice', { now: NOW });
    expect((await bySubject.guard.decide(req(bySubject.token))).reason).toBe('token.revoked');
  });

  it('allows a token issued after its subject was revoked (a store answer that is not a refusal)', async () => {
    const { store, guard, token } = await setup();
    store.getRevocation = () => ({ subjectRevokedBefore: NOW.getTime() - 10 * 60_000 });
    expect((await guard.decide(req(token))).reason).toBe('ok');
  });

  it('fails closed (503) when the store throws, rejects or answers nonsense', async () => {
    const answers: (() => unknown)[] = [
      () => {
        throw new Error('down');
      },
      () => Promise.reject(new Error('down')),
      () => ({ revokedAt: 'yesterday' }),
      () => 42,
    ];
    for (const answer of answers) {
      const { store, guard, token } = await setup();
      store.getRevocation = answer as MemoryStore['getRevocation'];
      const d = await guard.decide(req(token));
      expect([d.effect, d.status, d.reason]).toEqual(['deny', 503, 'store.unavailable']);
    }
  });

  it('leaves an API key to the full evaluation after a JWT passed the same rule', async () => {
    const { store, guard } = await setup({ apiKeys: { prefix: 'tg_' } });
    const key = await createApiKey(store, { prefix: 'tg_', subject: 'svc', scopes: ['orders:read'], expiresIn: '90d', now: NOW });
    expect(await guard.decide(req(key.key))).toMatchObject({ reason: 'ok', token: { id: key.record.id, kind: 'api_key' } });
    await guard.revoke(key.record.id, { now: NOW });
    expect((await guard.decide(req(key.key))).reason).toBe('token.revoked');
  });

  it('reads a forwarded address as a full evaluation does, a garbled one included', async () => {
    const events: DecisionEvent[] = [];
    const { guard, token } = await setup({ trustProxy: ['10.0.0.0/8'], onDecision: (e) => void events.push(e) });
    const forwarded = (xff: string) => req(token, { headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': xff } });
    const fresh = createGuard({
      jwt: await jwtPolicy(),
      store: new MemoryStore(),
      clock: () => NOW,
      trustProxy: ['10.0.0.0/8'],
      rules: [{ path: '/orders/**', scopes: ['orders:read'] }],
      onDecision: (e) => void events.push(e),
    });
    for (const xff of ['203.0.113.5', 'not an address', '203.0.113.5, 10.0.0.1']) {
      const memoised = await guard.decide(forwarded(xff));
      const memoisedIp = events.at(-1)?.ip;
      const full = await fresh.decide(forwarded(xff));
      fresh.clearTokenCache();
      expect([memoised.reason, memoisedIp]).toEqual([full.reason, events.at(-1)?.ip]);
    }
  });
});
