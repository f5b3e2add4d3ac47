// Regression (security review F1, SET receiver): a security event naming a subject or token with a lone UTF-16
// surrogate became a revocation of it, which PostgreSQL and Redis keep as U+FFFD: the event of `bob\uDFFF` revoked
// `bob\uFFFD` there, and nobody in MemoryStore. Every store now refuses such an id (a store failure, answered 503 and
// retried for ever), so the receiver refuses the SET first: 400 invalid_request, nothing applied. A SET whose own jti
// holds one is refused too (its replay key is hashed as UTF-8, where it reads as U+FFFD). Emoji work as before.
import { describe, expect, it } from 'vitest';
import { composeStores, MemoryStore, type TokenStore } from '../../src/index.js';
import { CAEP_EVENTS, createSetReceiver, type SecurityEventRecord } from '../../src/receivers/set.js';
import { RedisStore } from '../../src/stores/redis.js';
import { pgUp, useTestDatabase } from '../helpers/postgres.js';
import { redisUp, useSharedRedis } from '../helpers/redis.js';
import { CT, IDP, idpKey, NOW, RECEIVER, securityEvent } from '../receivers/set-fixtures.js';

const T = NOW.getTime();
const ROCKET = '\uD83D\uDE80';
const revoked = (sub: string) => ({ [CAEP_EVENTS.sessionRevoked]: { subject: { format: 'iss_sub', iss: IDP, sub } } });
const claimsChanged = (jti: string) => ({ [CAEP_EVENTS.tokenClaimsChange]: { subject: { format: 'jwt_id', iss: IDP, jti }, claims: { role: 'reader' } } });

async function receiverOn(store: TokenStore) {
  const records: SecurityEventRecord[] = [];
  const receiver = createSetReceiver({ store, issuer: IDP, audience: RECEIVER, keys: [(await idpKey()).jwk], clock: () => NOW, onEvent: (r) => void records.push(r) });
  return { receive: async (body: string) => receiver.receive({ body, contentType: CT }), records };
}

function setCases(name: string, make: () => Promise<TokenStore>) {
  describe(`${name}: security events naming a lone surrogate`, () => {
    it.each([
      ['a session-revoked subject', { events: revoked('bob\uDFFF') }, 'event subject is not well-formed Unicode (it holds a lone UTF-16 surrogate)'],
      ['a token-claims-change jwt_id', { events: claimsChanged('tok-\uD800') }, 'event jwt_id jti is not well-formed Unicode (it holds a lone UTF-16 surrogate)'],
      ['the SET jti', { jti: 'set-\uD800' }, 'SET jti is not well-formed Unicode (it holds a lone UTF-16 surrogate)'],
      [
        'one of two events',
        { events: { ...revoked('alice'), ...claimsChanged('tok-\uDC00') } },
        'event jwt_id jti is not well-formed Unicode (it holds a lone UTF-16 surrogate)',
      ],
    ])('refuses a SET with one in %s: 400 invalid_request, nothing revoked', async (_what, set, description) => {
      const store = await make();
      const { receive, records } = await receiverOn(store);
      const r = await receive(await securityEvent(set));
      expect([r.status, JSON.parse(r.body)]).toEqual([400, { err: 'invalid_request', description }]);
      expect(records).toEqual([expect.objectContaining({ outcome: 'refused', error: 'invalid_request', actions: [] })]);
      for (const [id, sub] of [
        ['tok-\uFFFD', 'bob\uFFFD'],
        ['tok-1', 'alice'],
      ] as const)
        expect(await store.getRevocation(id, sub, T + 1)).toBeUndefined();
    });

    it('applies a SET naming an emoji subject or jti to them alone, not to their U+FFFD spellings', async () => {
      const store = await make();
      const { receive } = await receiverOn(store);
      expect((await receive(await securityEvent({ events: { ...revoked(`bob ${ROCKET}`), ...claimsChanged(`tok-${ROCKET}`) } }))).status).toBe(202);
      expect(await store.getRevocation(`tok-${ROCKET}`, `bob ${ROCKET}`, T + 1)).toMatchObject({ revokedAt: T, subjectRevokedBefore: T });
      expect(await store.getRevocation('tok-\uFFFD', 'bob \uFFFD', T + 1)).toBeUndefined();
      expect(await store.getRevocation('tok-\uFFFD\uFFFD', 'bob \uFFFD\uFFFD', T + 1)).toBeUndefined();
    });
  });
}

describe('regression: a SET naming a lone surrogate is an invalid SET', () => {
  setCases('MemoryStore', async () => new MemoryStore());
  describe.skipIf(!redisUp)('on Redis', () => {
    const redis = useSharedRedis('set-lone-surrogate');
    let n = 0;
    setCases('RedisStore', async () => new RedisStore({ client: redis.client, prefix: `${redis.prefix}${++n}:`, durability: 'ignore' }));
  });
  describe.skipIf(!pgUp)('on PostgreSQL', () => {
    const db = useTestDatabase('setlonesurrogate');
    setCases('PostgresStore', async () => {
      const { store: pg } = await db.store();
      const m = new MemoryStore();
      return composeStores({ keys: pg, revocations: pg, counters: m, claims: m, usage: m });
    });
  });
});
