// An Invalid Date as the time (a request's `now` of `new Date(NaN)`, or a `clock` option returning one) made the
// guard's time NaN, and every expiry comparison with NaN is false: only MemoryStore's argument check (a 503) stood
// between an expired token and an allow, so behind a store that takes NaN the expired token passed. The guard itself
// now answers such a request 503 `store.unavailable` (detail: invalid time) before any check compares times.
import { describe, expect, it } from 'vitest';
import express from 'express';
import request from 'supertest';
import { tokenGuard } from '../../src/adapters/express.js';
import { createGuard, MemoryStore, StoreArgumentError, UsageError, type DecisionEvent, type GuardRequest, type TokenGuardPolicy } from '../../src/index.js';
import { wrapStore } from '../helpers/stores.js';
import { basePolicy, NOW, NOW_S, signToken, storeApiKey } from '../helpers/tokens.js';

/** A store that takes NaN where a time belongs: it answers "nothing recorded" where MemoryStore refuses the argument. */
function lenientStore(): MemoryStore {
  const lenient = (err: unknown) => {
    if (err instanceof StoreArgumentError) return undefined;
    throw err;
  };
  return wrapStore(new MemoryStore(), (_method, call) => {
    try {
      const r = call();
      return r instanceof Promise ? r.catch(lenient) : r;
    } catch (err) {
      return lenient(err);
    }
  });
}

const INVALID = new Date(Number.NaN);
const expiredJwt = () => signToken({ scope: 'orders:read' }, { iat: NOW_S - 7200, exp: NOW_S - 3600 });
const get = (token: string, now?: Date): GuardRequest => ({
  method: 'GET',
  path: '/orders/1',
  headers: { authorization: `Bearer ${token}` },
  remoteAddress: '203.0.113.9',
  ...(now && { now }),
});

async function guardWith(overrides: Partial<TokenGuardPolicy> = {}) {
  const store = lenientStore();
  const { key } = await storeApiKey(store, { expiresIn: '1h', now: new Date(NOW.getTime() - 7_200_000) });
  const events: DecisionEvent[] = [];
  const guard = createGuard(await basePolicy({ store, onDecision: (e) => void events.push(e), ...overrides }));
  return { guard, expiredKey: key, events };
}

describe('an Invalid Date as the time', () => {
  it('the lenient store lets nothing through by itself: at a valid time both expired tokens are refused', async () => {
    const { guard, expiredKey } = await guardWith();
    expect((await guard.evaluate(get(await expiredJwt(), NOW))).reason).toBe('token.expired');
    expect((await guard.evaluate(get(expiredKey, NOW))).reason).toBe('token.expired');
  });

  it("refuses an expired JWT and an expired API key with 503 when the request's now is an Invalid Date", async () => {
    const { guard, expiredKey } = await guardWith();
    for (const token of [await expiredJwt(), expiredKey]) {
      expect(await guard.evaluate(get(token, INVALID))).toMatchObject({
        effect: 'deny',
        status: 503,
        reason: 'store.unavailable',
        reasons: ['store.unavailable'],
        detail: "invalid time: the request's now is an Invalid Date",
      });
    }
  });

  it('refuses when the clock option returns an Invalid Date, or something that is not a Date at all', async () => {
    for (const clock of [() => INVALID, () => NOW.getTime() as unknown as Date, () => undefined as unknown as Date]) {
      const { guard, expiredKey } = await guardWith({ clock });
      for (const token of [await expiredJwt(), expiredKey]) {
        expect(await guard.evaluate(get(token))).toMatchObject({ status: 503, reason: 'store.unavailable', detail: "invalid time: the policy's clock returned no valid Date" });
      }
    }
  });

  it('refuses a valid token too: no decision is made on a time that is not one', async () => {
    const { guard } = await guardWith({ clock: () => INVALID });
    expect(await guard.evaluate(get(await signToken({ scope: 'orders:read' })))).toMatchObject({ status: 503, reason: 'store.unavailable' });
  });

  it('answers synchronously from decide, and audits the refusal at the wall-clock time with the error', async () => {
    const { guard, events } = await guardWith();
    const d = guard.decide(get(await expiredJwt(), INVALID));
    expect(d).not.toBeInstanceOf(Promise);
    expect(d).toMatchObject({ status: 503, reason: 'store.unavailable', rule: 'GET,HEAD /orders/**' });
    expect(events).toHaveLength(1);
    expect(Number.isFinite(events[0]?.time.getTime())).toBe(true);
    expect(events[0]).toMatchObject({ reason: 'store.unavailable', detail: expect.stringContaining('invalid time'), ip: '203.0.113.9', error: { name: 'UsageError' } });
  });

  it('explains the refusal as a failure step, with every check not reached', async () => {
    const { guard } = await guardWith();
    const x = await guard.explain(get(await expiredJwt(), INVALID));
    expect(x.decision).toMatchObject({ status: 503, reason: 'store.unavailable' });
    expect(x.steps).toContainEqual({
      phase: 'decide',
      step: 'failure',
      outcome: 'fail',
      reason: 'store.unavailable',
      detail: "invalid time: the request's now is an Invalid Date",
    });
    expect(x.steps.filter((s) => s.outcome === 'pass')).toEqual([]);
  });

  it('answers 503 over HTTP when the clock is broken', async () => {
    const app = express();
    app.use(tokenGuard(await basePolicy({ store: lenientStore(), clock: () => INVALID })));
    app.get('/*splat', (_req, res) => {
      res.json({ ok: true });
    });
    const res = await request(app)
      .get('/orders/1')
      .set('authorization', `Bearer ${await expiredJwt()}`);
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ reason: 'store.unavailable', status: 503 });
  });

  it('refuses to revoke at an Invalid Date with a UsageError, instead of handing the store NaN', async () => {
    const { guard } = await guardWith({ clock: () => INVALID });
    await expect(guard.revoke('tok-1', { expiresAt: NOW })).rejects.toBeInstanceOf(UsageError);
    await expect(guard.revokeSubject('alice')).rejects.toBeInstanceOf(UsageError);
    const ok = (await guardWith()).guard;
    await expect(ok.revoke('tok-1', { now: INVALID })).rejects.toBeInstanceOf(UsageError);
  });
});
