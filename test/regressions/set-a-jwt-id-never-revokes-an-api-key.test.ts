// Regression (security review, SET receiver): with a guard of one issuer configuration a JWT's id is its bare jti,
// filed beside API key record ids, so a token-claims-change naming `jti: "key_…"` revoked that API key, even under
// subjectScope 'issuer', which the docs say never reaches API keys. Such a jwt_id is now ignored (audited); with
// several configurations the id is `<name>:<jti>` and cannot collide (set-multi-issuer.test.ts). Only a jti of the
// exact shape issueApiKey gives record ids is ignored: any jti starting `key_` was, so an identity provider whose token
// ids read `key_…` could not revoke them.
import { describe, expect, it } from 'vitest';
import { issueApiKey, MemoryStore, type Guard } from '../../src/index.js';
import { CAEP_EVENTS, createSetReceiver, type SecurityEventRecord, type SetReceiverOptions } from '../../src/receivers/set.js';
import { accessToken, CT, DAY_S, guardOn, IDP, idpKey, NOW, NOW_S, RECEIVER, reasonAt, securityEvent } from '../receivers/set-fixtures.js';

/** `id`: the record's id, when not the one issueApiKey gives (an app's own, a migrated key's). */
async function withApiKey(makeGuard: (store: MemoryStore) => Promise<Guard>, options: (guard: Guard) => Partial<SetReceiverOptions>, id?: string) {
  const store = new MemoryStore();
  const guard = await makeGuard(store);
  const issued = issueApiKey({ prefix: 'sk_', subject: 'svc-billing', scopes: ['read'], now: NOW, expiresIn: '90d' });
  const { key } = issued;
  const record = id === undefined ? issued.record : { ...issued.record, id };
  await store.putApiKey(record);
  const records: SecurityEventRecord[] = [];
  const receiver = createSetReceiver({
    store,
    issuer: IDP,
    audience: RECEIVER,
    keys: [(await idpKey()).jwk],
    clock: () => NOW,
    onEvent: (r) => void records.push(r),
    ...options(guard),
  });
  const naming = (iss: string) => securityEvent({ events: { [CAEP_EVENTS.tokenClaimsChange]: { subject: { format: 'jwt_id', iss, jti: record.id } } } });
  return { guard, key, record, receiver, records, naming };
}

describe('regression: a jwt_id subject never revokes an API key', () => {
  for (const [name, options] of [
    ['with the guard and subjectScope issuer', (guard: Guard) => ({ guard, subjectScope: 'issuer' as const })],
    ['with the guard', (guard: Guard) => ({ guard })],
    ['without a guard (bare jti)', () => ({})],
  ] as const) {
    it(`ignores a jwt_id whose jti is an API key id, ${name}: the key keeps working`, async () => {
      const { guard, key, record, receiver, records, naming } = await withApiKey(guardOn, options);
      expect(await reasonAt(guard, key, NOW_S)).toBe('ok');
      expect((await receiver.receive({ body: await naming(IDP), contentType: CT })).status).toBe(202);
      expect(await reasonAt(guard, key, NOW_S)).toBe('ok');
      expect(records[0]).toMatchObject({ outcome: 'applied', actions: [{ action: 'ignored', detail: expect.stringContaining('API key') }] });
      expect(JSON.stringify(records)).toContain(record.id.slice(0, 12));
    });
  }

  it('revokes a token whose jti only starts with key_: the identity provider asked for it', async () => {
    const { guard, receiver, records } = await withApiKey(guardOn, (guard) => ({ guard }));
    for (const jti of ['key_rotation-2024', `key_${'0'.repeat(31)}`, `key_${'A'.repeat(32)}`]) {
      const token = await accessToken(NOW_S - 60, NOW_S + DAY_S, jti);
      expect(await reasonAt(guard, token, NOW_S)).toBe('ok');
      const event = securityEvent({ jti: `evt-${jti}`, events: { [CAEP_EVENTS.tokenClaimsChange]: { subject: { format: 'jwt_id', iss: IDP, jti } } } });
      expect((await receiver.receive({ body: await event, contentType: CT })).status).toBe(202);
      expect(await reasonAt(guard, token, NOW_S)).toBe('token.revoked');
    }
    expect(records.map((r) => r.actions[0]?.action)).not.toContain('ignored');
  });

  for (const id of ['key_legacy-0001', `key_${'A'.repeat(32)}`, 'svc-billing-key']) {
    it(`ignores a jwt_id naming a stored key under an id of its own (${id}): the store says it is a key`, async () => {
      const { guard, key, receiver, records, naming } = await withApiKey(guardOn, (guard) => ({ guard }), id);
      expect((await receiver.receive({ body: await naming(IDP), contentType: CT })).status).toBe(202);
      expect(await reasonAt(guard, key, NOW_S)).toBe('ok');
      expect(records[0]).toMatchObject({ outcome: 'applied', actions: [{ action: 'ignored', detail: expect.stringContaining('stored API key') }] });
    });
  }
});
