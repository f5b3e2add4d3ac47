// Regression: an API key revoked through the revocation list (`guard.revoke(keyId)`, the CLI's `revoke token key_…`
// that docs/cli.md recommends, or `revokeSubject` of its subject after it was made) is refused by every request, but
// its record did not say so: `findApiKey` / `listApiKeys` (the CLI's `keys show` / `keys list`) showed it `active`,
// and `rotateApiKey` issued a working successor for it, a way back in for a compromised key or an offboarded subject.
// Then (second review) a key made within the guard's clock tolerance after a `revokeSubject` was still shown active and
// rotated, though the guard, which reads its creation that much earlier, refuses it.
import { describe, expect, it } from 'vitest';
import { createApiKey, createGuard, findApiKey, listApiKeys, MemoryStore, rotateApiKey } from '../../src/index.js';
import { basePolicy, NOW } from '../helpers/tokens.js';

const T = NOW.getTime();
const at = (ms: number) => new Date(T + ms);

async function setUp() {
  const store = new MemoryStore();
  const guard = createGuard(await basePolicy({ store }));
  const key = await createApiKey(store, { prefix: 'tg_', subject: 'svc-x', scopes: ['orders:read'], expiresIn: '30d', now: at(0) });
  return { store, guard, key };
}

describe('regression: a key refused by the revocation list', () => {
  it('revoked by id: shown revoked with its reason, and not rotated', async () => {
    const { store, guard, key } = await setUp();
    await guard.revoke(key.record.id, { now: at(1000), reason: 'compromised' });
    expect(await findApiKey(store, key.record.id, { now: at(2000) })).toMatchObject({ state: 'revoked', revocationReason: 'compromised', revokedAt: at(1000) });
    expect((await listApiKeys(store, 'svc-x', { now: at(2000) })).map((k) => k.state)).toEqual(['revoked']);
    const err = await rotateApiKey(store, key.record.id, { now: at(2000) }).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'ApiKeyStateError', code: 'api_key.revoked' });
    expect(await listApiKeys(store, 'svc-x', { now: at(2000) })).toHaveLength(1);
  });

  it('revoked by subject: keys made before it, or within the clock tolerance after it, are shown revoked and not rotated; a later one is active', async () => {
    const { store, guard, key } = await setUp();
    await guard.revokeSubject('svc-x', { now: at(1000), reason: 'offboarded' });
    // 4 s after the cut-off: inside the guard's default 5 s tolerance, so every request refuses it (an issuer's clock
    // running that much fast must not mint tokens that look newer than the revocation).
    const within = await createApiKey(store, { prefix: 'tg_', subject: 'svc-x', scopes: ['orders:read'], expiresIn: '30d', now: at(5000) });
    const later = await createApiKey(store, { prefix: 'tg_', subject: 'svc-x', scopes: ['orders:read'], expiresIn: '30d', now: at(7000) });
    const refused = async (k: string) =>
      (await guard.evaluate({ method: 'GET', path: '/orders/1', headers: { authorization: `Bearer ${k}` }, remoteAddress: '127.0.0.1', now: at(8000) })).reason;
    expect([await refused(within.key), await refused(later.key)]).toEqual(['token.revoked', 'ok']);
    const shown = await listApiKeys(store, 'svc-x', { now: at(8000) });
    expect(shown.map((k) => [k.id, k.state, k.revocationReason])).toEqual([
      [later.record.id, 'active', undefined],
      [within.record.id, 'revoked', 'offboarded'],
      [key.record.id, 'revoked', 'offboarded'],
    ]);
    expect(await findApiKey(store, within.record.id, { now: at(8000) })).toMatchObject({ state: 'revoked', revokedAt: at(1000) });
    for (const id of [key.record.id, within.record.id]) {
      expect(await rotateApiKey(store, id, { now: at(8000) }).catch((e: unknown) => e)).toMatchObject({ code: 'api_key.revoked' });
    }
    expect((await rotateApiKey(store, later.record.id, { now: at(8000) })).previous.state).toBe('revoked');
  });
});
