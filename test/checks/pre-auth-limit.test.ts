import { describe, expect, it } from 'vitest';
import express from 'express';
import request from 'supertest';
import { tokenGuard } from '../../src/adapters/express.js';
import { createGuard, MemoryStore, PolicyError, type TokenGuardPolicy } from '../../src/index.js';
import { guessedKey, preAuthGuard } from '../helpers/pre-auth.js';
import { countingStore } from '../helpers/stores.js';
import { basePolicy, signToken, NOW } from '../helpers/tokens.js';
import { bearer } from '../tokens/fixtures.js';

const req = (token: string, remoteAddress: string, at = NOW) => bearer(token, { remoteAddress, now: at });

async function guardWith(overrides: Partial<TokenGuardPolicy>) {
  const { store, calls } = countingStore();
  return { guard: await preAuthGuard(store, { limit: 3, window: '1m' }, overrides), calls };
}

describe('limits before authentication', () => {
  it('with maxClients, forgets the least recently seen client first: a client seen again keeps its count', async () => {
    const { guard } = await guardWith({ preAuthLimit: { limit: 1, window: '1h', maxClients: 3 } });
    const at = (ip: string) => guard.evaluate(req(guessedKey(), ip)).then((d) => d.reason);
    expect(await at('198.51.100.1')).toBe('token.invalid');
    expect(await at('198.51.100.1')).toBe('rate.limited');
    expect(await at('198.51.100.2')).toBe('token.invalid');
    expect(await at('198.51.100.3')).toBe('token.invalid');
    // .1 seen again (refused): now .2 is the least recently seen, and a fourth client pushes it out, not .1.
    expect(await at('198.51.100.1')).toBe('rate.limited');
    expect(await at('198.51.100.4')).toBe('token.invalid');
    expect(await at('198.51.100.1')).toBe('rate.limited');
    expect(await at('198.51.100.2')).toBe('token.invalid');
    // .2 coming back pushed out .3 (least recently seen), then many new clients push out everyone before them.
    expect(await at('198.51.100.3')).toBe('token.invalid');
    for (let i = 10; i < 200; i++) expect(await at(`198.51.100.${i}`)).toBe('token.invalid');
    expect(await at('198.51.100.1')).toBe('token.invalid');
  });

  it('throttles a flood of bad keys from one IP with 429 rate.limited and no store call after the limit', async () => {
    const { guard, calls } = await guardWith({});
    for (let i = 0; i < 3; i++) expect((await guard.evaluate(req(guessedKey(), '198.51.100.7'))).reason).toBe('token.invalid');
    const before = calls();
    expect(before).toBe(3);
    for (let i = 0; i < 50; i++) {
      const d = await guard.evaluate(req(guessedKey(), '198.51.100.7'));
      expect([d.status, d.reason, d.token]).toEqual([429, 'rate.limited', undefined]);
    }
    expect(calls()).toBe(before);
  });

  it('answers with RateLimit-Policy, RateLimit, RateLimit-* and Retry-After', async () => {
    const { guard } = await guardWith({});
    const first = await guard.evaluate(req(guessedKey(), '198.51.100.7'));
    expect(first.headers).toMatchObject({ 'RateLimit-Policy': '"preauth";q=3;w=60', RateLimit: '"preauth";r=2;t=20' });
    await guard.evaluate(req(guessedKey(), '198.51.100.7'));
    await guard.evaluate(req(guessedKey(), '198.51.100.7'));
    const d = await guard.evaluate(req(guessedKey(), '198.51.100.7'));
    expect(d.headers).toMatchObject({
      'RateLimit-Policy': '"preauth";q=3;w=60',
      RateLimit: '"preauth";r=0;t=60',
      'RateLimit-Limit': '3',
      'RateLimit-Remaining': '0',
      'RateLimit-Reset': '60',
      'Retry-After': '20',
    });
  });

  it('leaves another IP unaffected, and lets the flooding IP in again once its window has passed', async () => {
    const { guard } = await guardWith({});
    const token = await signToken({ scope: 'orders:read' });
    for (let i = 0; i < 10; i++) await guard.evaluate(req(guessedKey(), '198.51.100.7'));
    expect((await guard.evaluate(req(token, '198.51.100.7'))).reason).toBe('rate.limited');
    expect((await guard.evaluate(req(token, '203.0.113.9'))).reason).toBe('ok');
    expect((await guard.evaluate(req(token, '198.51.100.7', new Date(NOW.getTime() + 20_000)))).reason).toBe('ok');
  });

  it('reports instead of refusing under a report-only policy', async () => {
    const { guard } = await guardWith({ mode: 'report-only' });
    const token = await signToken({ scope: 'orders:read' });
    for (let i = 0; i < 3; i++) await guard.evaluate(req(token, '198.51.100.7'));
    const d = await guard.evaluate(req(token, '198.51.100.7'));
    expect([d.mode, d.reason, d.token?.subject]).toEqual(['report-only', 'rate.limited', 'alice']);
  });

  it('with failedAuth counts only failed authentications: a client that authenticates is never slowed, one that keeps guessing is refused before the store', async () => {
    const { guard, calls } = await guardWith({ preAuthLimit: { limit: 3, window: '1m', failedAuth: true } });
    const token = await signToken({ scope: 'orders:read' });
    for (let i = 0; i < 20; i++) expect((await guard.evaluate(req(token, '203.0.113.9'))).reason).toBe('ok');
    for (let i = 0; i < 3; i++) expect((await guard.evaluate(req(guessedKey(), '198.51.100.7'))).reason).toBe('token.invalid');
    const before = calls();
    const d = await guard.evaluate(req(guessedKey(), '198.51.100.7'));
    expect([d.status, d.reason]).toEqual([429, 'rate.limited']);
    expect(calls()).toBe(before);
  });

  it('refuses an invalid preAuthLimit at start-up', async () => {
    for (const preAuthLimit of [{ limit: 0, window: '1m' }, { limit: 3 }, { limit: 3, window: '1m', by: 'subject' }, { limit: 3, window: '2d' }]) {
      await expect(async () => createGuard(await basePolicy({ preAuthLimit: preAuthLimit as never }))).rejects.toThrow(PolicyError);
    }
  });

  it('answers 429 with the RateLimit headers over Express', async () => {
    const app = express();
    app.use(tokenGuard(await basePolicy({ store: new MemoryStore(), preAuthLimit: { limit: 1, window: '1m' } })));
    app.get('/orders/:id', (_req, res) => res.json({ ok: true }));
    const key = guessedKey();
    expect((await request(app).get('/orders/1').set('authorization', `Bearer ${key}`)).status).toBe(401);
    const refused = await request(app).get('/orders/1').set('authorization', `Bearer ${key}`);
    expect([refused.status, refused.body.reason, refused.headers['ratelimit-policy'], refused.headers['retry-after']]).toEqual([
      429,
      'rate.limited',
      '"preauth";q=1;w=60',
      '60',
    ]);
  });
});
