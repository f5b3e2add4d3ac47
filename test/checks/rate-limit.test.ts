// Rate limits, API key quotas and usage end to end through Express, on MemoryStore and on RedisStore: policy, rule and
// key limits (tightest answers, each its own counter), 429 with Retry-After, RateLimit-* headers, uses left, usage.
import express from 'express';
import request from 'supertest';
import { afterAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { issueApiKey, MemoryStore, type DecisionEvent, type IssueApiKeyOptions, type TokenGuardPolicy, type TokenStore } from '../../src/index.js';
import { tokenGuard } from '../../src/adapters/express.js';
import { RedisStore } from '../../src/stores/redis.js';
import { basePolicy, NOW, signToken } from '../helpers/tokens.js';
import { deletePrefix, randomPrefix, redisClient, redisUp } from '../helpers/redis.js';

const RUN = randomPrefix('rate');
let client: Redis | undefined;
let n = 0;

const STORES: [string, () => TokenStore, boolean][] = [
  ['MemoryStore', () => new MemoryStore(), true],
  ['RedisStore', () => new RedisStore({ client: (client ??= redisClient()), prefix: `${RUN}${n++}:` }), redisUp],
];

afterAll(async () => {
  if (client) {
    await deletePrefix(client, RUN);
    client.disconnect();
  }
});

const RULES: TokenGuardPolicy['rules'] = [
  { path: '/health', public: true },
  { methods: ['GET'], path: '/orders/**', scopes: ['orders:read'], rateLimit: { limit: 2, window: '1m' } },
  { methods: ['GET'], path: '/reports/**', scopes: ['reports:read'] },
];

for (const [name, makeStore, available] of STORES) {
  describe.skipIf(!available)(`rate limits and quotas through Express on ${name}`, () => {
    let store: TokenStore;
    let events: DecisionEvent[];
    let now: number;
    let seq = 0;

    async function app(overrides: Partial<TokenGuardPolicy> = {}): Promise<express.Express> {
      store = makeStore();
      events = [];
      now = NOW.getTime();
      const a = express();
      a.use(tokenGuard(await basePolicy({ store, clock: () => new Date(now), onDecision: (e) => void events.push(e), rules: RULES, ...overrides })));
      a.get('/health', (_req, res) => void res.json({ ok: true }));
      a.get(['/orders/:id', '/reports/:id'], (_req, res) => void res.json({ ok: true }));
      return a;
    }
    const jwt = () => signToken({ jti: `rate-${seq++}`, scope: 'orders:read reports:read' });
    async function apiKey(options: Partial<IssueApiKeyOptions> = {}) {
      const issued = issueApiKey({ prefix: 'tg_', subject: 'svc', scopes: ['orders:read', 'reports:read'], expiresIn: '30d', now: new Date(NOW.getTime() - 1000), ...options });
      await store.putApiKey(issued.record);
      return issued;
    }
    const get = (a: express.Express, path: string, token: string) => request(a).get(path).set('Authorization', `Bearer ${token}`);
    const limitHeaders = (res: request.Response) => [res.headers['ratelimit-limit'], res.headers['ratelimit-remaining'], res.headers['ratelimit-reset']];

    afterAll(async () => {
      await store?.close?.();
    });

    it('the policy limit allows a burst of N with RateLimit-* counting down, then 429 rate.limited with Retry-After', async () => {
      const a = await app({ rateLimit: { limit: 3, window: '1m' }, rules: [{ methods: ['GET'], path: '/reports/**', scopes: ['reports:read'] }] });
      const token = await jwt();
      const seen: unknown[] = [];
      for (let i = 0; i < 3; i++) {
        const res = await get(a, '/reports/1', token);
        expect(res.status).toBe(200);
        seen.push(limitHeaders(res));
      }
      // GCRA: 3 per minute is one every 20 s; the counter is full again 20 s after each use.
      expect(seen).toEqual([
        ['3', '2', '20'],
        ['3', '1', '40'],
        ['3', '0', '60'],
      ]);
      const refused = await get(a, '/reports/1', token);
      expect(refused.status).toBe(429);
      expect(refused.body).toMatchObject({ status: 429, reason: 'rate.limited' });
      expect(refused.headers['retry-after']).toBe('20');
      expect(limitHeaders(refused)).toEqual(['3', '0', '60']);
      expect(events.at(-1)).toMatchObject({ reason: 'rate.limited', status: 429 });
    });

    it('a refused token is let through again once Retry-After has passed, and only then', async () => {
      const a = await app({ rateLimit: { limit: 3, window: '1m' } });
      const token = await jwt();
      for (let i = 0; i < 3; i++) await get(a, '/reports/1', token);
      const refused = await get(a, '/reports/1', token);
      const wait = Number(refused.headers['retry-after']) * 1000;
      now += wait - 1000;
      expect((await get(a, '/reports/1', token)).status).toBe(429);
      now += 1000;
      expect((await get(a, '/reports/1', token)).status).toBe(200);
    });

    it('a rule limit tighter than the policy’s answers first, and each counts on its own counter', async () => {
      const a = await app({ rateLimit: { limit: 10, window: '1m' } });
      const token = await jwt();
      expect(limitHeaders(await get(a, '/orders/1', token))).toEqual(['2', '1', '30']);
      expect((await get(a, '/orders/1', token)).status).toBe(200);
      const refused = await get(a, '/orders/1', token);
      expect(refused.status).toBe(429);
      expect(refused.headers['ratelimit-limit']).toBe('2');
      // The other rule has no limit of its own: only the policy counter answers, charged twice so far (not by the 429).
      const other = await get(a, '/reports/1', token);
      expect(other.status).toBe(200);
      expect(limitHeaders(other).slice(0, 2)).toEqual(['10', '7']);
    });

    it('an API key’s own limit answers when it is the tightest', async () => {
      const a = await app({ rateLimit: { limit: 10, window: '1m' } });
      const { key } = await apiKey({ rateLimit: { limit: 1, window: '1m' } });
      const first = await get(a, '/reports/1', key);
      expect(first.status).toBe(200);
      expect(limitHeaders(first)).toEqual(['1', '0', '60']);
      const second = await get(a, '/reports/1', key);
      expect(second.status).toBe(429);
      expect(second.headers['retry-after']).toBe('60');
    });

    it('each token has its own counters', async () => {
      const a = await app({ rateLimit: { limit: 1, window: '1m' } });
      const first = await jwt();
      const second = await jwt();
      expect((await get(a, '/reports/1', first)).status).toBe(200);
      expect((await get(a, '/reports/1', first)).status).toBe(429);
      expect((await get(a, '/reports/1', second)).status).toBe(200);
    });

    it('RateLimit-* are on every guarded response and on none from a public rule', async () => {
      const a = await app({ rateLimit: { limit: 5, window: '1m' } });
      const token = await jwt();
      for (const path of ['/orders/1', '/reports/1']) expect((await get(a, path, token)).headers['ratelimit-limit']).toBeDefined();
      const pub = await request(a).get('/health');
      expect(pub.status).toBe(200);
      expect(pub.headers['ratelimit-limit']).toBeUndefined();
    });

    it('RateLimit-Policy and RateLimit (IETF draft) name every counter: policy, rule and key, with remaining and reset', async () => {
      const a = await app({ rateLimit: { limit: 10, window: '1m' } });
      const { key } = await apiKey({ rateLimit: { limit: 3, window: '1h' } });
      const first = await get(a, '/orders/1', key);
      expect(first.status).toBe(200);
      const policy = String(first.headers['ratelimit-policy']);
      // One item per counter, in the order consumed: the policy's, the rule's (named by a hash), the key's.
      expect(policy).toMatch(/^"policy";q=10;w=60, "rule:[^"]+";q=2;w=60, "key";q=3;w=3600$/);
      const rule = /"(rule:[^"]+)"/.exec(policy)?.[1] as string;
      expect(first.headers['ratelimit']).toBe(`"policy";r=9;t=6, "${rule}";r=1;t=30, "key";r=2;t=1200`);
      // The legacy fields still answer for the counter with the least room.
      expect(limitHeaders(first)).toEqual(['2', '1', '30']);
      await get(a, '/orders/1', key);
      const refused = await get(a, '/orders/1', key);
      expect(refused.status).toBe(429);
      // Refused: nothing was charged, so every counter is as it stood after the second request; the rule's is at 0.
      expect(refused.headers['ratelimit']).toBe(`"policy";r=8;t=12, "${rule}";r=0;t=60, "key";r=1;t=2400`);
      expect(refused.headers['ratelimit-policy']).toBe(policy);
      expect(refused.headers['retry-after']).toBe('30');
      expect(limitHeaders(refused)).toEqual(['2', '0', '60']);
    });

    it('a refusal never reads as another counter’s: with one unit left on the policy counter, the rule’s is the one at 0', async () => {
      const a = await app({ rateLimit: { limit: 3, window: '1m' } });
      const token = await jwt();
      // The rule's 2/min is spent after two requests, when the policy's 3/min has one left.
      for (let i = 0; i < 2; i++) expect((await get(a, '/orders/1', token)).status).toBe(200);
      const refused = await get(a, '/orders/1', token);
      expect(refused.status).toBe(429);
      expect(refused.headers['ratelimit']).toMatch(/^"policy";r=1;t=40, "rule:[^"]+";r=0;t=60$/);
      expect(refused.headers['ratelimit-policy']).toMatch(/^"policy";q=3;w=60, "rule:[^"]+";q=2;w=60$/);
      // The legacy fields name the counter that refused (the rule's 2), not the tied-looking policy counter.
      expect(limitHeaders(refused)).toEqual(['2', '0', '60']);
      // The policy counter was not charged by the refusal: its last unit is still there on another route.
      expect(limitHeaders(await get(a, '/reports/1', token)).slice(0, 2)).toEqual(['3', '0']);
    });

    it('a limit too large for a structured-field integer (15 digits) is written as the largest one', async () => {
      const a = await app({ rateLimit: { limit: Number.MAX_SAFE_INTEGER, window: '1h' } });
      const res = await get(a, '/reports/1', await jwt());
      expect(res.status).toBe(200);
      expect(res.headers['ratelimit-policy']).toBe('"policy";q=999999999999999;w=3600');
      expect(res.headers['ratelimit']).toMatch(/^"policy";r=999999999999999;t=\d+$/);
    });

    it('a pre-auth quota and the rate limits are both named in RateLimit-Policy and RateLimit', async () => {
      const a = await app({ rateLimit: { limit: 5, window: '1m' }, preAuthLimit: { limit: 100, window: '1m' } });
      const res = await get(a, '/reports/1', await jwt());
      expect(res.status).toBe(200);
      expect(res.headers['ratelimit-policy']).toBe('"preauth";q=100;w=60, "policy";q=5;w=60');
      expect(res.headers['ratelimit']).toMatch(/^"preauth";r=99;t=\d+, "policy";r=4;t=12$/);
    });

    it('a trialled rule limit shows no RateLimit field of its own', async () => {
      const a = await app({
        rateLimit: { limit: 5, window: '1m' },
        rules: [{ methods: ['GET'], path: '/reports/**', scopes: ['reports:read'], mode: 'report-only', rateLimit: { limit: 1, window: '1m' } }],
      });
      const res = await get(a, '/reports/1', await jwt());
      expect(res.status).toBe(200);
      expect(res.headers['ratelimit-policy']).toBe('"policy";q=5;w=60');
    });

    it('an API key with uses left is decremented per request and refused at 0 with token.expired, "no uses left"', async () => {
      const a = await app();
      const { key, record } = await apiKey({ uses: 2 });
      expect((await get(a, '/reports/1', key)).status).toBe(200);
      expect((await store.getApiKey(record.hash))?.remaining).toBe(1);
      expect((await get(a, '/reports/1', key)).status).toBe(200);
      for (let i = 0; i < 2; i++) {
        const res = await get(a, '/reports/1', key);
        expect(res.status).toBe(401);
        expect(res.body.reason).toBe('token.expired');
        expect(events.at(-1)).toMatchObject({ reason: 'token.expired', detail: 'no uses left' });
      }
      expect((await store.getApiKey(record.hash))?.remaining).toBe(0);
    });

    it('uses are taken atomically: 20 concurrent requests on 5 uses left let exactly 5 through', async () => {
      const a = await app();
      const { key, record } = await apiKey({ uses: 5 });
      const statuses = await Promise.all(Array.from({ length: 20 }, () => get(a, '/reports/1', key).then((r) => r.status)));
      expect(statuses.filter((s) => s === 200).length).toBe(5);
      expect(statuses.filter((s) => s === 401).length).toBe(15);
      expect((await store.getApiKey(record.hash))?.remaining).toBe(0);
    });

    it('a request refused by a rate limit spends no use', async () => {
      const a = await app();
      const { key, record } = await apiKey({ uses: 5, rateLimit: { limit: 1, window: '1m' } });
      expect((await get(a, '/reports/1', key)).status).toBe(200);
      expect((await get(a, '/reports/1', key)).status).toBe(429);
      expect((await store.getApiKey(record.hash))?.remaining).toBe(4);
    });

    it('usage counts the requests let through, with the last time and client IP', async () => {
      const a = await app();
      const token = await jwt();
      const { key, record } = await apiKey();
      for (let i = 0; i < 3; i++) {
        now += 1000;
        await get(a, '/reports/1', token);
      }
      await get(a, '/reports/1', key);
      // Refused (scope): not a use.
      await request(a).get('/admin/x').set('Authorization', `Bearer ${token}`);
      await store.flush?.();
      const id = events.find((e) => e.kind === 'jwt')?.tokenId as string;
      expect(await store.getUsage(id)).toMatchObject({
        count: 3,
        firstUsedAt: NOW.getTime() + 1000,
        lastUsedAt: NOW.getTime() + 3000,
        lastIp: '127.0.0.1',
        recentIps: ['127.0.0.1'],
      });
      expect((await store.getUsage(record.id))?.count).toBe(1);
    });
  });
}
