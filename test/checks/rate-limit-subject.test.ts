// Rate limits per verified subject (issue 9): `rateLimit: { by: 'subject' }` counts every token of a subject together,
// through real HTTP on MemoryStore and across two guards sharing one Redis; refused requests spend no shared budget;
// a trialled rule's subject limit is reported, not enforced; subject counters never collide with a token's.
import express from 'express';
import request from 'supertest';
import { afterAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { createGuard, issueApiKey, MemoryStore, PolicyError, type GuardRequest, type TokenGuardPolicy, type TokenStore } from '../../src/index.js';
import { tokenGuard } from '../../src/adapters/express.js';
import { RedisStore } from '../../src/stores/redis.js';
import { basePolicy, NOW, signToken } from '../helpers/tokens.js';
import { deletePrefix, keysWithPrefix, randomPrefix, redisClient, redisUp } from '../helpers/redis.js';

let seq = 0;
/** A fresh token of `sub` (its own jti, so its own token counters). */
const tokenOf = (sub: string | null, extra: Record<string, unknown> = {}) => signToken({ jti: `subj-${seq++}`, scope: 'orders:read reports:read', ...extra }, { sub });

const at = (path: string, token: string): GuardRequest => ({ method: 'GET', path, headers: { authorization: `Bearer ${token}` }, remoteAddress: '203.0.113.9', now: NOW });

const RULES: TokenGuardPolicy['rules'] = [
  { methods: ['GET'], path: '/orders/**', scopes: ['orders:read'] },
  { methods: ['GET'], path: '/reports/**', scopes: ['reports:read'] },
];

async function app(store: TokenStore, overrides: Partial<TokenGuardPolicy>): Promise<express.Express> {
  const a = express();
  a.use(tokenGuard(await basePolicy({ store, trackUsage: false, rules: RULES, ...overrides })));
  a.get(['/orders/:id', '/reports/:id'], (_req, res) => void res.json({ ok: true }));
  return a;
}
const get = (a: express.Express, path: string, token: string) => request(a).get(path).set('Authorization', `Bearer ${token}`);

describe("rateLimit by: 'subject' through Express", () => {
  it('counts two tokens of one subject together; another subject keeps its own budget', async () => {
    const a = await app(new MemoryStore(), { rateLimit: { limit: 3, window: '1m', by: 'subject' } });
    const [t1, t2, bob] = await Promise.all([tokenOf('alice'), tokenOf('alice'), tokenOf('bob')]);
    const seen: unknown[] = [];
    for (const t of [t1, t2, t1]) {
      const res = await get(a, '/orders/1', t);
      seen.push([res.status, res.headers['ratelimit-limit'], res.headers['ratelimit-remaining']]);
    }
    expect(seen).toEqual([
      [200, '3', '2'],
      [200, '3', '1'],
      [200, '3', '0'],
    ]);
    const refused = await get(a, '/orders/1', t2);
    expect([refused.status, refused.body.reason, refused.headers['retry-after']]).toEqual([429, 'rate.limited', '20']);
    expect((await get(a, '/orders/1', bob)).status).toBe(200);
  });

  it('RateLimit-Policy and RateLimit name the token counter and the subject counter (s:), token first', async () => {
    const a = await app(new MemoryStore(), {
      rateLimit: { limit: 5, window: '1m' },
      rules: [{ methods: ['GET'], path: '/orders/**', scopes: ['orders:read'], rateLimit: { limit: 3, window: '1m', by: 'subject' } }],
    });
    const res = await get(a, '/orders/1', await tokenOf('alice'));
    expect(res.status).toBe(200);
    expect(res.headers['ratelimit-policy']).toMatch(/^"policy";q=5;w=60, "s:rule:[^"]+";q=3;w=60$/);
    expect(res.headers['ratelimit']).toMatch(/^"policy";r=4;t=12, "s:rule:[^"]+";r=2;t=20$/);
  });

  it("a request refused by its token's own limit spends none of the subject's shared budget", async () => {
    const a = await app(new MemoryStore(), {
      rateLimit: { limit: 2, window: '1m' },
      rules: [{ methods: ['GET'], path: '/orders/**', scopes: ['orders:read'], rateLimit: { limit: 3, window: '1m', by: 'subject' } }],
    });
    const [t1, t2] = await Promise.all([tokenOf('alice'), tokenOf('alice')]);
    expect((await get(a, '/orders/1', t1)).status).toBe(200);
    expect((await get(a, '/orders/1', t1)).status).toBe(200);
    // t1 is over its own limit of 2: refused, and alice's subject counter (2 of 3 used) is left as it was.
    for (let i = 0; i < 5; i++) expect((await get(a, '/orders/1', t1)).status).toBe(429);
    const third = await get(a, '/orders/1', t2);
    expect([third.status, third.headers['ratelimit-remaining']]).toEqual([200, '0']);
    expect((await get(a, '/orders/1', t2)).body.reason).toBe('rate.limited');
  });

  it("a request refused by its subject's limit spends none of the subject's budget and none of another token's", async () => {
    const a = await app(new MemoryStore(), {
      rateLimit: { limit: 3, window: '1m' },
      rules: [
        { methods: ['GET'], path: '/orders/**', scopes: ['orders:read'], rateLimit: { limit: 2, window: '1m', by: 'subject' } },
        { methods: ['GET'], path: '/reports/**', scopes: ['reports:read'] },
      ],
    });
    const [t1, t2, t3] = await Promise.all([tokenOf('alice'), tokenOf('alice'), tokenOf('alice')]);
    expect((await get(a, '/orders/1', t1)).status).toBe(200);
    expect((await get(a, '/orders/1', t2)).status).toBe(200);
    // Over alice's limit of 2: t3's refusals change nothing for t1 and t2, whose token counters still read 3 − 1.
    for (let i = 0; i < 3; i++) expect((await get(a, '/orders/1', t3)).body.reason).toBe('rate.limited');
    // On a route without the subject limit, t1 and t2 still have 2 of their own 3 each.
    const r1 = await get(a, '/reports/1', t1);
    const r2 = await get(a, '/reports/1', t2);
    expect([r1.status, r1.headers['ratelimit-remaining'], r2.status, r2.headers['ratelimit-remaining']]).toEqual([200, '1', 200, '1']);
  });

  it('counts API keys of one subject together with a key record limit by subject', async () => {
    const store = new MemoryStore();
    const a = await app(store, {});
    const keys = [0, 1].map(() =>
      issueApiKey({
        prefix: 'tg_',
        subject: 'svc',
        scopes: ['orders:read'],
        expiresIn: '30d',
        now: new Date(NOW.getTime() - 1000),
        rateLimit: { limit: 2, window: '1m', by: 'subject' },
      }),
    );
    for (const k of keys) await store.putApiKey(k.record);
    const [k1, k2] = keys.map((k) => k.key) as [string, string];
    expect((await get(a, '/orders/1', k1)).status).toBe(200);
    expect((await get(a, '/orders/1', k2)).status).toBe(200);
    expect((await get(a, '/orders/1', k1)).status).toBe(429);
  });
});

describe("rateLimit by: 'subject' on the guard", () => {
  it("a trialled rule's subject limit is reported, not enforced", async () => {
    const guard = createGuard(
      await basePolicy({
        trackUsage: false,
        rules: [{ methods: ['GET'], path: '/orders/**', scopes: ['orders:read'], mode: 'report-only', rateLimit: { limit: 1, window: '1m', by: 'subject' } }],
      }),
    );
    const [t1, t2] = await Promise.all([tokenOf('alice'), tokenOf('alice')]);
    expect((await guard.evaluate(at('/orders/1', t1))).reason).toBe('ok');
    const d = await guard.evaluate(at('/orders/1', t2));
    // Decided and reported as a refusal, let through (report-only), with no budget shown to the client.
    expect([d.effect, d.mode, d.reasons, d.headers['RateLimit-Limit']]).toEqual(['deny', 'report-only', ['rate.limited'], undefined]);
  });

  it("a trialled rule's subject limit lets the request through over HTTP", async () => {
    const a = await app(new MemoryStore(), {
      rules: [{ methods: ['GET'], path: '/orders/**', scopes: ['orders:read'], mode: 'report-only', rateLimit: { limit: 1, window: '1m', by: 'subject' } }],
    });
    const [t1, t2] = await Promise.all([tokenOf('alice'), tokenOf('alice')]);
    expect([(await get(a, '/orders/1', t1)).status, (await get(a, '/orders/1', t2)).status, (await get(a, '/orders/1', t1)).status]).toEqual([200, 200, 200]);
  });

  it('counts a token without a subject by its own id', async () => {
    const guard = createGuard(await basePolicy({ trackUsage: false, rules: RULES, rateLimit: { limit: 1, window: '1m', by: 'subject' } }));
    const [t1, t2] = await Promise.all([tokenOf(null), tokenOf(null)]);
    expect((await guard.evaluate(at('/orders/1', t1))).reason).toBe('ok');
    expect((await guard.evaluate(at('/orders/1', t1))).reason).toBe('rate.limited');
    expect((await guard.evaluate(at('/orders/1', t2))).reason).toBe('ok');
  });

  it("never shares a counter between a subject and a token whose id spells the subject's counter owner", async () => {
    const store = new MemoryStore();
    const bySubject = createGuard(await basePolicy({ store, trackUsage: false, rules: RULES, rateLimit: { limit: 1, window: '1m', by: 'subject' } }));
    const byToken = createGuard(await basePolicy({ store, trackUsage: false, rules: RULES, rateLimit: { limit: 1, window: '1m' } }));
    expect((await bySubject.evaluate(at('/orders/1', await tokenOf('alice')))).reason).toBe('ok');
    const lookalike = await signToken({ jti: 'sub:alice', scope: 'orders:read' }, { sub: 'mallory' });
    expect((await byToken.evaluate(at('/orders/1', lookalike))).reason).toBe('ok');
  });

  it("refuses an unknown by in a policy's, a rule's or a key's rateLimit", async () => {
    const policy = await basePolicy({ rateLimit: { limit: 1, window: '1m', by: 'ip' } as never });
    expect(() => createGuard(policy)).toThrow(PolicyError);
    expect(() => issueApiKey({ prefix: 'tg_', subject: 's', scopes: [], expiresIn: '1d', rateLimit: { limit: 1, window: '1m', by: 'user' } as never })).toThrow();
  });
});

const RUN = randomPrefix('rate-subject');
let client: Redis | undefined;

describe.skipIf(!redisUp)("rateLimit by: 'subject' on RedisStore across two guards", () => {
  afterAll(async () => {
    if (client) {
      await deletePrefix(client, RUN);
      client.disconnect();
    }
  });

  it("two instances sharing one Redis count a subject's tokens together", async () => {
    client = redisClient();
    const other = redisClient();
    try {
      const policy = { trackUsage: false, rules: RULES, rateLimit: { limit: 3, window: '1m', by: 'subject' } } satisfies Partial<TokenGuardPolicy>;
      const one = await app(new RedisStore({ client, prefix: RUN }), policy);
      const two = await app(new RedisStore({ client: other, prefix: RUN }), policy);
      const [t1, t2] = await Promise.all([tokenOf('alice'), tokenOf('alice')]);
      const statuses: number[] = [];
      for (const [a, t] of [
        [one, t1],
        [two, t2],
        [one, t2],
        [two, t1],
      ] as const)
        statuses.push((await get(a, '/orders/1', t)).status);
      expect(statuses).toEqual([200, 200, 200, 429]);
      // One counter for the subject, under its own owner and a name no token counter has.
      expect(await keysWithPrefix(client, RUN)).toEqual([`${RUN}{t:sub%3aalice}:rl:s%3apolicy`]);
    } finally {
      other.disconnect();
    }
  });
});
