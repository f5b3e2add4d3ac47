// Regression: with several issuer configurations (tenants), subject revocations were shared: one tenant's identity
// provider logging out its `alice` logged out every tenant's `alice`. A JWT of such a policy now also reads its
// issuer's own subject key (`isub:<name>:<sub>`), which `revokeSubject(sub, { issuer })` writes; the shared subject is
// still read, so a revocation without an issuer (and the SET receiver's) still refuses every tenant's.
// Here: two instances on RedisStore with near-caches, and stores that fail or answer nonsense on that second read.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Redis } from 'ioredis';
import { createGuard, MemoryStore, type GuardRequest, type TokenGuardPolicy, type TokenStore } from '../../src/index.js';
import { RedisStore } from '../../src/stores/redis.js';
import { deletePrefix, randomPrefix, redisClient, redisUp } from '../helpers/redis.js';
import { ACME, GLOBEX, NOW, accessToken as token, signer, tenantIssuers, type Signer } from '../helpers/tenants.js';

let acme: Signer;
let globex: Signer;
beforeAll(async () => {
  [acme, globex] = await Promise.all([signer('acme'), signer('globex')]);
});

const policy = (store: TokenStore): TokenGuardPolicy => ({
  jwt: tenantIssuers(acme, globex),
  store,
  trackUsage: false,
  rules: [{ path: '/orders/**', scopes: ['orders:read'] }],
});

const req = (t: string): GuardRequest => ({ method: 'GET', path: '/orders/1', headers: { authorization: `Bearer ${t}` }, remoteAddress: '127.0.0.1', now: NOW });

describe('the issuer subject key read beside the shared subject', () => {
  it('a store that fails, or answers nonsense, on the second read gives 503: never an allow', async () => {
    for (const bad of ['throw', 'reject', 'shape'] as const) {
      const inner = new MemoryStore();
      const store = Object.create(inner) as TokenStore;
      store.getRevocation = (id, subject, now) => {
        if (!subject?.startsWith('isub:')) return inner.getRevocation(id, subject, now);
        if (bad === 'throw') throw new Error('down');
        if (bad === 'reject') return Promise.reject(new Error('down'));
        return { revoked: true } as never;
      };
      const guard = createGuard(policy(store));
      const d = await guard.evaluate(req(await token(acme, ACME, 'alice', `t-${bad}`)));
      expect([bad, d.status, d.reason]).toEqual([bad, 503, 'store.unavailable']);
    }
  });

  it('the later of the two subject cut-offs holds, with its reason', async () => {
    const store = new MemoryStore();
    const guard = createGuard(policy(store));
    const early = await token(acme, ACME, 'hal', 'tok-1');
    await guard.revokeSubject('hal', { before: NOW.getTime() - 120_000, now: NOW, reason: 'offboarded' });
    expect((await guard.evaluate(req(early))).reason).toBe('ok');
    await guard.revokeSubject('hal', { issuer: ACME, now: NOW, reason: 'compromised' });
    const d = await guard.evaluate(req(early));
    expect([d.reason, d.detail]).toEqual(['token.revoked', 'subject revoked in store (reason: compromised)']);
    // The audit trail says whose: the shared revocation names no issuer, the narrow one its issuer.
    expect((await store.listLifecycleEvents({ subject: 'hal' })).map((e) => [e.type, e.issuer])).toEqual([
      ['subject.revoked', undefined],
      ['subject.revoked', ACME],
    ]);
  });
});

const RUN = randomPrefix('issuer-subjects');
let client: Redis | undefined;
describe.skipIf(!redisUp)('on RedisStore with near-caches, across two instances', () => {
  const subs: Redis[] = [];
  afterAll(async () => {
    for (const s of subs) s.disconnect();
    if (client) {
      await deletePrefix(client, RUN);
      client.disconnect();
    }
  });

  it("an issuer's revocation on instance A refuses only that issuer's user on instance B, at once", async () => {
    client = redisClient();
    const subscriber = () => {
      const s = redisClient();
      subs.push(s);
      return s;
    };
    const a = new RedisStore({ client, prefix: RUN, subscriber: subscriber(), durability: 'ignore' });
    const b = new RedisStore({ client: redisClient(), prefix: RUN, subscriber: subscriber(), durability: 'ignore' });
    await vi.waitFor(() => expect(a.stats().nearCacheEnabled && b.stats().nearCacheEnabled).toBe(true));
    const onA = createGuard(policy(a));
    const onB = createGuard(policy(b));
    const acmeIvy = await token(acme, ACME, 'ivy', 'tok-r1');
    const globexIvy = await token(globex, GLOBEX, 'ivy', 'tok-r2');
    // Cached on B (near-cache) before the revocation.
    for (let i = 0; i < 2; i++) expect([(await onB.evaluate(req(acmeIvy))).reason, (await onB.evaluate(req(globexIvy))).reason]).toEqual(['ok', 'ok']);
    await onA.revokeSubject('ivy', { issuer: ACME, now: NOW });
    expect([(await onB.evaluate(req(acmeIvy))).reason, (await onB.evaluate(req(globexIvy))).reason]).toEqual(['token.revoked', 'ok']);
    await onA.revokeSubject('ivy', { now: NOW });
    expect((await onB.evaluate(req(globexIvy))).reason).toBe('token.revoked');
    await Promise.all([a.close(), b.close()]);
  });
});
