// Regression: since every store refuses a lifecycle event holding a lone UTF-16 surrogate, createApiKey, rotateApiKey
// and revokeApiKey with such an `actor` wrote their change and then failed on its event: a key revoked, issued or its
// successor stored with no event in the audit trail. The actor is now checked first (a UsageError), and nothing is written.
import { describe, expect, it } from 'vitest';
import { createApiKey, MemoryStore, revokeApiKey, rotateApiKey } from '../../src/index.js';
import { NOW } from '../helpers/tokens.js';

const refused = (p: Promise<unknown>) =>
  p.then(
    () => 'written',
    (e: { name?: string; code?: string }) => `${e.name} ${e.code}`,
  );

describe('regression: the key lifecycle refuses an ill-formed actor before writing anything', () => {
  it('createApiKey, rotateApiKey and revokeApiKey leave records and events as they were', async () => {
    const store = new MemoryStore();
    const issued = await createApiKey(store, { prefix: 'tg_', subject: 'svc', scopes: ['a'], expiresIn: '90d', now: NOW });
    const before = { records: await store.listApiKeys('svc'), events: await store.listLifecycleEvents({}) };
    for (const actor of ['ops \ud83d', '\udfffops', 'x\ud800']) {
      expect(await refused(createApiKey(store, { prefix: 'tg_', subject: 'svc', scopes: ['a'], expiresIn: '90d', now: NOW, actor }))).toBe('UsageError usage.invalid_argument');
      expect(await refused(rotateApiKey(store, issued.record.id, { actor, now: NOW }))).toBe('UsageError usage.invalid_argument');
      expect(await refused(revokeApiKey(store, issued.record.id, { actor, now: NOW }))).toBe('UsageError usage.invalid_argument');
    }
    expect({ records: await store.listApiKeys('svc'), events: await store.listLifecycleEvents({}) }).toEqual(before);
    // An emoji (a surrogate pair) is an actor like any other.
    await revokeApiKey(store, issued.record.id, { actor: 'ops \u{1F680}', now: NOW });
    expect((await store.listLifecycleEvents({})).at(-1)).toMatchObject({ type: 'key.revoked', actor: 'ops \u{1F680}' });
  });
});
