// Conformance of the lifecycle part of a store (optional in TokenStore): the key inventory (listApiKeys,
// getApiKeyById kept current by put, update and delete), the lifecycle event log, and revocation reasons.
import type { Awaitable } from '../../leaf/types.js';
import type { LifecycleEvent } from '../../leaf/lifecycle.js';
import type { ApiKeyRecord, TokenStore } from '../../leaf/store.js';
import { MINUTE, T0, allTypeErrors, bad, fullRecord, record, refusals, runConcern, type Concern, type ConformanceOptions, type ConformanceRunner } from './kit.js';

/** The TokenStore methods optional there that `LifecycleStore` requires. */
export type LifecycleStoreMethod = 'listApiKeys' | 'getApiKeyById' | 'appendLifecycleEvent' | 'listLifecycleEvents';

/** The lifecycle part of a TokenStore (its optional methods, required here): what `lifecycleConformance` tests. */
export type LifecycleStore = Pick<
  TokenStore,
  'getApiKey' | 'putApiKey' | 'updateApiKey' | 'deleteApiKey' | 'useApiKey' | 'revoke' | 'revokeSubject' | 'getRevocation' | 'close'
> &
  Required<Pick<TokenStore, LifecycleStoreMethod>>;

const ids = (records: readonly ApiKeyRecord[]): string[] => records.map((r) => r.id).sort();

/** A lifecycle event at `T0 + minutes`, with `overrides`. */
function event(n: number, overrides: Partial<LifecycleEvent> = {}): LifecycleEvent {
  return { id: `evt_conformance${n}`, type: 'key.issued', at: T0 + n * MINUTE, subject: 'svc-billing', tokenId: 'key_conformance1', actor: 'alice', ...overrides };
}

const other = (overrides: Partial<ApiKeyRecord> = {}): ApiKeyRecord => record({ id: 'key_other', hash: 'b'.repeat(64), ...overrides });

/** The tests of this concern, for `lifecycleConformance` and `storeConformance({ lifecycle: true })`. */
export const lifecycle: Concern<LifecycleStore> = {
  tests({ describe, expect, test }) {
    describe('key inventory', () => {
      test('listApiKeys of a subject without keys is empty', async (store) => {
        expect(await store.listApiKeys('nobody')).toEqual([]);
      });

      test("listApiKeys returns every record of the subject, whole, and none of another subject's", async (store) => {
        const full = fullRecord();
        await store.putApiKey(full);
        await store.putApiKey(record());
        await store.putApiKey(other({ subject: 'svc-other' }));
        const listed = await store.listApiKeys('svc-billing');
        expect(ids(listed)).toEqual(['key_conformance1', 'key_full']);
        expect(listed.find((r) => r.id === 'key_full')).toEqual(full);
        expect(ids(await store.listApiKeys('svc-other'))).toEqual(['key_other']);
      });

      test('getApiKeyById finds a record by its id; an unknown id is undefined', async (store) => {
        await store.putApiKey(fullRecord());
        expect(await store.getApiKeyById('key_full')).toEqual(fullRecord());
        expect(await store.getApiKeyById('key_unknown')).toBeUndefined();
      });

      test('updateApiKey is seen by both lookups, and a changed subject moves the record', async (store) => {
        await store.putApiKey(record());
        await store.updateApiKey(record().hash, { subject: 'svc-moved', revokedAt: T0, revocationReason: 'compromised' });
        expect(await store.listApiKeys('svc-billing')).toEqual([]);
        const moved = await store.listApiKeys('svc-moved');
        expect(moved).toEqual([record({ subject: 'svc-moved', revokedAt: T0, revocationReason: 'compromised' })]);
        expect((await store.getApiKeyById('key_conformance1'))?.subject).toBe('svc-moved');
      });

      test('putApiKey over a record of another subject moves it to the new subject only', async (store) => {
        await store.putApiKey(record());
        await store.putApiKey(record({ subject: 'svc-new' }));
        expect(await store.listApiKeys('svc-billing')).toEqual([]);
        expect(ids(await store.listApiKeys('svc-new'))).toEqual(['key_conformance1']);
      });

      test('deleteApiKey removes the record from the subject list and the id lookup', async (store) => {
        await store.putApiKey(record());
        await store.putApiKey(other());
        await store.deleteApiKey(record().hash);
        expect(ids(await store.listApiKeys('svc-billing'))).toEqual(['key_other']);
        expect(await store.getApiKeyById('key_conformance1')).toBeUndefined();
      });

      test('both lookups show uses left after useApiKey', async (store) => {
        await store.putApiKey(record({ remaining: 3 }));
        await store.useApiKey(record().hash);
        expect((await store.listApiKeys('svc-billing'))[0]?.remaining).toBe(2);
        expect((await store.getApiKeyById('key_conformance1'))?.remaining).toBe(2);
      });

      test('changing a listed record does not change the stored one', async (store) => {
        await store.putApiKey(record());
        const [got] = await store.listApiKeys('svc-billing');
        try {
          got?.scopes.push('admin');
        } catch {
          // A frozen record refuses the change: just as good.
        }
        expect((await store.getApiKey(record().hash))?.scopes).toEqual(['orders:read', 'orders:write']);
      });

      test('subjects that look alike stay apart', async (store) => {
        await store.putApiKey(record({ subject: 'a:b' }));
        await store.putApiKey(other({ subject: 'a}b' }));
        expect(ids(await store.listApiKeys('a:b'))).toEqual(['key_conformance1']);
        expect(ids(await store.listApiKeys('a}b'))).toEqual(['key_other']);
        expect(await store.listApiKeys('a')).toEqual([]);
      });
    });

    describe('lifecycle events', () => {
      test('listLifecycleEvents of a store without events is empty', async (store) => {
        expect(await store.listLifecycleEvents({})).toEqual([]);
      });

      test('events come back whole, oldest first, in the order appended', async (store) => {
        const events = [
          event(1),
          event(2, { type: 'key.rotated', successorId: 'key_next', sunsetAt: T0 + 60 * MINUTE, reason: 'rotated' }),
          event(3, { type: 'token.revoked', subject: undefined, tokenId: 'jti-1', actor: undefined, reason: 'compromised' }),
          event(4, { type: 'subject.revoked', tokenId: undefined, issuer: 'https://acme.id.example/', reason: 'offboarded' }),
        ];
        for (const e of events) await store.appendLifecycleEvent(e);
        expect(await store.listLifecycleEvents({})).toEqual(events);
      });

      test('a query narrows by subject, token id and time, and limit keeps the latest', async (store) => {
        await store.appendLifecycleEvent(event(1));
        await store.appendLifecycleEvent(event(2, { subject: 'svc-other', tokenId: 'key_other' }));
        await store.appendLifecycleEvent(event(3, { type: 'key.revoked', reason: 'offboarded' }));
        await store.appendLifecycleEvent(event(4, { type: 'subject.revoked', tokenId: undefined, reason: 'offboarded' }));
        const idsOf = (es: LifecycleEvent[]) => es.map((e) => e.id);
        expect(idsOf(await store.listLifecycleEvents({ subject: 'svc-billing' }))).toEqual(['evt_conformance1', 'evt_conformance3', 'evt_conformance4']);
        expect(idsOf(await store.listLifecycleEvents({ tokenId: 'key_other' }))).toEqual(['evt_conformance2']);
        expect(idsOf(await store.listLifecycleEvents({ since: T0 + 3 * MINUTE }))).toEqual(['evt_conformance3', 'evt_conformance4']);
        expect(idsOf(await store.listLifecycleEvents({ limit: 2 }))).toEqual(['evt_conformance3', 'evt_conformance4']);
        expect(idsOf(await store.listLifecycleEvents({ subject: 'svc-billing', limit: 1 }))).toEqual(['evt_conformance4']);
      });

      test('events about a subject or token id with a NUL or a % come back as they were, and stay apart', async (store) => {
        // A subject or jti is the token issuer's to choose; the guard appends an event for each revocation of one.
        const odd = [
          event(1, { type: 'subject.revoked', subject: 'al\u0000ice%00', tokenId: undefined, actor: 'ops\u0000%25' }),
          event(2, { type: 'subject.revoked', subject: 'al%00ice\u0000', tokenId: undefined }),
          event(3, { type: 'token.revoked', subject: undefined, tokenId: 'jti\u0000', reason: 'compromised' }),
          event(4, { type: 'token.revoked', subject: undefined, tokenId: 'jti%00' }),
        ];
        for (const e of odd) await store.appendLifecycleEvent(e);
        expect(await store.listLifecycleEvents({})).toEqual(odd);
        expect(await store.listLifecycleEvents({ subject: 'al\u0000ice%00' })).toEqual([odd[0]]);
        expect(await store.listLifecycleEvents({ tokenId: 'jti\u0000' })).toEqual([odd[2]]);
        expect(await store.listLifecycleEvents({ tokenId: 'jti%00' })).toEqual([odd[3]]);
      });

      test('events about a subject or token id with an emoji come back as they were, apart from their U+FFFD spelling', async (store) => {
        const astral = [
          event(1, { type: 'subject.revoked', subject: 'bob \ud83d\ude80', tokenId: undefined, actor: 'ops \ud83d\udee0' }),
          event(2, { type: 'token.revoked', subject: undefined, tokenId: 'jti-\ud83d\ude80' }),
        ];
        for (const e of astral) await store.appendLifecycleEvent(e);
        expect(await store.listLifecycleEvents({})).toEqual(astral);
        expect(await store.listLifecycleEvents({ subject: 'bob \ud83d\ude80' })).toEqual([astral[0]]);
        expect(await store.listLifecycleEvents({ tokenId: 'jti-\ud83d\ude80' })).toEqual([astral[1]]);
        expect(await store.listLifecycleEvents({ subject: 'bob \ufffd' })).toEqual([]);
        expect(await store.listLifecycleEvents({ tokenId: 'jti-\ufffd\ufffd' })).toEqual([]);
      });

      test('appending an event whose id is already kept keeps it once', async (store) => {
        await store.appendLifecycleEvent(event(1));
        await store.appendLifecycleEvent(event(1));
        expect(await store.listLifecycleEvents({})).toEqual([event(1)]);
      });
    });

    describe('revocation reasons', () => {
      test('revoke keeps its reason, and getRevocation returns it', async (store) => {
        await store.revoke('tok-1', { now: T0, reason: 'compromised' });
        expect(await store.getRevocation('tok-1', undefined, T0)).toEqual({ revokedAt: T0, reason: 'compromised' });
      });

      test('revokeSubject keeps its reason as subjectReason', async (store) => {
        await store.revokeSubject('alice', { now: T0, before: T0, reason: 'offboarded' });
        expect(await store.getRevocation('tok-1', 'alice', T0)).toEqual({ subjectRevokedBefore: T0, subjectReason: 'offboarded' });
      });

      test('a revocation without a reason has none', async (store) => {
        await store.revoke('tok-1', { now: T0 });
        const state = await store.getRevocation('tok-1', undefined, T0);
        expect(state?.reason).toBeUndefined();
      });
    });
  },

  badArguments({ expect, test }) {
    test('inventory lookups with an empty or non-string subject or id, or one with a lone surrogate', async (store) => {
      const cases: Record<string, () => unknown> = {
        'listApiKeys of an empty subject': () => store.listApiKeys(''),
        'listApiKeys of a number': () => store.listApiKeys(bad(7)),
        // PostgreSQL and Redis would look up (and list) the subject spelled with U+FFFD instead.
        'listApiKeys of a lone surrogate': () => store.listApiKeys('svc-\udfff'),
        'getApiKeyById of an empty id': () => store.getApiKeyById(''),
        'getApiKeyById of an object': () => store.getApiKeyById(bad({})),
        'getApiKeyById of a lone surrogate': () => store.getApiKeyById('key_\ud800'),
      };
      expect(await refusals(cases)).toEqual(allTypeErrors(cases));
    });

    test('appendLifecycleEvent with a missing field, an unknown type or field, a Date, a bad reason, or a lone surrogate', async (store) => {
      const cases: Record<string, () => unknown> = {
        'no event': () => store.appendLifecycleEvent(bad(undefined)),
        'no id': () => store.appendLifecycleEvent(bad({ ...event(1), id: undefined })),
        'an unknown type': () => store.appendLifecycleEvent(bad({ ...event(1), type: 'key.stolen' })),
        'at as a Date': () => store.appendLifecycleEvent(bad({ ...event(1), at: new Date(T0) })),
        'at NaN': () => store.appendLifecycleEvent({ ...event(1), at: Number.NaN }),
        'a hash field (events never carry one)': () => store.appendLifecycleEvent(bad({ ...event(1), hash: 'a'.repeat(64) })),
        'a reason with spaces and capitals': () => store.appendLifecycleEvent({ ...event(1), reason: 'Stolen Key!' }),
        'a subject that is a number': () => store.appendLifecycleEvent(bad({ ...event(1), subject: 7 })),
        // jsonb refuses a lone surrogate: a store that takes one elsewhere is a store whose audit trail differs.
        'a subject with a lone surrogate': () => store.appendLifecycleEvent({ ...event(1), subject: 'bob\udfff' }),
        'a token id with a lone surrogate': () => store.appendLifecycleEvent({ ...event(1), tokenId: 'tok-\ud800' }),
        'an actor with a lone surrogate': () => store.appendLifecycleEvent({ ...event(1), actor: 'ops\ud83d' }),
      };
      expect(await refusals(cases)).toEqual(allTypeErrors(cases));
      expect(await store.listLifecycleEvents({})).toEqual([]);
    });

    test('listLifecycleEvents with a limit of 0, a Date as since, no query, or a lone surrogate', async (store) => {
      const cases: Record<string, () => unknown> = {
        'limit 0': () => store.listLifecycleEvents({ limit: 0 }),
        'limit 1.5': () => store.listLifecycleEvents({ limit: 1.5 }),
        'since as a Date': () => store.listLifecycleEvents(bad({ since: new Date(T0) })),
        'no query': () => store.listLifecycleEvents(bad(undefined)),
        'a subject with a lone surrogate': () => store.listLifecycleEvents({ subject: 'bob\udfff' }),
        'a token id with a lone surrogate': () => store.listLifecycleEvents({ tokenId: 'tok-\ud800' }),
      };
      expect(await refusals(cases)).toEqual(allTypeErrors(cases));
    });

    test('revoke and revokeSubject with a reason that is not a lower-case word', async (store) => {
      const cases: Record<string, () => unknown> = {
        'revoke, reason with a newline': () => store.revoke('tok-1', { now: T0, reason: 'compromised\nx' }),
        'revoke, reason a number': () => store.revoke('tok-1', bad({ now: T0, reason: 5 })),
        'revokeSubject, empty reason': () => store.revokeSubject('alice', { now: T0, before: T0, reason: '' }),
      };
      expect(await refusals(cases)).toEqual(allTypeErrors(cases));
      expect(await store.getRevocation('tok-1', 'alice', T0)).toBeUndefined();
    });
  },

  failingCalls: (store) => ({
    listApiKeys: () => store.listApiKeys('svc-billing'),
    getApiKeyById: () => store.getApiKeyById('key_conformance1'),
    appendLifecycleEvent: () => store.appendLifecycleEvent(event(1)),
    listLifecycleEvents: () => store.listLifecycleEvents({}),
  }),
};

/**
 * Registers the lifecycle part of the store conformance suite, for a store that implements TokenStore's optional
 * lifecycle methods: the key inventory by subject and id stays current through put, update and delete; lifecycle
 * events come back in order, narrowed by a query, never twice; revocations keep their reasons.
 *
 * Exported from `token-guard/testing`.
 */
export function lifecycleConformance(
  name: string,
  makeStore: () => Awaitable<LifecycleStore>,
  runner: ConformanceRunner,
  options: ConformanceOptions<LifecycleStore> = {},
): void {
  runConcern(`${name} conforms to the lifecycle part of TokenStore`, lifecycle, makeStore, runner, options);
}
