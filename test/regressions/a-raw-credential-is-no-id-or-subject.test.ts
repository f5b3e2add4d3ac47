// Regression: a credential pasted where an id or subject belongs was taken: `revokeSubject(<raw key or JWT>)` stored
// the secret as a subject (and in its lifecycle event), and the key lifecycle calls (the CLI's `keys show`, `keys
// revoke`, `keys rotate`, `keys list`) echoed it in "no API key with id …" messages, on stderr and in --json.
// `guard.revoke` already refused one. Each is now a UsageError that does not show the value, and nothing is stored.
import { describe, expect, it } from 'vitest';
import { createApiKey, createGuard, findApiKey, listApiKeys, MemoryStore, revokeApiKey, rotateApiKey, type LifecycleEvent } from '../../src/index.js';
import { basePolicy, signToken } from '../helpers/tokens.js';

describe('regression: a raw credential is never an id or a subject', () => {
  it('every lifecycle call and revokeSubject refuse one without echoing it, and store nothing', async () => {
    const store = new MemoryStore();
    const events: LifecycleEvent[] = [];
    const guard = createGuard(await basePolicy({ store, onLifecycle: (e) => void events.push(e) }));
    const { key } = await createApiKey(store, { prefix: 'tg_', subject: 'svc', scopes: [], expiresIn: '1d' });
    const jwt = await signToken({ sub: 'alice' });
    for (const raw of [key, jwt]) {
      const calls: [string, () => Promise<unknown>][] = [
        ['findApiKey', () => findApiKey(store, raw)],
        ['listApiKeys', () => listApiKeys(store, raw)],
        ['revokeApiKey', () => revokeApiKey(store, raw)],
        ['rotateApiKey', () => rotateApiKey(store, raw)],
        ['revokeSubject', () => guard.revokeSubject(raw)],
      ];
      for (const [name, call] of calls) {
        const err = (await call().then(
          () => undefined,
          (e: unknown) => e,
        )) as Error & { help?: string };
        expect([name, err?.name]).toEqual([name, 'UsageError']);
        expect(`${err.message} ${err.help}`).not.toContain(raw);
      }
      expect(await store.getRevocation('t', raw, Date.now())).toBeUndefined();
    }
    expect(events).toEqual([]);
  });
});
