// Regression (security review F1c, F1d): a lone UTF-16 surrogate reaches PostgreSQL and Redis as U+FFFD. Through a
// guard, `revokeSubject('bob\uDFFF')` refused the JWT of another user, `bob\uFFFD`; on PostgreSQL it also wrote the
// revocation and then threw LifecycleEventError (jsonb refused the event), so the revocation missed the audit trail.
// And a JWT or introspected token whose `sub` or `jti` held one was let through to the stores. Now guard.revoke and
// guard.revokeSubject refuse such an id, subject or actor with a UsageError before writing anything, and the verifiers
// refuse such a token: 401 token.invalid saying which claim. Emoji (surrogate pairs) work as before.
// Real parts: an Express app over HTTP (supertest), the authorization server's introspection endpoint on 127.0.0.1,
// and Redis and PostgreSQL where they are up.
import express from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { tokenGuard } from '../../src/adapters/express.js';
import { composeStores, MemoryStore, type DecisionEvent, type LifecycleEvent, type TokenInfo, type TokenStore } from '../../src/index.js';
import { RedisStore } from '../../src/stores/redis.js';
import { pgUp, useTestDatabase } from '../helpers/postgres.js';
import { redisUp, useSharedRedis } from '../helpers/redis.js';
import { thrown } from '../helpers/stores.js';
import { basePolicy, NOW, signToken } from '../helpers/tokens.js';
import { useIntrospectionServer } from '../helpers/introspection-server.js';

const T = NOW.getTime();
const ROCKET = '\uD83D\uDE80';

/** The introspection answer of each opaque token: its subject and jti. */
const answers: Record<string, { sub: string; jti: string }> = {
  'opaque-cut-sub-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA': { sub: 'bob\uDFFF', jti: 'op-1' },
  'opaque-cut-jti-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA': { sub: 'bob', jti: 'op-\uD800' },
  'opaque-rocket-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA': { sub: `bob ${ROCKET}`, jti: `op-${ROCKET}` },
  'opaque-fffd-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA': { sub: 'bob \uFFFD', jti: 'op-\uFFFD' },
};
const [CUT_SUB, CUT_JTI, ROCKET_OPAQUE, FFFD_OPAQUE] = Object.keys(answers) as [string, string, string, string];

const as = useIntrospectionServer(answers);

/** What a store keeps that these cases look at. */
type Kept = Pick<TokenStore, 'getRevocation'> & Required<Pick<TokenStore, 'listLifecycleEvents'>>;

async function app(store: TokenStore) {
  const decisions: DecisionEvent[] = [];
  const lifecycle: LifecycleEvent[] = [];
  const guarded = tokenGuard(
    await basePolicy({
      store,
      introspection: { endpoint: as.endpoint, clientId: 'rs-orders', clientSecret: 'secret' },
      onDecision: (e) => void decisions.push(e),
      onLifecycle: (e) => void lifecycle.push(e),
    }),
  );
  const server = express();
  server.use(guarded);
  server.get('/orders/:id', (_req, res) => res.json({ ok: true }));
  /** `<status> <reason>`, and the detail the guard logged for it. */
  const ask = async (token: string) => {
    const r = await request(server).get('/orders/1').set('authorization', `Bearer ${token}`);
    return { answer: `${r.status} ${(r.body as { reason?: string }).reason ?? 'ok'}`, detail: decisions.at(-1)?.detail };
  };
  return { ask, guard: guarded.guard, lifecycle };
}

const jwt = (sub: string, jti: string) => signToken({ scope: 'orders:read', jti }, { sub });

function guardCases(name: string, make: () => Promise<{ store: TokenStore; kept: Kept }>) {
  describe(`${name}: lone surrogates through a guard`, () => {
    it('revoke and revokeSubject refuse an ill-formed id, subject or actor with a UsageError and write nothing; bob\\uFFFD still passes', async () => {
      const { store, kept } = await make();
      const { ask, guard, lifecycle } = await app(store);
      const calls: [string, () => Promise<unknown>][] = [
        ['revokeSubject', () => guard.revokeSubject('bob\uDFFF', { now: NOW })],
        ['revoke', () => guard.revoke('tok-\uD800', { now: NOW })],
        ['revoke of a TokenInfo', () => guard.revoke({ id: 'tok-1', kind: 'jwt', scopes: [], subject: 'bob\uDFFF' } as TokenInfo, { now: NOW })],
        ['revokeSubject by an actor', () => guard.revokeSubject('bob', { now: NOW, actor: 'ops\uD83D' })],
        ['revoke by an actor', () => guard.revoke('tok-1', { now: NOW, actor: 'ops\uDC00' })],
      ];
      for (const [what, call] of calls) {
        expect([what, await thrown(call)]).toEqual([what, expect.objectContaining({ name: 'UsageError', message: expect.stringContaining('is not well-formed Unicode') })]);
      }
      expect(await kept.getRevocation('tok-1', 'bob', T + 1)).toBeUndefined();
      expect(await kept.getRevocation('tok-\uFFFD', 'bob\uFFFD', T + 1)).toBeUndefined();
      expect(await kept.listLifecycleEvents({})).toEqual([]);
      expect(lifecycle).toEqual([]);
      expect((await ask(await jwt('bob\uFFFD', 'j-fffd'))).answer).toBe('200 ok');
    });

    it('a JWT whose sub or jti holds a lone surrogate is refused 401 token.invalid, naming the claim, every time', async () => {
      const { store } = await make();
      const { ask } = await app(store);
      const cutSub = await jwt('bob\uDFFF', 'j-1');
      const cutJti = await jwt('bob', 'j-\uD800');
      for (let i = 0; i < 2; i++) {
        expect(await ask(cutSub)).toEqual({ answer: '401 token.invalid', detail: 'sub is not well-formed Unicode (it holds a lone UTF-16 surrogate)' });
        expect(await ask(cutJti)).toEqual({ answer: '401 token.invalid', detail: 'jti is not well-formed Unicode (it holds a lone UTF-16 surrogate)' });
      }
    });

    it('an introspected token whose sub or jti holds a lone surrogate is refused 401 token.invalid, naming the claim', async () => {
      const { store } = await make();
      const { ask } = await app(store);
      expect(await ask(CUT_SUB)).toEqual({ answer: '401 token.invalid', detail: 'sub is not well-formed Unicode (it holds a lone UTF-16 surrogate)' });
      expect(await ask(CUT_JTI)).toEqual({ answer: '401 token.invalid', detail: 'jti is not well-formed Unicode (it holds a lone UTF-16 surrogate)' });
    });

    it('emoji in sub and jti pass, and revoking them refuses them alone, not their U+FFFD spellings', async () => {
      const { store, kept } = await make();
      const { ask, guard, lifecycle } = await app(store);
      const rocketJwt = await jwt(`bob ${ROCKET}`, 'j-2');
      const fffdJwt = await jwt('bob \uFFFD', 'j-3');
      const rocketIdJwt = await jwt('carol', `j-${ROCKET}`);
      const fffdIdJwt = await jwt('carol', 'j-\uFFFD');
      for (const t of [rocketJwt, fffdJwt, rocketIdJwt, fffdIdJwt, ROCKET_OPAQUE, FFFD_OPAQUE]) expect((await ask(t)).answer).toBe('200 ok');
      await guard.revokeSubject(`bob ${ROCKET}`, { now: NOW });
      await guard.revoke(`j-${ROCKET}`, { now: NOW });
      expect([await ask(rocketJwt), await ask(rocketIdJwt), await ask(ROCKET_OPAQUE)].map((a) => a.answer)).toEqual([
        '401 token.revoked',
        '401 token.revoked',
        '401 token.revoked',
      ]);
      expect([await ask(fffdJwt), await ask(fffdIdJwt), await ask(FFFD_OPAQUE)].map((a) => a.answer)).toEqual(['200 ok', '200 ok', '200 ok']);
      expect((await kept.listLifecycleEvents({ subject: `bob ${ROCKET}` })).map((e) => e.type)).toEqual(['subject.revoked']);
      expect(lifecycle.map((e) => [e.type, e.subject ?? e.tokenId])).toEqual([
        ['subject.revoked', `bob ${ROCKET}`],
        ['token.revoked', `j-${ROCKET}`],
      ]);
    });
  });
}

describe('regression: a lone surrogate is no token id or subject', () => {
  guardCases('MemoryStore', async () => {
    const store = new MemoryStore();
    return { store, kept: store };
  });
  describe.skipIf(!redisUp)('on Redis', () => {
    const redis = useSharedRedis('lone-surrogate-guard');
    let n = 0;
    guardCases('RedisStore', async () => {
      const store = new RedisStore({ client: redis.client, prefix: `${redis.prefix}${++n}:`, durability: 'ignore' });
      return { store, kept: store };
    });
  });
  describe.skipIf(!pgUp)('on PostgreSQL', () => {
    const db = useTestDatabase('lonesurrogateguard');
    guardCases('PostgresStore', async () => {
      const { store: pg } = await db.store();
      const m = new MemoryStore();
      return { store: composeStores({ keys: pg, revocations: pg, counters: m, claims: m, usage: m }), kept: pg };
    });
  });
});
