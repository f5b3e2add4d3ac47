// The key lifecycle end to end on Redis: two app instances (real RedisStores, real Express apps through supertest)
// share one Redis; keys are issued, used, listed, rotated with a grace period (both keys work, the old one warned by
// Deprecation and Sunset), the old one refused after it on the other instance, an idle key retired, a subject
// revoked, and the lifecycle events come back in order. Time is a fake clock.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import express from 'express';
import request from 'supertest';
import type { Redis } from 'ioredis';
import { tokenGuard } from '../../src/adapters/express.js';
import { RedisStore } from '../../src/stores/redis.js';
import { createApiKey, createGuard, listApiKeys, listLifecycleEvents, rotateApiKey, type DecisionEvent, type LifecycleEvent, type TokenGuardPolicy } from '../../src/index.js';
import { deletePrefix, randomPrefix, redisClient, redisUp } from '../helpers/redis.js';

const T0 = Date.UTC(2026, 10, 25, 10, 0, 0);
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/**
 * Bounds far above what any call takes, for Redis calls (commandTimeout), revocation confirmations (confirmTimeout) and
 * the guard's store calls (storeTimeout): this test is about the key lifecycle, not timeouts, and runs beside the whole
 * suite on two cores. With the defaults (250 ms; 1 s) a call made while the connection was still being set up, or a
 * slow confirmation, failed it with a StoreError, or with a refusal whose bookkeeping (the retirement) was dropped.
 */
const GENEROUS_MS = 10_000;

describe.skipIf(!redisUp)('key lifecycle on Redis, two instances', () => {
  const prefix = randomPrefix('lifecycle');
  const clients: Redis[] = [];
  let clock = new Date(T0);
  const decisions: DecisionEvent[] = [];
  const guardEvents: LifecycleEvent[] = [];

  function instance() {
    const client = redisClient();
    const subscriber = redisClient();
    clients.push(client, subscriber);
    // Usage is written by the test's flush(), never by the interval timer: a batch the timer had sent would not be
    // waited for by flush(), and a listing could be read before it.
    const store = new RedisStore({ client, subscriber, prefix, commandTimeout: GENEROUS_MS, confirmTimeout: GENEROUS_MS, usageFlushInterval: 10 * 60_000 });
    const policy: TokenGuardPolicy = {
      apiKeys: { prefix: 'tg_', idleTimeout: '7d' },
      store,
      storeTimeout: 3 * GENEROUS_MS,
      clock: () => clock,
      rules: [{ path: '/orders/**', scopes: ['orders:read'] }],
      onDecision: (e) => void decisions.push(e),
      onLifecycle: (e) => void guardEvents.push(e),
    };
    const app = express();
    app.use(tokenGuard(policy));
    app.get('/orders/:id', (req, res) => {
      res.json({ id: req.params.id, subject: req.auth?.token?.subject });
    });
    return { store, app, guard: createGuard(policy) };
  }

  let a: ReturnType<typeof instance>;
  let b: ReturnType<typeof instance>;

  beforeAll(() => {
    a = instance();
    b = instance();
  });

  afterAll(async () => {
    await Promise.all([a?.store.close(), b?.store.close()]);
    if (clients[0]) await deletePrefix(clients[0], prefix);
    for (const c of clients) c.disconnect();
  });

  const get = (app: express.Express, key: string) => request(app).get('/orders/1').set('Authorization', `Bearer ${key}`);
  const lastDetail = () => decisions.at(-1)?.detail;

  it('issue, use, list, rotate with grace, refuse after it, retire an idle key, revoke a subject; events in order', async () => {
    // Issue: two keys of svc-billing's, one of svc-idle's that nobody will use.
    const first = await createApiKey(a.store, {
      prefix: 'tg_',
      subject: 'svc-billing',
      scopes: ['orders:read'],
      expiresIn: '90d',
      name: 'billing',
      actor: 'alice',
      now: clock,
    });
    const idle = await createApiKey(a.store, { prefix: 'tg_', subject: 'svc-idle', scopes: ['orders:read'], expiresIn: '90d', actor: 'alice', now: clock });

    // Use on either instance.
    const used = await get(a.app, first.key);
    expect(used.status).toBe(200);
    expect(used.headers['deprecation']).toBeUndefined();
    expect(used.headers['sunset']).toBeUndefined();
    expect((await get(b.app, first.key)).status).toBe(200);
    await a.store.flush();
    await b.store.flush();

    // List on the other instance: metadata only, last use known, nothing that could be replayed as a lookup.
    const listed = await listApiKeys(b.store, 'svc-billing', { now: clock });
    expect(listed).toMatchObject([
      { id: first.record.id, name: 'billing', prefix: 'tg_', lastFour: first.key.slice(-4), scopes: ['orders:read'], state: 'active', lastUsedAt: clock },
    ]);
    expect(JSON.stringify(listed)).not.toContain(first.record.hash);
    expect(JSON.stringify(listed)).not.toContain(first.key);

    // Rotate with a day's grace: both keys work, the old one answers with Deprecation and Sunset.
    clock = new Date(T0 + HOUR);
    const rotated = await rotateApiKey(a.store, first.record.id, { grace: '24h', actor: 'alice', now: clock });
    expect(rotated.sunsetAt).toEqual(new Date(T0 + 25 * HOUR));
    expect(rotated.record.rotatedFrom).toBe(first.record.id);
    const old = await get(b.app, first.key);
    expect(old.status).toBe(200);
    expect(old.headers['deprecation']).toBe(`@${(T0 + HOUR) / 1000}`);
    expect(old.headers['sunset']).toBe(new Date(T0 + 25 * HOUR).toUTCString());
    const fresh = await get(b.app, rotated.key);
    expect(fresh.status).toBe(200);
    expect(fresh.headers['deprecation']).toBeUndefined();
    expect((await listApiKeys(a.store, 'svc-billing', { now: clock })).map((k) => [k.id, k.state])).toEqual(
      expect.arrayContaining([
        [first.record.id, 'grace'],
        [rotated.record.id, 'active'],
      ]),
    );

    // After the grace the old key is refused on the other instance, with a detail saying it was rotated.
    clock = new Date(T0 + 25 * HOUR);
    const after = await get(b.app, first.key);
    expect([after.status, after.body.reason]).toEqual([401, 'token.revoked']);
    expect(lastDetail()).toContain(`rotated to ${rotated.record.id}`);
    expect((await get(a.app, rotated.key)).status).toBe(200);

    // Subject revocation with a reason: every key of svc-billing is refused on both instances.
    await a.guard.revokeSubject('svc-billing', { reason: 'offboarded', actor: 'alice', now: clock });
    clock = new Date(T0 + 25 * HOUR + 1000);
    const revoked = await get(b.app, rotated.key);
    expect([revoked.status, revoked.body.reason]).toEqual([401, 'token.revoked']);
    expect(lastDetail()).toBe('subject revoked in store (reason: offboarded)');

    // Idle retirement: svc-idle's key, never used in 8 days, is retired on its first use, and stays refused.
    clock = new Date(T0 + 8 * DAY);
    const retired = await get(a.app, idle.key);
    expect([retired.status, retired.body.reason]).toEqual([401, 'token.revoked']);
    expect(lastDetail()).toMatch(/^API key retired: unused since .*apiKeys\.idleTimeout \(7d\)/);
    const again = await get(b.app, idle.key);
    expect(again.status).toBe(401);
    expect(lastDetail()).toBe('API key revoked (reason: idle)');
    expect((await listApiKeys(b.store, 'svc-idle', { now: clock }))[0]).toMatchObject({ state: 'revoked', revocationReason: 'idle' });

    // One event stream across both instances, in order, never carrying a secret or a hash.
    const events = await listLifecycleEvents(b.store);
    expect(events.map((e) => [e.type, e.tokenId ?? e.subject, e.actor, e.reason])).toEqual([
      ['key.issued', first.record.id, 'alice', undefined],
      ['key.issued', idle.record.id, 'alice', undefined],
      ['key.issued', rotated.record.id, 'alice', undefined],
      ['key.rotated', first.record.id, 'alice', 'rotated'],
      ['subject.revoked', 'svc-billing', 'alice', 'offboarded'],
      ['key.retired', idle.record.id, 'guard', 'idle'],
    ]);
    expect(events.find((e) => e.type === 'key.rotated')).toMatchObject({ successorId: rotated.record.id, sunsetAt: T0 + 25 * HOUR, subject: 'svc-billing' });
    const text = JSON.stringify(events);
    for (const secret of [first.key, idle.key, rotated.key, first.record.hash, idle.record.hash, rotated.record.hash]) expect(text).not.toContain(secret);
    // The guard-made ones also reached onLifecycle.
    expect(guardEvents.map((e) => e.type)).toEqual(['subject.revoked', 'key.retired']);
  }, 60_000);
});
