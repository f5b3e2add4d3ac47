// Regression: a replayed DPoP proof was refused only at commit, after the quota phase had charged the token's rate
// limit. Anyone who saw one request of a DPoP client (a log line, a proxy) could replay its proof for the proof's
// lifetime and spend the client's quota: its next real request got 429. The proof's claim is now read beside the
// revocation lookup and a known replay is refused before anything is counted, on every instance sharing the store.
import express from 'express';
import request from 'supertest';
import { afterAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { composeStores, createGuard, MemoryStore, type TokenGuardPolicy, type TokenStore } from '../../src/index.js';
import { tokenGuard } from '../../src/adapters/express.js';
import { RedisStore } from '../../src/stores/redis.js';
import { basePolicy, NOW } from '../helpers/tokens.js';
import { DPOP_ORIGIN, dpopClient, withoutIsClaimed } from '../helpers/dpop.js';
import { deletePrefix, randomPrefix, redisClient, redisUp } from '../helpers/redis.js';

const ORIGIN = DPOP_ORIGIN;
const client = dpopClient;

/** `limit` requests an hour for each token (two by default), and a token-bound DPoP client. */
async function policyOn(store: TokenStore, origin = ORIGIN, limit = 2): Promise<TokenGuardPolicy> {
  return basePolicy({ store, trackUsage: false, rateLimit: { limit, window: '1h' }, dpop: { origins: [origin] } });
}

function suite(name: string, makeStore: () => TokenStore) {
  describe(name, () => {
    it("replaying a seen proof fifty times spends none of its token's quota: the holder's next real request passes", async () => {
      const guard = createGuard(await policyOn(makeStore()));
      const victim = await client();
      const seen = await victim.proof();
      expect((await guard.evaluate(victim.req(seen))).reason).toBe('ok');
      for (let i = 0; i < 50; i++) {
        const d = await guard.evaluate(victim.req(seen));
        expect([d.status, d.reason, d.detail]).toEqual([401, 'pop.invalid', 'DPoP proof replayed (its one use was already claimed)']);
      }
      const next = await guard.evaluate(victim.req(await victim.proof()));
      expect([next.status, next.reason]).toEqual([200, 'ok']);
      // The limit itself still holds: two an hour.
      expect((await guard.evaluate(victim.req(await victim.proof()))).reason).toBe('rate.limited');
    });

    it('the budget left after replays is what the holder alone spent', async () => {
      const guard = createGuard(await policyOn(makeStore(), ORIGIN, 10));
      const victim = await client();
      const seen = await victim.proof();
      expect((await guard.evaluate(victim.req(seen))).headers['RateLimit']).toMatch(/^"policy";r=9;/);
      for (let i = 0; i < 5; i++) expect((await guard.evaluate(victim.req(seen))).reason).toBe('pop.invalid');
      expect((await guard.evaluate(victim.req(await victim.proof()))).headers['RateLimit']).toMatch(/^"policy";r=8;/);
    });

    it('a proof claimed through one instance is refused by another before it counts', async () => {
      const store = makeStore();
      const a = createGuard(await policyOn(store));
      const b = createGuard(await policyOn(store));
      const victim = await client();
      const seen = await victim.proof();
      expect((await a.evaluate(victim.req(seen))).reason).toBe('ok');
      for (let i = 0; i < 5; i++) expect((await b.evaluate(victim.req(seen))).reason).toBe('pop.invalid');
      expect((await b.evaluate(victim.req(await victim.proof()))).reason).toBe('ok');
    });

    it('explain names the step that refused the replay, and that the quota was not reached', async () => {
      const guard = createGuard(await policyOn(makeStore()));
      const victim = await client();
      const seen = await victim.proof();
      await guard.evaluate(victim.req(seen));
      const { decision, steps } = await guard.explain(victim.req(seen));
      expect(decision.reason).toBe('pop.invalid');
      expect(steps.find((s) => s.step === 'dpop-replay')).toMatchObject({ phase: 'constraints', outcome: 'fail', reason: 'pop.invalid' });
      expect(steps.find((s) => s.step === 'rateLimit')?.outcome).toBe('skipped');
    });
  });
}

suite('MemoryStore', () => new MemoryStore());
suite('composeStores over MemoryStores', () => {
  const m = new MemoryStore();
  return composeStores({ keys: m, revocations: m, counters: m, claims: new MemoryStore(), usage: m });
});

describe('a store without isClaimed', () => {
  it('still refuses the replay, at the claim (after counting: the store cannot say sooner)', async () => {
    const inner = new MemoryStore();
    const guard = createGuard(await policyOn(withoutIsClaimed(inner)));
    const victim = await client();
    const seen = await victim.proof();
    expect((await guard.evaluate(victim.req(seen))).reason).toBe('ok');
    const d = await guard.evaluate(victim.req(seen));
    expect([d.status, d.reason]).toEqual([401, 'pop.invalid']);
    expect(d.detail).toMatch(/^DPoP proof replayed \(or its key holds/);
  });

  it('explain says the early read was skipped and why, where a store with isClaimed shows it passed', async () => {
    const victim = await client();
    const without = createGuard(await policyOn(withoutIsClaimed(new MemoryStore())));
    const skipped = (await without.explain(victim.req(await victim.proof()))).steps.find((s) => s.step === 'dpop-replay');
    expect(skipped).toMatchObject({ outcome: 'skipped', detail: 'the store cannot read claims (no isClaimed): a replay is refused when its proof is claimed' });
    const withIt = createGuard(await policyOn(new MemoryStore()));
    const read = (await withIt.explain(victim.req(await victim.proof()))).steps.find((s) => s.step === 'dpop-replay');
    expect(read).toEqual({ phase: 'constraints', step: 'dpop-replay', level: 'policy', outcome: 'pass' });
  });
});

describe('through Express', () => {
  it('a replayed proof gets 401 and leaves the quota to its holder', async () => {
    const app = express();
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      app.use(tokenGuard({ ...(await policyOn(new MemoryStore(), origin)), clock: () => NOW, unmatched: 'authenticate' }));
      app.get('/orders/:id', (_req, res) => {
        res.json({ ok: true });
      });
      const victim = await client(origin);
      const send = (p: string) => request(origin).get('/orders/1').set('Authorization', `DPoP ${victim.token}`).set('DPoP', p);
      const seen = await victim.proof();
      expect((await send(seen)).status).toBe(200);
      for (let i = 0; i < 10; i++) {
        const replay = await send(seen);
        expect([replay.status, replay.body.reason]).toEqual([401, 'pop.invalid']);
      }
      expect((await send(await victim.proof())).status).toBe(200);
      expect((await send(await victim.proof())).status).toBe(429);
    } finally {
      server.close();
    }
  });
});

let redis: Redis | undefined;
const RUN = randomPrefix('dpop-replay-quota');
let n = 0;
if (redisUp) {
  const r = redisClient();
  redis = r;
  suite('RedisStore', () => new RedisStore({ client: r, prefix: `${RUN}${n++}:` }));
}
afterAll(async () => {
  if (redis) {
    await deletePrefix(redis, RUN);
    redis.disconnect();
  }
});
