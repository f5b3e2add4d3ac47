// The key lifecycle functions and the guard's lifecycle policy (maxAge, idleTimeout, rule maxTokenAge, revocation
// reasons, onLifecycle), on MemoryStore with a fake clock; the same flow on Redis is in scenarios/key-lifecycle-redis.
import { describe, expect, it } from 'vitest';
import {
  ApiKeyStateError,
  MemoryStore,
  PolicyError,
  UsageError,
  createApiKey,
  createGuard,
  findApiKey,
  listApiKeys,
  listLifecycleEvents,
  revokeApiKey,
  rotateApiKey,
  type Decision,
  type GuardRequest,
  type LifecycleEvent,
  type TokenGuardPolicy,
  type TokenStore,
} from '../../src/index.js';
import { jwtPolicy, NOW, NOW_S, signToken } from '../helpers/tokens.js';

const T0 = NOW.getTime();
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const req = (token: string, now: number, path = '/orders/1'): GuardRequest => ({
  method: 'GET',
  path,
  headers: { authorization: `Bearer ${token}` },
  remoteAddress: '203.0.113.9',
  now: new Date(now),
});

async function setup(over: Partial<TokenGuardPolicy> = {}) {
  const store = new MemoryStore();
  const events: LifecycleEvent[] = [];
  const guard = createGuard({
    apiKeys: { prefix: 'tg_' },
    store,
    rules: [{ path: '/orders/**', scopes: ['orders:read'] }],
    onLifecycle: (e) => void events.push(e),
    ...over,
  });
  const issue = (subject = 'svc-billing', now = T0) =>
    createApiKey(store, { prefix: 'tg_', subject, scopes: ['orders:read'], expiresIn: '90d', now: new Date(now), actor: 'alice' });
  return { store, guard, events, issue };
}

async function thrown(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

describe('listApiKeys', () => {
  it('shows metadata only: no hash and no key anywhere in the listing', async () => {
    const { store, issue } = await setup();
    const a = await issue();
    const b = await issue('svc-billing', T0 + 1000);
    const listed = await listApiKeys(store, 'svc-billing', { now: new Date(T0 + 2000) });
    expect(listed.map((k) => k.id)).toEqual([b.record.id, a.record.id]);
    for (const k of listed) expect(Object.keys(k)).not.toContain('hash');
    const text = JSON.stringify(listed);
    for (const secret of [a.key, b.key, a.record.hash, b.record.hash]) expect(text).not.toContain(secret);
    expect(listed[0]).toMatchObject({ prefix: 'tg_', lastFour: b.key.slice(-4), state: 'active', createdAt: new Date(T0 + 1000) });
    expect(await findApiKey(store, a.record.id)).toMatchObject({ id: a.record.id, subject: 'svc-billing' });
    expect(await findApiKey(store, 'key_unknown')).toBeUndefined();
  });

  it('refuses a store without a key inventory with UsageError store.unsupported', async () => {
    const bare = new Proxy(new MemoryStore(), {
      get: (t, k) => (k === 'listApiKeys' || k === 'getApiKeyById' ? undefined : Reflect.get(t, k, t)),
    }) as TokenStore;
    expect(await thrown(() => listApiKeys(bare, 'svc'))).toMatchObject({ name: 'UsageError', code: 'store.unsupported' });
    expect(await thrown(() => rotateApiKey(bare, 'key_1'))).toMatchObject({ name: 'UsageError', code: 'store.unsupported' });
    expect(await thrown(() => listApiKeys(new MemoryStore(), ''))).toBeInstanceOf(UsageError);
  });
});

describe('rotateApiKey', () => {
  it('links both keys, keeps both working during the grace with Deprecation and Sunset on the old, then refuses the old saying it was rotated', async () => {
    const { store, guard, issue } = await setup();
    const old = await issue();
    const rotated = await rotateApiKey(store, old.record.id, { grace: '1h', now: new Date(T0 + HOUR), actor: 'bob' });
    expect(rotated.record).toMatchObject({ rotatedFrom: old.record.id, subject: 'svc-billing', scopes: ['orders:read'], expiresAt: T0 + HOUR + 90 * DAY });
    expect(rotated.previous).toMatchObject({ rotatedTo: rotated.record.id, state: 'grace', revocationReason: 'rotated', revokedAt: new Date(T0 + 2 * HOUR) });

    const during: Decision = await guard.evaluate(req(old.key, T0 + HOUR + 1));
    expect(during.effect).toBe('allow');
    expect(during.headers).toMatchObject({ Deprecation: `@${(T0 + HOUR) / 1000}`, Sunset: new Date(T0 + 2 * HOUR).toUTCString() });
    const successor = await guard.evaluate(req(rotated.key, T0 + HOUR + 1));
    expect(successor.effect).toBe('allow');
    expect(successor.headers['Deprecation']).toBeUndefined();

    const after = await guard.evaluate(req(old.key, T0 + 2 * HOUR));
    expect([after.status, after.reason]).toEqual([401, 'token.revoked']);
    expect(after.detail).toBe(`API key rotated to ${rotated.record.id}; its grace ended at ${new Date(T0 + 2 * HOUR).toISOString()}`);
    expect((await guard.evaluate(req(rotated.key, T0 + 2 * HOUR))).effect).toBe('allow');
  });

  it('with no grace refuses the old key at once', async () => {
    const { store, guard, issue } = await setup();
    const old = await issue();
    await rotateApiKey(store, old.record.id, { now: new Date(T0) });
    expect((await guard.evaluate(req(old.key, T0))).reason).toBe('token.revoked');
  });

  it('never lets the grace outlive the old key', async () => {
    const { store, issue } = await setup();
    const old = await issue();
    const { sunsetAt } = await rotateApiKey(store, old.record.id, { grace: '30d', now: new Date(T0 + 80 * DAY) });
    expect(sunsetAt).toEqual(new Date(T0 + 90 * DAY));
  });

  it('refuses an unknown, revoked, already rotated or expired key with a typed ApiKeyStateError', async () => {
    const { store, issue } = await setup();
    expect(await thrown(() => rotateApiKey(store, 'key_nope', { now: NOW }))).toMatchObject({
      name: 'ApiKeyStateError',
      code: 'api_key.not_found',
      keyId: 'key_nope',
      status: 404,
      expose: false,
    });
    const revoked = await issue();
    await revokeApiKey(store, revoked.record.id, { reason: 'compromised', now: NOW });
    const e = await thrown(() => rotateApiKey(store, revoked.record.id, { now: NOW }));
    expect(e).toBeInstanceOf(ApiKeyStateError);
    expect(e).toMatchObject({ code: 'api_key.revoked', status: 409, message: `API key ${revoked.record.id} is revoked (compromised)` });
    const twice = await issue();
    await rotateApiKey(store, twice.record.id, { grace: '1h', now: NOW });
    expect(await thrown(() => rotateApiKey(store, twice.record.id, { now: NOW }))).toMatchObject({ code: 'api_key.rotated' });
    const expired = await issue();
    expect(await thrown(() => rotateApiKey(store, expired.record.id, { now: new Date(T0 + 91 * DAY) }))).toMatchObject({ code: 'api_key.expired' });
  });

  it.each([
    ['a negative number', -1],
    ['a negative string', '-1h'],
    ['more than 30 days', '31d'],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['a word', 'soon'],
  ])('refuses a grace of %s with a UsageError and changes nothing', async (_, grace) => {
    const { store, issue } = await setup();
    const old = await issue();
    expect(await thrown(() => rotateApiKey(store, old.record.id, { grace: grace as never, now: NOW }))).toBeInstanceOf(UsageError);
    expect(await listApiKeys(store, 'svc-billing', { now: NOW })).toMatchObject([{ id: old.record.id, state: 'active' }]);
  });

  it('never lets a use-limited key serve more than its uses across the old key and its successor', async () => {
    const { store, guard } = await setup();
    const old = await createApiKey(store, { prefix: 'tg_', subject: 'ci', scopes: ['orders:read'], expiresIn: '1d', uses: 3, now: new Date(T0) });
    expect((await guard.evaluate(req(old.key, T0))).effect).toBe('allow');
    // A grace would keep the old key's own uses beside the successor's copy of them: refused, and nothing changes.
    const e = await thrown(() => rotateApiKey(store, old.record.id, { grace: '1h', now: new Date(T0) }));
    expect(e).toBeInstanceOf(UsageError);
    expect(e).toMatchObject({ code: 'usage.invalid_argument', help: expect.stringContaining('grace 0') });
    expect(await listApiKeys(store, 'ci', { now: new Date(T0) })).toMatchObject([{ id: old.record.id, state: 'active', remaining: 2 }]);

    const rotated = await rotateApiKey(store, old.record.id, { grace: 0, now: new Date(T0) });
    expect(rotated.record.remaining).toBe(2);
    let allowed = 1;
    for (let i = 0; i < 5; i++) {
      if ((await guard.evaluate(req(old.key, T0 + 1))).effect === 'allow') allowed++;
      if ((await guard.evaluate(req(rotated.key, T0 + 1))).effect === 'allow') allowed++;
    }
    expect(allowed).toBe(3);
  });

  it('gives the successor only the uses left once the old key is marked: requests during the rotation do not add uses', async () => {
    const { store, guard } = await setup();
    const old = await createApiKey(store, { prefix: 'tg_', subject: 'ci', scopes: ['orders:read'], expiresIn: '1d', uses: 3, now: new Date(T0) });
    // Two requests on the old key land after rotateApiKey read its record and before it marks it rotated.
    const racing = Object.create(store) as TokenStore;
    racing.updateApiKey = async (hash, patch, condition) => {
      if (condition?.unrotatedAndUnrevoked) for (let i = 0; i < 2; i++) expect((await guard.evaluate(req(old.key, T0))).effect).toBe('allow');
      return store.updateApiKey(hash, patch, condition);
    };
    const rotated = await rotateApiKey(racing, old.record.id, { grace: 0, now: new Date(T0) });
    expect(rotated.record.remaining).toBe(1);
    expect(await listApiKeys(store, 'ci', { now: new Date(T0) })).toContainEqual(expect.objectContaining({ id: rotated.record.id, remaining: 1 }));
    const answers: string[] = [];
    for (let i = 0; i < 3; i++) answers.push((await guard.evaluate(req(rotated.key, T0 + 1))).effect, (await guard.evaluate(req(old.key, T0 + 1))).effect);
    // Three uses in all: two on the old key during the rotation, one on the successor.
    expect(answers.filter((a) => a === 'allow')).toHaveLength(1);
  });

  it('refuses a request that read the old key before the rotation and spends its use after it: the successor holds every use left', async () => {
    const { store } = await setup();
    const old = await createApiKey(store, { prefix: 'tg_', subject: 'ci', scopes: ['orders:read'], expiresIn: '1d', uses: 3, now: new Date(T0) });
    // A guard whose request has authenticated with the old key's record and waits in useApiKey while the key is rotated.
    let arrived!: () => void;
    const atUse = new Promise<void>((r) => (arrived = r));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow = Object.create(store) as TokenStore;
    slow.useApiKey = async (hash) => {
      arrived();
      await gate;
      return store.useApiKey(hash);
    };
    const guard = createGuard({ apiKeys: { prefix: 'tg_' }, store: slow, rules: [{ path: '/orders/**', scopes: ['orders:read'] }] });
    const inFlight = guard.evaluate(req(old.key, T0));
    await atUse;
    const rotated = await rotateApiKey(store, old.record.id, { grace: 0, now: new Date(T0) });
    expect(rotated.record.remaining).toBe(3);
    release();
    // Refused as what it is, a rotated key, not as one whose uses ran out.
    expect(await inFlight).toMatchObject({
      effect: 'deny',
      reason: 'token.revoked',
      detail: `API key rotated to ${rotated.record.id}; its grace ended at ${new Date(T0).toISOString()}`,
    });
    const answers: string[] = [];
    for (let i = 0; i < 4; i++) answers.push((await guard.evaluate(req(rotated.key, T0 + 1))).effect);
    expect(answers).toEqual(['allow', 'allow', 'allow', 'deny']);
  });

  it('keeps refusing, with "no uses left", when the store cannot say why a use was refused', async () => {
    const { store } = await setup();
    const key = await createApiKey(store, { prefix: 'tg_', subject: 'ci', scopes: ['orders:read'], expiresIn: '1d', uses: 1, now: new Date(T0) });
    const failing = Object.create(store) as TokenStore;
    let reads = 0;
    failing.getApiKey = async (hash) => {
      if (++reads > 1) throw new Error('connection reset');
      return store.getApiKey(hash);
    };
    // Another instance spends the last use between this request's read and its use.
    failing.useApiKey = async (hash) => {
      await store.useApiKey(hash);
      return store.useApiKey(hash);
    };
    const guard = createGuard({ apiKeys: { prefix: 'tg_' }, store: failing, rules: [{ path: '/orders/**', scopes: ['orders:read'] }] });
    expect(await guard.evaluate(req(key.key, T0))).toMatchObject({ effect: 'deny', reason: 'token.expired', detail: 'no uses left', status: 401 });
    expect(reads).toBe(2);
  });

  it('refuses a bad reason, actor or now before touching the store', async () => {
    const { store, issue } = await setup();
    const old = await issue();
    for (const options of [{ reason: 'Bad Reason' }, { actor: '' }, { now: new Date(Number.NaN) }]) {
      expect(await thrown(() => rotateApiKey(store, old.record.id, options as never))).toBeInstanceOf(UsageError);
    }
    expect((await listApiKeys(store, 'svc-billing'))[0]?.rotatedTo).toBeUndefined();
  });
});

describe('revocation reasons', () => {
  it('revokeApiKey keeps the reason on the record; decisions show it and the event carries it', async () => {
    const { store, guard, issue } = await setup();
    const k = await issue();
    const events: LifecycleEvent[] = [];
    await revokeApiKey(store, k.record.id, { reason: 'compromised', actor: 'alice', now: new Date(T0 + 1), onEvent: (e) => void events.push(e) });
    const d = await guard.evaluate(req(k.key, T0 + 2));
    expect([d.reason, d.detail]).toEqual(['token.revoked', 'API key revoked (reason: compromised)']);
    expect(events).toMatchObject([{ type: 'key.revoked', tokenId: k.record.id, subject: 'svc-billing', actor: 'alice', reason: 'compromised', at: T0 + 1 }]);
    expect(await thrown(() => revokeApiKey(store, k.record.id, { now: new Date(T0 + 3) }))).toMatchObject({ code: 'api_key.revoked' });
  });

  it('a rotation running while the key is revoked backs out: no successor, and the key stays revoked', async () => {
    const { store, guard, issue } = await setup();
    const k = await issue();
    // The rotation reads the key (not yet revoked), then stalls before its writes; the revocation completes meanwhile.
    let release: () => void = () => undefined;
    const stalled = new Promise<void>((resolve) => {
      release = resolve;
    });
    const put = store.putApiKey.bind(store);
    store.putApiKey = async (record) => {
      await stalled;
      return put(record);
    };
    const rotation = rotateApiKey(store, k.record.id, { grace: '24h', now: new Date(T0 + 1) });
    await new Promise((resolve) => setTimeout(resolve, 0));
    await revokeApiKey(store, k.record.id, { reason: 'compromised', now: new Date(T0 + 2) });
    release();
    expect(await thrown(() => rotation)).toMatchObject({ code: 'api_key.revoked' });
    // A compromised key gets no successor, and its record keeps the revocation.
    expect((await listApiKeys(store, 'svc-billing', { now: new Date(T0 + 3) })).map((s) => s.id)).toEqual([k.record.id]);
    expect((await findApiKey(store, k.record.id))?.revokedAt?.getTime()).toBe(T0 + 2);
    const d = await guard.evaluate(req(k.key, T0 + 3));
    expect([d.status, d.reason]).toEqual([401, 'token.revoked']);
  });

  it('of two rotations of one key running at once, one wins and the other backs out: never two live successors', async () => {
    const { store, guard, issue } = await setup();
    const k = await issue();
    // Rotation A reads the key and issues its successor; rotation B runs whole between A's two writes.
    const put = store.putApiKey.bind(store);
    let inside = false;
    let b: Awaited<ReturnType<typeof rotateApiKey>> | undefined;
    store.putApiKey = async (record) => {
      await put(record);
      if (inside) return;
      inside = true;
      b = await rotateApiKey(store, k.record.id, { now: new Date(T0 + 2) });
    };
    const a = await thrown(() => rotateApiKey(store, k.record.id, { now: new Date(T0 + 1) }));
    expect(a).toMatchObject({ code: 'api_key.rotated' });
    if (!b) throw new Error('rotation B did not run');
    const keys = await listApiKeys(store, 'svc-billing', { now: new Date(T0 + 3) });
    expect(keys.map((s) => s.id).sort()).toEqual([k.record.id, b.record.id].sort());
    expect((await findApiKey(store, k.record.id))?.rotatedTo).toBe(b.record.id);
    const d = await guard.evaluate(req(b.key, T0 + 3));
    expect([d.status, d.reason]).toEqual([200, 'ok']);
  });

  it('guard.revoke and guard.revokeSubject keep the reason, show it in detail and report the events', async () => {
    const { guard, events, issue } = await setup();
    const k = await issue();
    const other = await issue('svc-other');
    await guard.revoke(k.record.id, { reason: 'compromised', actor: 'alice', now: new Date(T0 + 1) });
    expect((await guard.evaluate(req(k.key, T0 + 2))).detail).toBe('revoked in store (reason: compromised)');
    await guard.revokeSubject('svc-other', { reason: 'offboarded', now: new Date(T0 + 3) });
    expect((await guard.evaluate(req(other.key, T0 + 4))).detail).toBe('subject revoked in store (reason: offboarded)');
    expect(events.map((e) => [e.type, e.tokenId, e.subject, e.reason])).toEqual([
      ['token.revoked', k.record.id, undefined, 'compromised'],
      ['subject.revoked', undefined, 'svc-other', 'offboarded'],
    ]);
  });

  it('guard.revoke of a verified API key reports key.revoked with its subject', async () => {
    const { guard, events, issue } = await setup();
    const k = await issue();
    const d = await guard.evaluate(req(k.key, T0 + 1));
    await guard.revoke(d.token as NonNullable<Decision['token']>, { now: new Date(T0 + 2) });
    expect(events).toMatchObject([{ type: 'key.revoked', tokenId: k.record.id, subject: 'svc-billing' }]);
  });

  it('a reason that is not a lower-case word is a UsageError, and nothing is revoked', async () => {
    const { guard, issue } = await setup();
    const k = await issue();
    expect(await thrown(() => guard.revoke(k.record.id, { reason: 'x\nInjected: 1' }))).toBeInstanceOf(UsageError);
    expect(await thrown(() => guard.revokeSubject('svc-billing', { reason: 'x'.repeat(65) }))).toBeInstanceOf(UsageError);
    expect((await guard.evaluate(req(k.key, T0 + 1))).effect).toBe('allow');
  });

  it('an onLifecycle that throws does not break a revocation', async () => {
    const { guard, issue } = await setup({
      onLifecycle: () => {
        throw new Error('hook failed');
      },
    });
    const k = await issue();
    await guard.revoke(k.record.id, { now: new Date(T0) });
    expect((await guard.evaluate(req(k.key, T0 + 1))).reason).toBe('token.revoked');
  });
});

describe('apiKeys.maxAge and idleTimeout', () => {
  it('warns with Sunset during maxAgeWarning, then refuses as expired and reports key.expired once', async () => {
    const { guard, events, issue, store } = await setup({ apiKeys: { prefix: 'tg_', maxAge: '30d', maxAgeWarning: '2d' } });
    const k = await issue();
    expect((await guard.evaluate(req(k.key, T0 + 27 * DAY))).headers['Sunset']).toBeUndefined();
    const warned = await guard.evaluate(req(k.key, T0 + 29 * DAY));
    expect([warned.effect, warned.headers['Sunset'], warned.headers['Deprecation']]).toEqual(['allow', new Date(T0 + 30 * DAY).toUTCString(), undefined]);
    const refused = await guard.evaluate(req(k.key, T0 + 30 * DAY));
    expect([refused.status, refused.reason]).toEqual([401, 'token.expired']);
    expect(refused.detail).toMatch(/^API key older than apiKeys\.maxAge \(30d\)/);
    await guard.evaluate(req(k.key, T0 + 31 * DAY));
    expect(events.map((e) => [e.type, e.reason, e.actor])).toEqual([['key.expired', 'max_age', 'guard']]);
    expect((await listLifecycleEvents(store)).map((e) => e.type)).toEqual(['key.issued', 'key.expired']);
  });

  it('reports a key past its own expiry as key.expired on its first refusal', async () => {
    const { guard, events, issue } = await setup();
    const k = await issue();
    expect((await guard.evaluate(req(k.key, T0 + 90 * DAY))).reason).toBe('token.expired');
    expect((await guard.evaluate(req(k.key, T0 + 91 * DAY))).reason).toBe('token.expired');
    expect(events).toMatchObject([{ type: 'key.expired', tokenId: k.record.id, reason: 'expired' }]);
  });

  it('retires a key unused for idleTimeout on its next use, once, and a used key stays', async () => {
    const { guard, events, issue, store } = await setup({ apiKeys: { prefix: 'tg_', idleTimeout: '7d' } });
    const idle = await issue();
    const busy = await issue('svc-busy');
    for (let day = 1; day <= 10; day += 3) expect((await guard.evaluate(req(busy.key, T0 + day * DAY))).effect).toBe('allow');
    const d = await guard.evaluate(req(idle.key, T0 + 8 * DAY));
    expect([d.reason, d.detail]).toEqual(['token.revoked', `API key retired: unused since ${NOW.toISOString()}, longer than apiKeys.idleTimeout (7d)`]);
    expect((await guard.evaluate(req(idle.key, T0 + 9 * DAY))).detail).toBe('API key revoked (reason: idle)');
    expect(events).toMatchObject([{ type: 'key.retired', tokenId: idle.record.id, reason: 'idle', actor: 'guard', subject: 'svc-billing' }]);
    expect((await findApiKey(store, idle.record.id, { now: new Date(T0 + 9 * DAY) }))?.state).toBe('revoked');
  });

  it.each([
    [{ apiKeys: { prefix: 'tg_', idleTimeout: '7d' }, trackUsage: false }, 'apiKeys.idleTimeout'],
    [{ apiKeys: { prefix: 'tg_', maxAgeWarning: '7d' } }, 'apiKeys.maxAgeWarning'],
    [{ apiKeys: { prefix: 'tg_', maxAge: 0 } }, 'apiKeys.maxAge'],
    [{ apiKeys: { prefix: 'tg_', idleTimeout: 'soon' } }, 'apiKeys.idleTimeout'],
    [{ apiKeys: { prefix: 'tg_' }, rules: [{ path: '/x', maxTokenAge: '0s' }] }, 'rules[0].maxTokenAge'],
  ])('refuses a bad lifecycle policy at start-up (%j)', (over, path) => {
    const e = (() => {
      try {
        createGuard({ store: new MemoryStore(), ...(over as Partial<TokenGuardPolicy>) } as TokenGuardPolicy);
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(PolicyError);
    expect((e as PolicyError).issues.map((i) => i.path)).toContain(path);
  });
});

describe('rule maxTokenAge', () => {
  async function jwtGuard() {
    return createGuard({
      jwt: await jwtPolicy(),
      store: new MemoryStore(),
      rules: [{ path: '/admin/**', maxTokenAge: '5m' }],
      unmatched: 'authenticate',
    });
  }

  it('refuses a JWT issued longer ago than the rule allows, on that rule only', async () => {
    const guard = await jwtGuard();
    const old = await signToken({}, { iat: NOW_S - 600 });
    const d = await guard.evaluate(req(old, T0, '/admin/users'));
    expect([d.status, d.reason]).toEqual([401, 'token.expired']);
    expect(d.detail).toContain('maxTokenAge');
    expect((await guard.evaluate(req(old, T0, '/orders/1'))).effect).toBe('allow');
    expect((await guard.evaluate(req(await signToken({}, { iat: NOW_S - 60 }), T0, '/admin/users'))).effect).toBe('allow');
  });

  it('refuses a JWT without iat on a rule with maxTokenAge', async () => {
    const guard = await jwtGuard();
    const d = await guard.evaluate(req(await signToken({}, { iat: null, exp: NOW_S + 60 }), T0, '/admin/users'));
    expect([d.reason, d.detail]).toEqual(['token.expired', 'token has no issue time (iat) and this rule sets maxTokenAge']);
  });
});
