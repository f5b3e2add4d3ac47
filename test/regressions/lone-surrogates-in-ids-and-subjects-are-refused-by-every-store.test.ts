// Regression (security review F1a, F1b, F1d): PostgreSQL and Redis turn a lone UTF-16 surrogate into U+FFFD on the way
// in, so `revoke('tok-\uD800')` also revoked `tok-\uDC00` and `tok-\uFFFD` there (and a subject, and the digest of a
// long id, likewise), while MemoryStore kept them apart; and PostgreSQL's jsonb refused the lifecycle event naming
// such a subject after its revocation was written. Token ids and subjects must now be well-formed Unicode in every
// store: each refuses a lone surrogate with a StoreArgumentError before writing, and an astral character (an emoji, a
// surrogate pair) is kept as given, apart from its U+FFFD spelling.
import { describe, expect, it } from 'vitest';
import { MemoryStore, StoreArgumentError, type LifecycleEvent, type TokenStore } from '../../src/index.js';
import { RedisStore } from '../../src/stores/redis.js';
import { pgUp, useTestDatabase } from '../helpers/postgres.js';
import { redisUp, useSharedRedis } from '../helpers/redis.js';
import { thrown } from '../helpers/stores.js';

const T0 = Date.UTC(2026, 10, 25, 10, 0, 0);
const LONG = 'x'.repeat(3000);
const WELL_FORMED = 'well-formed Unicode, without a lone UTF-16 surrogate (PostgreSQL and Redis keep one as U+FFFD)';

/** What these cases use of a store: revocations, lifecycle events and the key inventory, which all three keep. */
type Store = Pick<TokenStore, 'revoke' | 'revokeSubject' | 'getRevocation'> &
  Required<Pick<TokenStore, 'appendLifecycleEvent' | 'listLifecycleEvents' | 'listApiKeys' | 'getApiKeyById'>>;

const event = (o: Partial<LifecycleEvent>): LifecycleEvent => ({ id: 'evt_1', type: 'subject.revoked', at: T0, ...o }) as LifecycleEvent;

async function refusal(call: () => unknown): Promise<unknown> {
  const err = await thrown(call);
  expect(err).toBeInstanceOf(StoreArgumentError);
  return err;
}

function storeCases(name: string, make: () => Promise<Store>) {
  describe(`${name}: token ids and subjects with a lone surrogate`, () => {
    it('revoke of tok-\\uD800 is refused, and revokes neither tok-\\uFFFD nor anything else', async () => {
      const store = await make();
      expect(await refusal(() => store.revoke('tok-\uD800', { now: T0 }))).toMatchObject({
        code: 'store.invalid_argument',
        message: `revoke: tokenId must be ${WELL_FORMED} (got the string "tok-\\ud800")`,
      });
      // A pair reversed, a lead before a pair, a trail after one: each holds a lone surrogate.
      for (const id of ['tok-\uDC00\uD800', 'tok-\uD83D\uD83D\uDE80', 'tok-\uD83D\uDE80\uDE80']) await refusal(() => store.revoke(id, { now: T0 }));
      for (const other of ['tok-\uFFFD', 'tok-\uFFFD\uFFFD', 'tok-']) expect([other, await store.getRevocation(other, undefined, T0 + 1)]).toEqual([other, undefined]);
    });

    it("revokeSubject of a cut emoji is refused, and another subject spelled with U+FFFD is not revoked; nor is a long id's digest shared", async () => {
      const store = await make();
      await refusal(() => store.revokeSubject('eve\uD83D', { now: T0, before: T0 }));
      expect(await store.getRevocation('any', 'eve\uFFFD', T0 + 1)).toBeUndefined();
      await refusal(() => store.revoke(`${LONG}\uDC01`, { now: T0 }));
      expect(await store.getRevocation(`${LONG}\uFFFD`, undefined, T0 + 1)).toBeUndefined();
    });

    it('a lookup of an ill-formed id or subject is refused too, even where a revocation of its U+FFFD spelling exists', async () => {
      const store = await make();
      await store.revoke('tok-\uFFFD', { now: T0 });
      await store.revokeSubject('bob\uFFFD', { now: T0, before: T0 });
      // PostgreSQL and Redis answered these with tok-\uFFFD's and bob\uFFFD's revocations, MemoryStore with none.
      await refusal(() => store.getRevocation('tok-\uD800', undefined, T0 + 1));
      expect(await refusal(() => store.getRevocation('tok-1', 'bob\uDFFF', T0 + 1))).toMatchObject({
        message: `getRevocation: subject must be ${WELL_FORMED} (got the string "bob\\udfff")`,
      });
      await refusal(() => store.listApiKeys('bob\uDFFF'));
      await refusal(() => store.getApiKeyById('key_\uD800'));
    });

    it("a lifecycle event naming a lone surrogate is refused by the store's own check (not by jsonb), and nothing is kept", async () => {
      const store = await make();
      for (const e of [event({ subject: 'eve\uD83D' }), event({ type: 'token.revoked', tokenId: 'tok-\uD800' }), event({ actor: 'ops\uDC00' }), event({ id: 'evt_\uD800' })]) {
        expect(await refusal(() => store.appendLifecycleEvent(e))).toMatchObject({
          message: expect.stringMatching(/^appendLifecycleEvent: event\.\w+ must be well-formed Unicode/),
        });
      }
      await refusal(() => store.listLifecycleEvents({ subject: 'eve\uD83D' }));
      expect(await store.listLifecycleEvents({})).toEqual([]);
    });

    it('an emoji (a surrogate pair) in an id, a subject or an event is kept as given, apart from its U+FFFD spelling', async () => {
      const store = await make();
      await store.revoke('tok-\uD83D\uDE80', { now: T0 });
      await store.revokeSubject('bob \uD83D\uDE80', { now: T0, before: T0 });
      expect(await store.getRevocation('tok-\uD83D\uDE80', 'bob \uD83D\uDE80', T0 + 1)).toEqual({ revokedAt: T0, subjectRevokedBefore: T0 });
      expect(await store.getRevocation('tok-\uFFFD', 'bob \uFFFD', T0 + 1)).toBeUndefined();
      expect(await store.getRevocation('tok-\uFFFD\uFFFD', 'bob \uFFFD\uFFFD', T0 + 1)).toBeUndefined();
      const e = event({ subject: 'bob \uD83D\uDE80', actor: 'ops \uD83D\uDEE0' });
      await store.appendLifecycleEvent(e);
      expect(await store.listLifecycleEvents({ subject: 'bob \uD83D\uDE80' })).toEqual([e]);
      expect(await store.listLifecycleEvents({ subject: 'bob \uFFFD' })).toEqual([]);
    });
  });
}

describe('regression: lone surrogates in token ids and subjects are refused by every store', () => {
  storeCases('MemoryStore', async () => new MemoryStore() as Store);
  describe.skipIf(!redisUp)('on Redis', () => {
    const redis = useSharedRedis('lone-surrogate');
    // A prefix of each store's own under the suite's (deleted with it): no case sees another's revocations.
    let n = 0;
    storeCases('RedisStore', async () => new RedisStore({ client: redis.client, prefix: `${redis.prefix}${++n}:`, durability: 'ignore' }) as Store);
  });
  describe.skipIf(!pgUp)('on PostgreSQL', () => {
    const db = useTestDatabase('lonesurrogate');
    storeCases('PostgresStore', async () => (await db.store()).store as Store);
  });
});
