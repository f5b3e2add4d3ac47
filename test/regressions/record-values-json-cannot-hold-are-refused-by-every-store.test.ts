// Regression: the stores' shared record check refused a BigInt or a cycle in a key record (a JSON.stringify that threw),
// but not the values JSON writes as something else. RedisStore and PostgresStore keep a record as JSON, MemoryStore
// clones it: NaN or Infinity read back as null from one store and as NaN from another, a Map, Set or Date as {} (or a
// string) against the object itself, a function or symbol was dropped by one and threw a bare DataCloneError in
// MemoryStore. A record worked differently depending on the store behind it. Now every store refuses such a value with
// a StoreArgumentError naming its path, and writes nothing; JSON values (null, nested arrays and plain objects) still
// read back as they were given.
import { describe, expect, it } from 'vitest';
import { issueApiKey, StoreArgumentError, type ApiKeyRecord } from '../../src/index.js';
import { thrown } from '../helpers/stores.js';
import { onEveryStore, type KeyStore } from '../helpers/every-store.js';

class Money {
  constructor(readonly cents: number) {}
}

const JSON_VALUE = 'a JSON value: a string, a finite number, a boolean, null, an array or a plain object';

/** Metadata holding one value JSON cannot hold as it is, and what the refusal says about it (path below metadata, got). */
const CASES: [string, Record<string, unknown>, string, string][] = [
  ['a function', { format: () => 'x' }, '.format', 'a function'],
  ['NaN', { ratio: Number.NaN }, '.ratio', 'NaN'],
  ['Infinity', { limit: Number.POSITIVE_INFINITY }, '.limit', 'Infinity'],
  ['-Infinity', { floor: Number.NEGATIVE_INFINITY }, '.floor', '-Infinity'],
  ['a Map', { tags: new Map([['team', 'billing']]) }, '.tags', 'a Map'],
  ['a Set', { teams: new Set(['billing']) }, '.teams', 'a Set'],
  ['a Date', { since: new Date(0) }, '.since', 'a Date'],
  ['a class instance', { price: new Money(5) }, '.price', 'a Money'],
  ['a symbol', { kind: Symbol('svc') }, '.kind', 'a symbol'],
  ['a BigInt deep in an array', { quotas: [{ n: 1 }, { n: 2n }] }, '.quotas[1].n', 'a bigint'],
  ['an array hole', { slots: new Array(2) }, '.slots[0]', 'undefined'],
  ['undefined in an array', { slots: [1, undefined] }, '.slots[1]', 'undefined'],
  ['a typed array', { bytes: new Uint8Array(4) }, '.bytes', 'a Uint8Array'],
];

/** What these cases use of a store (PostgresStore keeps keys and revocations only). */

const BASE = { prefix: 'tg_', subject: 'svc-values', scopes: [], expiresIn: '1d' } as const;

function storeCases(name: string, make: () => Promise<KeyStore>) {
  describe(`${name}: key records holding values JSON cannot hold as they are`, () => {
    it.each(CASES)('putApiKey and updateApiKey refuse %s in metadata with a StoreArgumentError naming the path, and write nothing', async (_what, metadata, at, got) => {
      const store = await make();
      const { record } = issueApiKey(BASE);
      await store.putApiKey(record);
      const other = issueApiKey(BASE).record;
      expect(await thrown(() => store.putApiKey({ ...other, metadata } as unknown as ApiKeyRecord))).toMatchObject({
        name: 'StoreArgumentError',
        code: 'store.invalid_argument',
        message: `putApiKey: record.metadata${at} must be ${JSON_VALUE} (got ${got})`,
      });
      expect(await store.getApiKey(other.hash)).toBeUndefined();
      const patchError = await thrown(() => store.updateApiKey?.(record.hash, { metadata } as never));
      expect(patchError).toBeInstanceOf(StoreArgumentError);
      expect((patchError as Error).message).toBe(`updateApiKey: patch.metadata${at} must be ${JSON_VALUE} (got ${got})`);
      expect(await store.getApiKey(record.hash)).toEqual(record);
    });

    it('keeps the depth limit (a cycle is nested too deep), and refuses a non-plain value in any field, not only metadata', async () => {
      const store = await make();
      const cyclic: Record<string, unknown> = {};
      cyclic['self'] = cyclic;
      const { record } = issueApiKey(BASE);
      expect(await thrown(() => store.putApiKey({ ...record, metadata: cyclic } as never))).toMatchObject({
        name: 'StoreArgumentError',
        message: `putApiKey: record.metadata${'.self'.repeat(15)} must be nested at most 16 levels deep`,
      });
      expect(await thrown(() => store.putApiKey({ ...record, hours: new Map() } as never))).toMatchObject({
        name: 'StoreArgumentError',
        message: `putApiKey: record.hours must be ${JSON_VALUE} (got a Map)`,
      });
      expect(await store.getApiKey(record.hash)).toBeUndefined();
    });

    it('stores JSON values as given: null, nested arrays and plain objects, null-prototype objects, and undefined fields as absent', async () => {
      const store = await make();
      const { record } = issueApiKey(BASE);
      const metadata = { note: null, nested: { list: [1, 'two', false, null, { deep: [] }] }, bare: Object.assign(Object.create(null), { a: 1 }), gone: undefined };
      await store.putApiKey({ ...record, metadata } as never);
      expect(await store.getApiKey(record.hash)).toEqual({ ...record, metadata: { note: null, nested: { list: [1, 'two', false, null, { deep: [] }] }, bare: { a: 1 } } });
    });
  });
}

onEveryStore('record-values', storeCases);

describe('issueApiKey', () => {
  it.each(CASES)('refuses %s in metadata before any store sees it (ApiKeyError naming the field)', (_what, metadata) => {
    expect(() => issueApiKey({ ...BASE, metadata: metadata as never })).toThrow(expect.objectContaining({ name: 'ApiKeyError', message: expect.stringMatching(/metadata/) }));
  });
});
