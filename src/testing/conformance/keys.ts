// Conformance of the API key part of a store: records (get, put, update, delete) and uses (useApiKey).
import type { Awaitable } from '../../leaf/types.js';
import type { ApiKeyRecord, TokenStore } from '../../leaf/store.js';
import { MINUTE, T0, allTypeErrors, bad, fullRecord, record, refusals, runConcern, type Concern, type ConformanceOptions, type ConformanceRunner } from './kit.js';

/** The API key part of a TokenStore: what `keysConformance` tests. */
export type KeysStore = Pick<TokenStore, 'getApiKey' | 'putApiKey' | 'updateApiKey' | 'deleteApiKey' | 'useApiKey' | 'close'>;

/** The tests of this concern, for `keysConformance` and `storeConformance`. */
export const keys: Concern<KeysStore> = {
  tests({ describe, expect, test, concurrency }) {
    describe('API key records', () => {
      test('getApiKey of an unknown hash is undefined', async (store) => {
        expect(await store.getApiKey('0'.repeat(64))).toBeUndefined();
      });

      test('putApiKey then getApiKey returns the record with every field intact', async (store) => {
        const r = fullRecord();
        await store.putApiKey(r);
        expect(await store.getApiKey(r.hash)).toEqual(r);
      });

      test('putApiKey replaces the record stored under the same hash', async (store) => {
        await store.putApiKey(record({ remaining: 5 }));
        await store.putApiKey(record({ scopes: ['reports:read'] }));
        const got = await store.getApiKey(record().hash);
        expect(got?.scopes).toEqual(['reports:read']);
        expect(got?.remaining).toBeUndefined();
      });

      test('records under different hashes are separate', async (store) => {
        await store.putApiKey(record());
        await store.putApiKey(record({ id: 'key_other', hash: 'b'.repeat(64), subject: 'svc-other' }));
        expect((await store.getApiKey(record().hash))?.subject).toBe('svc-billing');
        expect((await store.getApiKey('b'.repeat(64)))?.subject).toBe('svc-other');
      });

      test('changing a returned record does not change the stored one', async (store) => {
        await store.putApiKey(record());
        const got = (await store.getApiKey(record().hash)) as ApiKeyRecord;
        try {
          got.scopes.push('admin');
          got.subject = 'mallory';
        } catch {
          // A frozen record refuses the change: just as good.
        }
        const again = await store.getApiKey(record().hash);
        expect(again?.scopes).toEqual(['orders:read', 'orders:write']);
        expect(again?.subject).toBe('svc-billing');
      });

      test('updateApiKey merges the patch and returns the updated record', async (store) => {
        await store.putApiKey(record());
        const updated = await store.updateApiKey(record().hash, { scopes: ['orders:read'], revokedAt: T0, name: 'renamed' });
        const expected = record({ scopes: ['orders:read'], revokedAt: T0, name: 'renamed' });
        expect(updated).toEqual(expected);
        expect(await store.getApiKey(record().hash)).toEqual(expected);
      });

      test('updateApiKey cannot change id, hash, prefix or createdAt', async (store) => {
        await store.putApiKey(record());
        const sneaky = { id: 'key_forged', hash: 'c'.repeat(64), prefix: 'xx_', createdAt: 1, subject: 'svc-new' } as unknown as Parameters<TokenStore['updateApiKey']>[1];
        const updated = await store.updateApiKey(record().hash, sneaky);
        expect(updated).toEqual(record({ subject: 'svc-new' }));
        expect(await store.getApiKey(record().hash)).toEqual(record({ subject: 'svc-new' }));
        expect(await store.getApiKey('c'.repeat(64))).toBeUndefined();
      });

      test('updateApiKey of an unknown hash returns undefined and stores nothing', async (store) => {
        expect(await store.updateApiKey(record().hash, { subject: 'ghost' })).toBeUndefined();
        expect(await store.getApiKey(record().hash)).toBeUndefined();
      });

      test('updateApiKey can set uses left on a key and take the limit away again', async (store) => {
        await store.putApiKey(record());
        expect((await store.updateApiKey(record().hash, { remaining: 2 }))?.remaining).toBe(2);
        expect(await store.useApiKey(record().hash)).toBe(1);
        expect((await store.updateApiKey(record().hash, { remaining: undefined }))?.remaining).toBeUndefined();
        expect(await store.useApiKey(record().hash)).toBeUndefined();
        expect((await store.getApiKey(record().hash))?.remaining).toBeUndefined();
      });

      test('updateApiKey with { unrotatedAndUnrevoked } writes only while the record is neither rotated nor revoked', async (store) => {
        const guarded = { unrotatedAndUnrevoked: true };
        await store.putApiKey(record());
        expect((await store.updateApiKey(record().hash, { name: 'first' }, guarded))?.name).toBe('first');
        expect(await store.updateApiKey(record().hash, { rotatedTo: 'key_b', rotatedAt: T0, revokedAt: T0 + 10 }, guarded)).toEqual(
          record({ name: 'first', rotatedTo: 'key_b', rotatedAt: T0, revokedAt: T0 + 10 }),
        );
        // A second rotation of the same key: refused, and the first one's marks stay.
        expect(await store.updateApiKey(record().hash, { rotatedTo: 'key_c', rotatedAt: T0 + 1, revokedAt: T0 + 20 }, guarded)).toBeUndefined();
        expect(await store.getApiKey(record().hash)).toEqual(record({ name: 'first', rotatedTo: 'key_b', rotatedAt: T0, revokedAt: T0 + 10 }));
        // Revoked (not rotated) counts too; without the condition the write goes through as before.
        await store.putApiKey(record({ id: 'key_r', hash: 'r'.repeat(64), revokedAt: T0 }));
        expect(await store.updateApiKey('r'.repeat(64), { rotatedTo: 'key_d' }, guarded)).toBeUndefined();
        expect((await store.getApiKey('r'.repeat(64)))?.rotatedTo).toBeUndefined();
        expect((await store.updateApiKey('r'.repeat(64), { name: 'plain' }))?.name).toBe('plain');
        expect(await store.updateApiKey('u'.repeat(64), { name: 'ghost' }, guarded)).toBeUndefined();
      });

      test('updateApiKey without remaining keeps the uses left', async (store) => {
        await store.putApiKey(record({ remaining: 3 }));
        await store.useApiKey(record().hash);
        expect((await store.updateApiKey(record().hash, { name: 'x' }))?.remaining).toBe(2);
      });

      test('putApiKey and updateApiKey refuse a lone UTF-16 surrogate, a NUL, or a value JSON cannot hold as it is (a BigInt, a function, NaN, a Map) anywhere in the record, and keep emoji intact', async (store) => {
        // PostgreSQL's jsonb refuses a lone surrogate and Redis's Lua cannot decode one: every store refuses it.
        const cut = 'cut \ud83d';
        expect(
          await refusals({
            name: () => store.putApiKey(record({ name: cut })),
            subject: () => store.putApiKey(record({ subject: cut })),
            scope: () => store.putApiKey(record({ scopes: ['orders:read', cut] })),
            metadataValue: () => store.putApiKey(record({ metadata: { note: cut } })),
            metadataKey: () => store.putApiKey(record({ metadata: { [cut]: 1 } })),
            // NUL: PostgreSQL's jsonb cannot hold it either.
            nulName: () => store.putApiKey(record({ name: 'a\u0000b' })),
            nulMetadata: () => store.putApiKey(record({ metadata: { note: '\u0000' } })),
            // BigInt: no JSON holds it, so a store that writes JSON would fail on it with a bare TypeError mid-write.
            bigintMetadata: () => store.putApiKey(record({ metadata: { uses: BigInt(1) as unknown as number } })),
            // Values JSON changes (a function dropped, NaN to null, a Map to {}): a store writing JSON would read back
            // something else than a store that clones, so every store refuses them.
            functionMetadata: () => store.putApiKey(record({ metadata: bad({ format: () => 'x' }) })),
            nanMetadata: () => store.putApiKey(record({ metadata: { ratio: Number.NaN } })),
            mapMetadata: () => store.putApiKey(record({ metadata: bad({ tags: new Map([['team', 'billing']]) }) })),
          }),
        ).toEqual(
          allTypeErrors({
            name: 0,
            subject: 0,
            scope: 0,
            metadataValue: 0,
            metadataKey: 0,
            nulName: 0,
            nulMetadata: 0,
            bigintMetadata: 0,
            functionMetadata: 0,
            nanMetadata: 0,
            mapMetadata: 0,
          }),
        );
        expect(await store.getApiKey(record().hash)).toBeUndefined();
        await store.putApiKey(record({ remaining: 2, name: 'rocket \ud83d\ude80', metadata: { rotatedTo: 'crm-42', note: '\u2028\u00e9' } }));
        expect(
          await refusals({
            patch: () => store.updateApiKey(record().hash, { name: cut }),
            bigintPatch: () => store.updateApiKey(record().hash, { metadata: { uses: BigInt(1) as unknown as number } }),
            functionPatch: () => store.updateApiKey(record().hash, { metadata: bad({ format: () => 'x' }) }),
            nanPatch: () => store.updateApiKey(record().hash, { metadata: { ratio: Number.POSITIVE_INFINITY } }),
            mapPatch: () => store.updateApiKey(record().hash, { metadata: bad({ tags: new Map([['team', 'billing']]) }) }),
          }),
        ).toEqual(allTypeErrors({ patch: 0, bigintPatch: 0, functionPatch: 0, nanPatch: 0, mapPatch: 0 }));
        expect((await store.getApiKey(record().hash))?.name).toBe('rocket \ud83d\ude80');
        expect((await store.getApiKey(record().hash))?.metadata).toEqual({ rotatedTo: 'crm-42', note: '\u2028\u00e9' });
        // A metadata field named like a record field is data: the key is not rotated and still spends.
        expect(await store.useApiKey(record().hash)).toBe(1);
      });

      test('deleteApiKey removes the record and returns true, then false', async (store) => {
        await store.putApiKey(record());
        expect(await store.deleteApiKey(record().hash)).toBe(true);
        expect(await store.getApiKey(record().hash)).toBeUndefined();
        expect(await store.deleteApiKey(record().hash)).toBe(false);
      });

      test('deleteApiKey of an unknown hash returns false', async (store) => {
        expect(await store.deleteApiKey('d'.repeat(64))).toBe(false);
      });
    });

    describe('API key uses (useApiKey)', () => {
      test('takes one use per call and returns the uses left', async (store) => {
        await store.putApiKey(record({ remaining: 3 }));
        expect(await store.useApiKey(record().hash)).toBe(2);
        expect(await store.useApiKey(record().hash)).toBe(1);
        expect(await store.useApiKey(record().hash)).toBe(0);
      });

      test('returns -1 at zero uses left without going negative', async (store) => {
        await store.putApiKey(record({ remaining: 1 }));
        expect(await store.useApiKey(record().hash)).toBe(0);
        expect(await store.useApiKey(record().hash)).toBe(-1);
        expect(await store.useApiKey(record().hash)).toBe(-1);
        expect((await store.getApiKey(record().hash))?.remaining).toBe(0);
      });

      test('returns -1 for a rotated key (rotatedTo set), taking nothing: its uses left went to its successor', async (store) => {
        await store.putApiKey(record({ remaining: 3 }));
        await store.updateApiKey(record().hash, { rotatedTo: 'key_successor', rotatedAt: T0, revokedAt: T0 });
        expect(await store.useApiKey(record().hash)).toBe(-1);
        expect((await store.getApiKey(record().hash))?.remaining).toBe(3);
        // Also when the record was stored already rotated (a restore, a migration).
        await store.putApiKey(record({ remaining: 2, rotatedTo: 'key_successor', revokedAt: T0 }));
        expect(await store.useApiKey(record().hash)).toBe(-1);
      });

      test('getApiKey reflects the uses taken', async (store) => {
        await store.putApiKey(record({ remaining: 10 }));
        await store.useApiKey(record().hash);
        await store.useApiKey(record().hash);
        expect((await store.getApiKey(record().hash))?.remaining).toBe(8);
      });

      test('returns undefined for an unknown key', async (store) => {
        expect(await store.useApiKey('e'.repeat(64))).toBeUndefined();
        expect(await store.getApiKey('e'.repeat(64))).toBeUndefined();
      });

      test('returns undefined for a key without a use limit and leaves it unlimited', async (store) => {
        await store.putApiKey(record());
        expect(await store.useApiKey(record().hash)).toBeUndefined();
        expect(await store.getApiKey(record().hash)).toEqual(record());
      });

      if (concurrency > 0) {
        const calls = Math.max(2, Math.floor(concurrency / 2));
        const left = Math.max(1, Math.floor((concurrency * 3) / 20));
        test(`${calls} parallel uses of a key with ${left} left: exactly ${left} succeed, each count handed out once`, async (store) => {
          await store.putApiKey(record({ remaining: left }));
          const results = await Promise.all(Array.from({ length: calls }, () => store.useApiKey(record().hash)));
          const granted = results.filter((r) => r !== undefined && r >= 0).sort((a, b) => (a as number) - (b as number));
          expect(granted).toEqual(Array.from({ length: left }, (_, i) => i));
          expect(results.filter((r) => r === -1).length).toBe(calls - left);
          expect((await store.getApiKey(record().hash))?.remaining).toBe(0);
        });
      }
    });
  },

  badArguments({ expect, test }) {
    const date = new Date(T0);

    test('putApiKey and updateApiKey with Dates, NaN or fractional uses left in the record', async (store) => {
      await store.putApiKey(record());
      const cases: Record<string, () => unknown> = {
        'put: expiresAt as a Date': () => store.putApiKey(record({ hash: 'b'.repeat(64), expiresAt: bad(new Date(T0 + MINUTE)) })),
        'put: revokedAt as a Date': () => store.putApiKey(record({ hash: 'b'.repeat(64), revokedAt: bad(date) })),
        'put: createdAt NaN': () => store.putApiKey(record({ hash: 'b'.repeat(64), createdAt: Number.NaN })),
        'put: remaining 1.5': () => store.putApiKey(record({ hash: 'b'.repeat(64), remaining: 1.5 })),
        'put: an empty hash': () => store.putApiKey(record({ hash: '' })),
        'put: no record': () => store.putApiKey(bad(undefined)),
        'update: revokedAt as a Date': () => store.updateApiKey(record().hash, bad({ revokedAt: date })),
        'update: expiresAt NaN': () => store.updateApiKey(record().hash, { expiresAt: Number.NaN }),
        'update: remaining NaN': () => store.updateApiKey(record().hash, { remaining: Number.NaN }),
        'update: no patch': () => store.updateApiKey(record().hash, bad(undefined)),
      };
      expect(await refusals(cases)).toEqual(allTypeErrors(cases));
      expect(await store.getApiKey(record().hash)).toEqual(record());
      expect(await store.getApiKey('b'.repeat(64))).toBeUndefined();
    });

    test('API key lookups by an empty or non-string hash', async (store) => {
      const cases: Record<string, () => unknown> = {
        'getApiKey empty': () => store.getApiKey(''),
        'getApiKey a number': () => store.getApiKey(bad(1)),
        'useApiKey empty': () => store.useApiKey(''),
        'deleteApiKey empty': () => store.deleteApiKey(''),
        'updateApiKey empty': () => store.updateApiKey('', { name: 'x' }),
      };
      expect(await refusals(cases)).toEqual(allTypeErrors(cases));
    });
  },

  failingCalls: (store) => ({
    getApiKey: () => store.getApiKey(record().hash),
    putApiKey: () => store.putApiKey(record()),
    updateApiKey: () => store.updateApiKey(record().hash, { name: 'x' }),
    deleteApiKey: () => store.deleteApiKey(record().hash),
    useApiKey: () => store.useApiKey(record().hash),
  }),
};

/**
 * Registers the API key part of the store conformance suite: records round-trip intact, updates merge and keep
 * identity fields, uses are taken atomically and never below zero. For a store that keeps API keys (e.g. in
 * Postgres) while another keeps the rest.
 *
 * Exported from `token-guard/testing`.
 */
export function keysConformance(name: string, makeStore: () => Awaitable<KeysStore>, runner: ConformanceRunner, options: ConformanceOptions<KeysStore> = {}): void {
  runConcern(`${name} conforms to the API key part of TokenStore`, keys, makeStore, runner, options);
}
