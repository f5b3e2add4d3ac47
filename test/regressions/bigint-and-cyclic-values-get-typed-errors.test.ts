// Regression: messages that quoted a caller's bad value with JSON.stringify threw a bare TypeError ("Do not know how to
// serialize a BigInt", "Converting circular structure to JSON") instead of the typed error they were building:
// `rotateApiKey({ grace: 10n })` (UsageError), `issueApiKey` / `createApiKey` with such a `prefix` or `expiresIn`
// (ApiKeyError), `updateApiKey(hash, patch, condition)` with such a condition (StoreArgumentError). And a key record or
// patch holding a BigInt passed the stores' shared validator, then threw a bare TypeError in RedisStore and
// PostgresStore, which write the record as JSON (MemoryStore kept it). Now each value is described by its type, and
// every store refuses such a record with StoreArgumentError.
import { describe, expect, it } from 'vitest';
import { createApiKey, issueApiKey, MemoryStore, rotateApiKey, type ApiKeyRecord } from '../../src/index.js';
import { thrown } from '../helpers/stores.js';
import { onEveryStore, type KeyStore } from '../helpers/every-store.js';

/** An object that holds itself. */
function cyclic(): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  o['self'] = o;
  return o;
}

const BASE = { prefix: 'tg_', subject: 'svc-bigint', scopes: [], expiresIn: '1d' } as const;

describe('key lifecycle options holding a BigInt or a cycle', () => {
  it('rotateApiKey with a BigInt or cyclic grace is a UsageError naming the type, and the key is not rotated', async () => {
    const store = new MemoryStore();
    const { record } = await createApiKey(store, BASE);
    for (const [grace, type] of [
      [10n, 'bigint'],
      [cyclic(), 'object'],
    ] as const) {
      expect(await thrown(() => rotateApiKey(store, record.id, { grace: grace as never }))).toMatchObject({
        name: 'UsageError',
        code: 'usage.invalid_argument',
        message: `rotateApiKey: grace must be a duration ('24h', '30m', ms) from 0 to 30 days (got ${type})`,
      });
    }
    expect((await store.getApiKeyById(record.id))?.rotatedTo).toBeUndefined();
  });

  it('rotateApiKey with a BigInt expiresIn is an ApiKeyError, not a TypeError', async () => {
    const store = new MemoryStore();
    const { record } = await createApiKey(store, BASE);
    expect(await thrown(() => rotateApiKey(store, record.id, { expiresIn: 10n as never }))).toMatchObject({
      name: 'ApiKeyError',
      code: 'api_key.invalid',
      message: "Invalid issueApiKey options: expiresIn: expected a duration ('90d', '1h', ms) or null (got bigint)",
    });
  });

  it('issueApiKey and createApiKey with a BigInt or cyclic prefix or expiresIn are ApiKeyErrors naming the type', async () => {
    const cases: [() => unknown, string][] = [
      [() => issueApiKey({ ...BASE, prefix: 1n as never }), 'prefix: '],
      [() => issueApiKey({ ...BASE, prefix: cyclic() as never }), 'prefix: '],
      [() => issueApiKey({ ...BASE, expiresIn: 1n as never }), "expiresIn: expected a duration ('90d', '1h', ms) or null (got bigint)"],
      [() => createApiKey(new MemoryStore(), { ...BASE, expiresIn: cyclic() as never }), "expiresIn: expected a duration ('90d', '1h', ms) or null (got object)"],
    ];
    for (const [call, says] of cases) {
      const e = await thrown(call);
      expect(e).toMatchObject({ name: 'ApiKeyError', code: 'api_key.invalid' });
      expect((e as Error).message).toContain(says);
    }
    expect(((await thrown(() => issueApiKey({ ...BASE, prefix: 1n as never }))) as Error).message).toMatch(/\(got bigint\)$/);
  });
});

/** What these cases use of a store (PostgresStore keeps keys and revocations only). */

/** The store-level refusals, for each store. */
function storeCases(name: string, make: () => Promise<KeyStore>) {
  describe(`${name}: API key records and conditions holding a BigInt or a cycle`, () => {
    async function withKey(): Promise<{ store: KeyStore; record: ApiKeyRecord }> {
      const store = await make();
      const { record } = issueApiKey(BASE);
      await store.putApiKey(record);
      return { store, record };
    }

    it('updateApiKey with a BigInt or cyclic condition is a StoreArgumentError, and nothing is written', async () => {
      const { store, record } = await withKey();
      const refusals = [
        [{ unrotatedAndUnrevoked: 1n }, 'got unrotatedAndUnrevoked as a bigint'],
        [cyclic(), 'got the key "self"'],
      ] as const;
      for (const [condition, got] of refusals) {
        expect(await thrown(() => store.updateApiKey?.(record.hash, { name: 'renamed' }, condition as never))).toMatchObject({
          name: 'StoreArgumentError',
          code: 'store.invalid_argument',
          message: `updateApiKey: condition takes only unrotatedAndUnrevoked (a boolean); ${got}`,
        });
      }
      expect((await store.getApiKey(record.hash))?.name).toBeUndefined();
    });

    it('putApiKey and updateApiKey with a BigInt in the record are StoreArgumentErrors, and nothing is written', async () => {
      const { store, record } = await withKey();
      const other = issueApiKey(BASE).record;
      expect(await thrown(() => store.putApiKey({ ...other, metadata: { team: 1n } } as never))).toMatchObject({
        name: 'StoreArgumentError',
        code: 'store.invalid_argument',
        message: 'putApiKey: record.metadata.team must be a JSON value: a string, a finite number, a boolean, null, an array or a plain object (got a bigint)',
      });
      expect(await store.getApiKey(other.hash)).toBeUndefined();
      expect(await thrown(() => store.updateApiKey?.(record.hash, { metadata: { team: 1n } } as never))).toMatchObject({
        name: 'StoreArgumentError',
        code: 'store.invalid_argument',
        message: 'updateApiKey: patch.metadata.team must be a JSON value: a string, a finite number, a boolean, null, an array or a plain object (got a bigint)',
      });
      expect((await store.getApiKey(record.hash))?.metadata).toBeUndefined();
    });
  });
}

onEveryStore('bigint', storeCases);
