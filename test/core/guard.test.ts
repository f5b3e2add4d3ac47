import { afterEach, describe, expect, it, vi } from 'vitest';
import { X509Certificate, createHash } from 'node:crypto';
import { createGuard, MemoryStore, UsageError, type DecisionEvent, type GuardRequest, type TokenGuardPolicy, type TokenStore } from '../../src/index.js';
import { basePolicy, signToken, storeApiKey, NOW, NOW_S } from '../helpers/tokens.js';

const req = (token: string | undefined, over: Partial<GuardRequest> = {}): GuardRequest => ({
  method: 'GET',
  path: '/orders/1',
  headers: token ? { authorization: `Bearer ${token}` } : {},
  remoteAddress: '127.0.0.1',
  now: NOW,
  ...over,
});

describe('decisions', () => {
  it('allows a valid token with the right scope and describes the token', async () => {
    const guard = createGuard(await basePolicy());
    const d = await guard.evaluate(req(await signToken({ scope: 'orders:read', jti: 'tok-1' })));
    expect(d).toMatchObject({ effect: 'allow', status: 200, reason: 'ok', reasons: [], mode: 'enforce', rule: 'GET,HEAD /orders/**' });
    expect(d.token).toMatchObject({ id: 'tok-1', kind: 'jwt', subject: 'alice', scopes: ['orders:read'], expiresAt: new Date((NOW_S + 3600) * 1000) });
    expect(d.token?.claims).toMatchObject({ iss: 'https://id.example.test/', sub: 'alice' });
  });

  it('answers 401 token.missing with a bare Bearer challenge', async () => {
    const d = await createGuard(await basePolicy({ realm: 'orders' })).evaluate(req(undefined));
    expect([d.status, d.reason, d.headers['WWW-Authenticate']]).toEqual([401, 'token.missing', 'Bearer realm="orders"']);
  });

  it('answers 403 insufficient_scope naming the scope the route needs', async () => {
    const d = await createGuard(await basePolicy()).evaluate(req(await signToken({ scope: 'orders:readonly orders' })));
    expect([d.status, d.reason, d.headers['WWW-Authenticate']]).toEqual([403, 'scope.insufficient', 'Bearer error="insufficient_scope", scope="orders:read"']);
    expect(d.token?.subject).toBe('alice');
  });

  it('accepts any-of scopes and names them all when none is present', async () => {
    const guard = createGuard(await basePolicy());
    expect((await guard.evaluate(req(await signToken({ scope: 'admin' }), { path: '/reports/q3' }))).reason).toBe('ok');
    const d = await guard.evaluate(req(await signToken({ scope: 'orders:read' }), { path: '/reports/q3' }));
    expect(d.headers['WWW-Authenticate']).toBe('Bearer error="insufficient_scope", scope="reports:read admin"');
  });

  it('guards HEAD with a GET rule, so HEAD cannot walk past it to a laxer rule', async () => {
    const guard = createGuard(await basePolicy({ unmatched: 'authenticate' }));
    const d = await guard.evaluate(req(await signToken({ scope: 'x' }), { method: 'HEAD' }));
    expect([d.reason, d.rule]).toEqual(['scope.insufficient', 'GET,HEAD /orders/**']);
  });

  it('collects every failing check in reasons, the first in reason', async () => {
    const guard = createGuard(await basePolicy());
    const d = await guard.evaluate(req(await signToken({ scope: 'orders:read' }), { path: '/admin/x', remoteAddress: '203.0.113.1' }));
    expect(d.reasons).toEqual(['ip.denied', 'scope.insufficient']);
    expect(d.reason).toBe('ip.denied');
  });

  describe('unmatched requests', () => {
    it('refuses a valid token on a route no rule covers with 403 rule.unmatched by default', async () => {
      const d = await createGuard(await basePolicy()).evaluate(req(await signToken({ scope: 'orders:read' }), { path: '/elsewhere' }));
      expect([d.status, d.reason, d.rule]).toEqual([403, 'rule.unmatched', undefined]);
    });

    it('still asks for a token first, so anonymous callers learn nothing about routes', async () => {
      const d = await createGuard(await basePolicy()).evaluate(req(undefined, { path: '/elsewhere' }));
      expect(d.reason).toBe('token.missing');
    });

    it('allows any valid token with unmatched: authenticate', async () => {
      const d = await createGuard(await basePolicy({ unmatched: 'authenticate' })).evaluate(req(await signToken({}), { path: '/elsewhere' }));
      expect(d.reason).toBe('ok');
    });
  });

  it('lets a public rule through without a token and without touching the store', async () => {
    const store = new MemoryStore();
    const spy = vi.spyOn(store, 'getRevocation');
    const d = await createGuard(await basePolicy({ store })).evaluate(req(undefined, { path: '/health' }));
    expect([d.effect, d.reason, d.token]).toEqual(['allow', 'ok', undefined]);
    expect(spy).not.toHaveBeenCalled();
  });

  it('refuses a request whose path cannot be read with 400 request.malformed', async () => {
    const d = await createGuard(await basePolicy()).evaluate(req(await signToken({ scope: 'orders:read' }), { path: '/orders/%zz' }));
    expect([d.status, d.reason, d.headers['WWW-Authenticate']]).toEqual([400, 'request.malformed', 'Bearer error="invalid_request", error_description="Malformed request"']);
  });
});

describe('revocation', () => {
  it('refuses a revoked token on its very next request, and keeps others working', async () => {
    const guard = createGuard(await basePolicy());
    const a = await signToken({ scope: 'orders:read', jti: 'a' });
    const b = await signToken({ scope: 'orders:read', jti: 'b' });
    expect((await guard.evaluate(req(a))).reason).toBe('ok');
    await guard.revoke('a', { expiresAt: new Date((NOW_S + 3600) * 1000), now: NOW });
    const d = await guard.evaluate(req(a));
    expect([d.status, d.reason, d.token, d.headers['WWW-Authenticate']]).toEqual([
      401,
      'token.revoked',
      undefined,
      'Bearer error="invalid_token", error_description="Access token revoked"',
    ]);
    expect((await guard.evaluate(req(b))).reason).toBe('ok');
  });

  it('revokes every token of a subject issued before the cut-off, but not later ones', async () => {
    const guard = createGuard(await basePolicy());
    const old = await signToken({ scope: 'orders:read' }, { iat: NOW_S - 60 });
    const other = await signToken({ scope: 'orders:read' }, { iat: NOW_S - 60, sub: 'bob' });
    await guard.revokeSubject('alice', { before: NOW, now: NOW });
    expect((await guard.evaluate(req(old))).reason).toBe('token.revoked');
    expect((await guard.evaluate(req(other))).reason).toBe('ok');
    const fresh = await signToken({ scope: 'orders:read' }, { iat: NOW_S + 5 });
    expect((await guard.evaluate(req(fresh, { now: new Date(NOW.getTime() + 10_000) }))).reason).toBe('ok');
  });

  it('revokes a verified token until its own expiry when given the token itself', async () => {
    const store = new MemoryStore();
    const guard = createGuard(await basePolicy({ store }));
    const t = await signToken({ scope: 'orders:read', jti: 'whole' });
    const d = await guard.evaluate(req(t));
    await guard.revoke(d.token!, { now: NOW });
    expect((await guard.evaluate(req(t))).reason).toBe('token.revoked');
    // Kept until exp plus the clock tolerance (5 s), as long as the verifier would still accept the token.
    expect(store.getRevocation('whole', undefined, (NOW_S + 3604) * 1000)).toBeDefined();
    expect(store.getRevocation('whole', undefined, (NOW_S + 3605) * 1000)).toBeUndefined();
  });

  it('treats a token without iat as issued before a subject revocation', async () => {
    const guard = createGuard(await basePolicy());
    await guard.revokeSubject('alice', { before: NOW, now: NOW });
    const noIat = await signToken({ scope: 'orders:read' }, { iat: null, exp: NOW_S + 60 });
    expect((await guard.evaluate(req(noIat))).reason).toBe('token.revoked');
  });

  it('revokes an API key by its record id', async () => {
    const store = new MemoryStore();
    const { key, record } = await storeApiKey(store);
    const guard = createGuard(await basePolicy({ store }));
    expect((await guard.evaluate(req(key))).reason).toBe('ok');
    await guard.revoke(record.id, { now: NOW });
    expect((await guard.evaluate(req(key))).reason).toBe('token.revoked');
  });

  it('drops a revocation once the token would have expired anyway', async () => {
    const store = new MemoryStore();
    const guard = createGuard(await basePolicy({ store }));
    await guard.revoke('short', { expiresAt: NOW.getTime() + 1000, now: NOW });
    expect(store.getRevocation('short', undefined, NOW.getTime())).toEqual({ revokedAt: NOW.getTime() });
    expect(store.getRevocation('short', undefined, NOW.getTime() + 5999)).toEqual({ revokedAt: NOW.getTime() });
    expect(store.getRevocation('short', undefined, NOW.getTime() + 6000)).toBeUndefined();
  });

  it('rejects a revoke call without an id', async () => {
    const guard = createGuard(await basePolicy());
    await expect(guard.revoke('')).rejects.toThrow(TypeError);
    await expect(guard.revokeSubject('')).rejects.toThrow(TypeError);
  });
});

describe('step-up', () => {
  const write = (token: string, over: Partial<GuardRequest> = {}) => req(token, { method: 'POST', path: '/orders', ...over });

  it('allows a write with a recent MFA login', async () => {
    const guard = createGuard(await basePolicy());
    const t = await signToken({ scope: 'orders:write', auth_time: NOW_S - 60, amr: ['pwd', 'mfa'] });
    expect((await guard.evaluate(write(t))).reason).toBe('ok');
  });

  it.each([
    ['a login older than maxAge', { auth_time: NOW_S - 3600, amr: ['mfa'] }],
    ['no auth_time', { amr: ['mfa'] }],
    ['no mfa in amr', { auth_time: NOW_S - 60, amr: ['pwd'] }],
    ['amr that is not an array', { auth_time: NOW_S - 60, amr: 'mfa' }],
    ['an auth_time in the future', { auth_time: NOW_S + 3600, amr: ['mfa'] }],
  ])('asks for step-up on %s with RFC 9470 challenge', async (_name, claims) => {
    const guard = createGuard(await basePolicy());
    const d = await guard.evaluate(write(await signToken({ scope: 'orders:write', ...claims })));
    expect([d.effect, d.status, d.reason]).toEqual(['step_up', 401, 'step_up.required']);
    expect(d.headers['WWW-Authenticate']).toBe(
      'Bearer error="insufficient_user_authentication", error_description="Stronger or more recent authentication required", max_age="600"',
    );
  });

  it('names acceptable acr values in the challenge', async () => {
    const guard = createGuard(await basePolicy({ rules: [{ path: '/**', stepUp: { acr: ['urn:acr:gold', 'urn:acr:platinum'] } }] }));
    const d = await guard.evaluate(req(await signToken({ acr: 'urn:acr:silver' })));
    expect(d.headers['WWW-Authenticate']).toContain('acr_values="urn:acr:gold urn:acr:platinum"');
    expect((await guard.evaluate(req(await signToken({ acr: 'urn:acr:gold' })))).reason).toBe('ok');
  });
});

describe('proof of possession', () => {
  it('refuses a certificate-bound token without the matching client certificate', async () => {
    const guard = createGuard(await basePolicy({ unmatched: 'authenticate' }));
    const der = Buffer.from('not really a certificate');
    const thumb = createHash('sha256').update(der).digest('base64url');
    const fingerprint256 = createHash('sha256').update(der).digest('hex').toUpperCase().match(/../g)!.join(':');
    const t = await signToken({ cnf: { 'x5t#S256': thumb } });
    expect((await guard.evaluate(req(t, { path: '/x' }))).reason).toBe('pop.invalid');
    expect((await guard.evaluate(req(t, { path: '/x', peerCertificate: { fingerprint256: 'AA:BB' } }))).reason).toBe('pop.invalid');
    expect((await guard.evaluate(req(t, { path: '/x', peerCertificate: { fingerprint256 } }))).reason).toBe('ok');
    expect(X509Certificate).toBeDefined();
  });

  it('refuses a DPoP-bound token presented as a bearer token, and the DPoP scheme', async () => {
    const guard = createGuard(await basePolicy({ unmatched: 'authenticate' }));
    const t = await signToken({ cnf: { jkt: 'abc' } });
    const d = await guard.evaluate(req(t, { path: '/x' }));
    expect([d.status, d.reason]).toEqual([401, 'pop.invalid']);
    const plain = await signToken({});
    expect((await guard.evaluate(req(undefined, { path: '/x', headers: { authorization: `DPoP ${plain}` } }))).reason).toBe('pop.invalid');
  });
});

describe('report-only', () => {
  it('reports every reason but marks the decision report-only at policy level', async () => {
    const events: DecisionEvent[] = [];
    const guard = createGuard(
      await basePolicy({
        mode: 'report-only',
        onDecision: (e) => {
          events.push(e);
        },
      }),
    );
    const d = await guard.evaluate(req(await signToken({ scope: 'nothing' }), { path: '/admin/x', remoteAddress: '203.0.113.1' }));
    expect(d).toMatchObject({ effect: 'deny', mode: 'report-only', reasons: ['ip.denied', 'scope.insufficient'] });
    expect(d.token?.subject).toBe('alice');
    expect(events[0]).toMatchObject({ passed: true, mode: 'report-only', reasons: ['ip.denied', 'scope.insufficient'] });
  });

  it('applies a rule-level report-only mode only to that rule', async () => {
    const policy = await basePolicy();
    const rules = (policy.rules ?? []).map((r) => (r.path === '/admin/**' ? { ...r, mode: 'report-only' as const } : r));
    const guard = createGuard({ ...policy, rules });
    const t = await signToken({ scope: 'nothing' });
    expect((await guard.evaluate(req(t, { path: '/admin/x' }))).mode).toBe('report-only');
    expect((await guard.evaluate(req(t))).mode).toBe('enforce');
  });

  it("counts a trialled rule's rate limit on its own and only reports it", async () => {
    const guard = createGuard(
      await basePolicy({ rules: [{ path: '/beta/**', rateLimit: { limit: 1, window: '1h' }, mode: 'report-only' }], rateLimit: { limit: 100, window: '1h' } }),
    );
    const t = await signToken({ scope: 'x' });
    const first = await guard.evaluate(req(t, { path: '/beta/a' }));
    expect([first.reason, first.mode, first.headers['RateLimit-Limit']]).toEqual(['ok', 'enforce', '100']);
    const second = await guard.evaluate(req(t, { path: '/beta/a' }));
    expect([second.effect, second.mode, second.reasons, second.headers['RateLimit-Remaining']]).toEqual(['deny', 'report-only', ['rate.limited'], '98']);
  });

  it("enforces policy-level and token failures on a trialled rule, reporting the rule's own alongside", async () => {
    const guard = createGuard(await basePolicy({ ip: { deny: ['203.0.113.0/24'] }, rules: [{ path: '/beta/**', scopes: ['beta'], mode: 'report-only' }] }));
    const d = await guard.evaluate(req(await signToken({ scope: 'x' }), { path: '/beta/a', remoteAddress: '203.0.113.5' }));
    expect([d.status, d.mode, d.reasons]).toEqual([403, 'enforce', ['ip.denied', 'scope.insufficient']]);
  });

  it('still refuses to put an invalid token on the decision', async () => {
    const guard = createGuard(await basePolicy({ mode: 'report-only' }));
    const d = await guard.evaluate(req(await signToken({ scope: 'orders:read' }, { exp: NOW_S - 10, iat: NOW_S - 100 })));
    expect([d.reason, d.mode, d.token]).toEqual(['token.expired', 'report-only', undefined]);
  });
});

describe('audit events', () => {
  it('emits one event per decision with who, what, where and how long, never the raw token', async () => {
    const events: DecisionEvent[] = [];
    const guard = createGuard(
      await basePolicy({
        onDecision: (e) => {
          events.push(e);
        },
      }),
    );
    const token = await signToken({ scope: 'orders:read', jti: 'evt-1' });
    await guard.evaluate(req(token, { path: '/orders/1?secret=x', remoteAddress: '::ffff:198.51.100.4' }));
    await guard.evaluate(req(token.slice(0, -4) + 'AAAA'));
    expect(events).toHaveLength(2);
    expect(events[0]).toMatchObject({
      time: NOW,
      effect: 'allow',
      status: 200,
      reason: 'ok',
      reasons: [],
      mode: 'enforce',
      passed: true,
      tokenId: 'evt-1',
      subject: 'alice',
      kind: 'jwt',
      ip: '198.51.100.4',
      method: 'GET',
      path: '/orders/1',
      rule: 'GET,HEAD /orders/**',
      source: 'guard',
    });
    expect(events[0]?.latencyUs).toBeGreaterThanOrEqual(0);
    expect(events[1]).toMatchObject({ reason: 'token.invalid', passed: false });
    const serialized = JSON.stringify(events);
    expect(serialized).not.toContain(token.split('.')[2]);
    expect(serialized).not.toContain(token.split('.')[1]);
  });

  it('never lets a throwing or rejecting hook change or break the decision', async () => {
    const t = await signToken({ scope: 'orders:read' });
    const throwing = createGuard(
      await basePolicy({
        onDecision: () => {
          throw new Error('audit down');
        },
      }),
    );
    expect((await throwing.evaluate(req(t))).reason).toBe('ok');
    const rejecting = createGuard(await basePolicy({ onDecision: () => Promise.reject(new Error('audit down')) }));
    expect((await rejecting.evaluate(req(t))).reason).toBe('ok');
  });
});

describe('store failures fail closed', () => {
  afterEach(() => vi.useRealTimers());

  function brokenStore(mode: 'throw' | 'reject' | 'hang'): TokenStore {
    const store = new MemoryStore();
    const fail = () => {
      if (mode === 'throw') throw new Error('ECONNREFUSED');
      if (mode === 'reject') return Promise.reject(new Error('ECONNREFUSED'));
      return new Promise<never>(() => undefined);
    };
    return Object.assign(store, { getRevocation: fail, getApiKey: fail }) as unknown as TokenStore;
  }

  it.each(['throw', 'reject'] as const)('answers 503 store.unavailable when the store calls %s', async (mode) => {
    const events: DecisionEvent[] = [];
    const guard = createGuard(
      await basePolicy({
        store: brokenStore(mode),
        onDecision: (e) => {
          events.push(e);
        },
      }),
    );
    const d = await guard.evaluate(req(await signToken({ scope: 'orders:read' })));
    expect([d.effect, d.status, d.reason, d.token]).toEqual(['deny', 503, 'store.unavailable', undefined]);
    expect(events[0]?.error).toEqual({ name: 'Error', message: 'ECONNREFUSED' });
  });

  it('answers 503 within storeTimeout when a store call hangs', async () => {
    // An API key reaches the store without any async crypto first, so the timeout is armed at once.
    const { key } = await storeApiKey(new MemoryStore());
    vi.useFakeTimers();
    const guard = createGuard(await basePolicy({ store: brokenStore('hang'), storeTimeout: '250ms' }));
    const pending = guard.evaluate(req(key));
    await vi.advanceTimersByTimeAsync(249);
    let settled = false;
    void pending.then(() => {
      settled = true;
    });
    await Promise.resolve();
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect((await pending).reason).toBe('store.unavailable');
  });

  it('fails closed for API keys too', async () => {
    const store = brokenStore('reject');
    const guard = createGuard(await basePolicy({ store }));
    const { key } = await storeApiKey(new MemoryStore());
    expect((await guard.evaluate(req(key))).status).toBe(503);
  });
});

describe('requireScopes through guard.authorize', () => {
  it('throws a UsageError for a requirement that names no scope, instead of letting every token through', async () => {
    const guard = createGuard(await basePolicy({ unmatched: 'authenticate' }));
    const r = req(await signToken({ scope: 'orders:read' }), { path: '/x' });
    const d = await guard.evaluate(r);
    const auth = { token: d.token, decision: d };
    for (const scopes of [[], {}, { oneOf: ['orders:admin'] }, { all: ['orders:read'], anyOf: ['admin'] }, { any: [] }, ['two words'], [42]]) {
      expect(() => guard.authorize(auth, scopes as never, r), JSON.stringify(scopes)).toThrow(UsageError);
    }
    expect(guard.authorize(auth, { all: ['orders:read'] }, r).reason).toBe('ok');
  });

  it('checks route scopes against the token the guard verified', async () => {
    const guard = createGuard(await basePolicy({ unmatched: 'authenticate' }));
    const r = req(await signToken({ scope: 'orders:read' }), { path: '/x' });
    const d = await guard.evaluate(r);
    const auth = { token: d.token, decision: d };
    expect(guard.authorize(auth, ['orders:read'], r).reason).toBe('ok');
    const refused = guard.authorize(auth, ['orders:write'], r);
    expect([refused.status, refused.reason, refused.headers['WWW-Authenticate']]).toEqual([
      403,
      'scope.insufficient',
      'Bearer error="insufficient_scope", scope="orders:write"',
    ]);
  });

  it('reads a requirement changed after its first use as changed: a cached copy of the old one would be laxer', async () => {
    const guard = createGuard(await basePolicy({ unmatched: 'authenticate' }));
    const r = req(await signToken({ scope: 'orders:read' }), { path: '/x' });
    const d = await guard.evaluate(r);
    const auth = { token: d.token, decision: d };
    const needs: string[] = ['orders:read'];
    expect(guard.authorize(auth, needs, r).reason).toBe('ok');
    needs.push('orders:admin');
    expect(guard.authorize(auth, needs, r).reason).toBe('scope.insufficient');
    needs.length = 0;
    expect(() => guard.authorize(auth, needs, r)).toThrow(UsageError);
    const either: { all?: string[]; any?: string[] } = { any: ['orders:read', 'orders:write'] };
    expect(guard.authorize(auth, either, r).reason).toBe('ok');
    either.all = ['orders:admin'];
    expect(guard.authorize(auth, either, r).reason).toBe('scope.insufficient');
    delete either.all;
    (either.any as string[])[0] = 'orders:admin';
    expect(guard.authorize(auth, either, r).reason).toBe('scope.insufficient');
    (either as Record<string, unknown>)['anyOf'] = ['orders:read'];
    expect(() => guard.authorize(auth, either, r)).toThrow(UsageError);
  });

  it('keeps a report-only refusal on the decision when the route scopes pass (regression: it was replaced by ok)', async () => {
    const events: DecisionEvent[] = [];
    const guard = createGuard(
      await basePolicy({
        mode: 'report-only',
        onDecision: (e) => {
          events.push(e);
        },
      }),
    );
    const r = req(await signToken({ scope: 'orders:read' }), { path: '/admin/x', remoteAddress: '203.0.113.1' });
    const d = await guard.evaluate(r);
    const routed = guard.authorize({ token: d.token, decision: d }, ['orders:read'], r);
    expect(routed).toBe(d);
    expect(routed.reasons).toEqual(['ip.denied', 'scope.insufficient']);
    expect(events).toHaveLength(1);
  });

  it('adds a route refusal to the reasons of a report-only decision', async () => {
    const guard = createGuard(await basePolicy({ mode: 'report-only' }));
    const r = req(await signToken({ scope: 'orders:read' }), { remoteAddress: '127.0.0.1', path: '/admin/x' });
    const d = await guard.evaluate(r);
    const routed = guard.authorize({ token: d.token, decision: d }, ['audit:read'], r);
    expect(routed).toMatchObject({ mode: 'report-only', reason: 'ip.denied', reasons: ['ip.denied', 'scope.insufficient'] });
  });

  it('asks for a token on a public route that requires scopes', async () => {
    const guard = createGuard(await basePolicy());
    const r = req(undefined, { path: '/health' });
    const d = await guard.evaluate(r);
    expect(guard.authorize({ token: undefined, decision: d }, ['x'], r).reason).toBe('token.missing');
  });

  it('throws a 500 TokenGuardError when the guard never saw the request', async () => {
    const guard = createGuard(await basePolicy());
    expect(() => guard.authorize(undefined, ['x'], req(undefined))).toThrow(expect.objectContaining({ code: 'guard.not_mounted', status: 500 }));
  });
});

describe('bad requests never crash', () => {
  it.each<[string, Partial<GuardRequest>]>([
    ['no method', { method: undefined as unknown as string }],
    ['a non-string path', { path: 42 as unknown as string }],
    ['no headers object', { headers: undefined as unknown as GuardRequest['headers'] }],
    ['a huge authorization header', { headers: { authorization: 'Bearer ' + 'a'.repeat(1_000_000) } }],
    ['an empty authorization array', { headers: { authorization: [] } }],
  ])('answers %s with a refusal', async (_name, over) => {
    const policy: TokenGuardPolicy = await basePolicy();
    const d = await createGuard(policy).evaluate(req(undefined, over));
    expect(d.effect).toBe('deny');
    expect([400, 401]).toContain(d.status);
  });
});
