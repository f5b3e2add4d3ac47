// guard.explain(request, { spend: false }): a dry run for asking about production from a console (the CLI's
// `explain` default). It must read what a request would read and spend nothing a request would spend: a limited key's
// use, a pre-authentication budget, a rate-limit unit (shown as not checked), an idle key's retirement and its
// lifecycle event. A real request afterwards gets exactly what it would have got without the dry runs.
import { describe, expect, it } from 'vitest';
import { createGuard, MemoryStore, type Explanation, type GuardRequest, type LifecycleEvent, type TokenStore } from '../../src/index.js';
import { DPOP_ORIGIN, dpopClient, withoutIsClaimed } from '../helpers/dpop.js';
import { basePolicy, NOW, storeApiKey } from '../helpers/tokens.js';

const req = (token: string, over: Partial<GuardRequest> = {}): GuardRequest => ({
  method: 'GET',
  path: '/orders/1',
  headers: { authorization: `Bearer ${token}` },
  remoteAddress: '203.0.113.9',
  now: NOW,
  ...over,
});
const DAY = 86_400_000;

describe('guard.explain with spend: false', () => {
  it("reads a limited key's last use without taking it; a real request then takes it, and the next dry run sees none left", async () => {
    const store = new MemoryStore();
    const guard = createGuard(await basePolicy({ store }));
    const key = await storeApiKey(store, { uses: 1 });
    for (let i = 0; i < 3; i++) {
      const x = await guard.explain(req(key.key), { spend: false });
      expect([x.decision.effect, x.spent, x.steps.find((s) => s.step === 'keyUses')?.outcome]).toEqual(['allow', false, 'pass']);
    }
    expect((await store.getApiKey(key.record.hash))?.remaining).toBe(1);
    expect((await guard.evaluate(req(key.key))).effect).toBe('allow');
    expect((await store.getApiKey(key.record.hash))?.remaining).toBe(0);
    expect((await guard.explain(req(key.key), { spend: false })).decision).toMatchObject({ effect: 'deny', reason: 'token.expired' });
  });

  it('peeks at rate limits, spending no unit: the real requests after it get the whole budget, and a spent one shows', async () => {
    const store = new MemoryStore();
    const guard = createGuard(await basePolicy({ store, rateLimit: { limit: 1, window: '1h' } }));
    const key = await storeApiKey(store);
    for (let i = 0; i < 3; i++) {
      const x = await guard.explain(req(key.key), { spend: false });
      expect(x.decision.effect).toBe('allow');
      expect(x.steps.find((s) => s.step === 'rateLimit')?.outcome).toBe('pass');
    }
    expect([(await guard.evaluate(req(key.key))).effect, (await guard.evaluate(req(key.key))).reason]).toEqual(['allow', 'rate.limited']);
    const spent = await guard.explain(req(key.key), { spend: false });
    expect([spent.decision.reason, spent.steps.find((s) => s.step === 'rateLimit')?.outcome]).toEqual(['rate.limited', 'fail']);
    // A store that cannot peek: shown as not checked, nothing spent.
    const bare = new MemoryStore();
    const unpeekable = Object.assign(Object.create(bare) as MemoryStore, { peekRateLimit: undefined });
    const blind = createGuard(await basePolicy({ store: unpeekable, rateLimit: { limit: 1, window: '1h' } }));
    const held = await storeApiKey(bare);
    const x = await blind.explain(req(held.key), { spend: false });
    expect(x.steps.find((s) => s.step === 'rateLimit')).toMatchObject({ outcome: 'skipped', detail: expect.stringContaining('not checked') });
    expect((await blind.evaluate(req(held.key))).effect).toBe('allow');
    // The default spends, as a request does.
    const spending = createGuard(await basePolicy({ store: new MemoryStore(), rateLimit: { limit: 1, window: '1h' } }));
    const other = await storeApiKey(spending.store as MemoryStore);
    expect((await spending.explain(req(other.key))).spent).toBe(true);
    expect((await spending.evaluate(req(other.key))).reason).toBe('rate.limited');
  });

  it("reads a client's pre-authentication budget without spending it", async () => {
    const store = new MemoryStore();
    const guard = createGuard(await basePolicy({ store, preAuthLimit: { limit: 1, window: '1h' } }));
    const key = await storeApiKey(store);
    for (let i = 0; i < 3; i++) expect((await guard.explain(req(key.key), { spend: false })).decision.effect).toBe('allow');
    expect([(await guard.evaluate(req(key.key))).effect, (await guard.evaluate(req(key.key))).reason]).toEqual(['allow', 'rate.limited']);
    // A dry run dated after the window (its look finds the budget back) keeps nothing: the client stays limited now.
    expect((await guard.explain(req(key.key, { now: new Date(NOW.getTime() + 2 * 3_600_000) }), { spend: false })).decision.effect).toBe('allow');
    expect((await guard.evaluate(req(key.key))).reason).toBe('rate.limited');
  });

  it('refuses an idle key as a request would, but neither retires it nor reports it', async () => {
    const store = new MemoryStore();
    const events: LifecycleEvent[] = [];
    const guard = createGuard(await basePolicy({ store, apiKeys: { prefix: 'tg_', idleTimeout: '7d' }, onLifecycle: (e) => void events.push(e) }));
    const key = await storeApiKey(store);
    const later = new Date(NOW.getTime() + 10 * DAY);
    const x = await guard.explain(req(key.key, { now: later }), { spend: false });
    expect(x.decision).toMatchObject({ effect: 'deny', reason: 'token.revoked', detail: expect.stringContaining('retired') });
    expect((await store.getApiKey(key.record.hash))?.revokedAt).toBeUndefined();
    expect(events).toEqual([]);
    // A real request retires it, once.
    expect((await guard.evaluate(req(key.key, { now: later }))).reason).toBe('token.revoked');
    expect((await store.getApiKey(key.record.hash))?.revocationReason).toBe('idle');
    expect(events.map((e) => e.type)).toEqual(['key.retired']);
  });

  describe('a DPoP proof', () => {
    const dpopPolicy = (store: TokenStore) => basePolicy({ store, trackUsage: false, dpop: { origins: [DPOP_ORIGIN], maxClaimsPerKey: 4 } });
    const commitOf = (x: Explanation) => x.steps.find((s) => s.phase === 'commit');

    it('is not claimed, and the trace says so (and what a request could still meet); a request then uses it once', async () => {
      const guard = createGuard(await dpopPolicy(new MemoryStore()));
      const c = await dpopClient();
      const p = await c.proof();
      for (let i = 0; i < 2; i++) {
        const x = await guard.explain(c.req(p), { spend: false });
        expect(x.decision.effect).toBe('allow');
        expect(commitOf(x)).toMatchObject({ step: 'pop', outcome: 'skipped', detail: expect.stringMatching(/^not claimed \(a dry run\).*maxClaimsPerKey = 4/) });
      }
      expect((await guard.evaluate(c.req(p))).reason).toBe('ok');
      const replay = await guard.explain(c.req(p), { spend: false });
      expect([replay.decision.reason, commitOf(replay)]).toEqual(['pop.invalid', undefined]);
    });

    it('is shown as not checked on a store that cannot read claims, where a replay meets its refusal only at the claim', async () => {
      const guard = createGuard(await dpopPolicy(withoutIsClaimed(new MemoryStore())));
      const c = await dpopClient();
      const p = await c.proof();
      expect((await guard.evaluate(c.req(p))).reason).toBe('ok');
      const x = await guard.explain(c.req(p), { spend: false });
      expect(x.decision.effect).toBe('allow');
      expect(commitOf(x)).toMatchObject({ step: 'pop', outcome: 'skipped', detail: expect.stringMatching(/^not checked \(a dry run\).*no isClaimed/) });
      expect((await guard.evaluate(c.req(p))).reason).toBe('pop.invalid');
    });

    it("is claimed by an explain that spends, whose trace shows the claim taken (and a replay's refused)", async () => {
      const guard = createGuard(await dpopPolicy(withoutIsClaimed(new MemoryStore())));
      const c = await dpopClient();
      const p = await c.proof();
      const first = await guard.explain(c.req(p));
      expect([first.decision.reason, commitOf(first)]).toEqual(['ok', { phase: 'commit', step: 'pop', outcome: 'pass' }]);
      const replay = await guard.explain(c.req(p));
      expect([replay.decision.reason, commitOf(replay)]).toEqual([
        'pop.invalid',
        { phase: 'commit', step: 'pop', outcome: 'fail', reason: 'pop.invalid', detail: expect.stringContaining('replayed') },
      ]);
    });
  });
});
