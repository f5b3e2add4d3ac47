// Regression (security review, SET receiver): a SET whose jti was null, "", a number or an object was accepted (the
// receiver cast it to a string), so every `jti: null` SET shared one replay key and each after the first was
// answered as a replay. A jti must now be a non-empty string of at most 256 characters, else 400 invalid_request.
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../src/index.js';
import { createSetReceiver, type SecurityEventRecord } from '../../src/receivers/set.js';
import { CT, IDP, idpKey, NOW, RECEIVER, securityEvent } from '../receivers/set-fixtures.js';

describe('regression: a security event needs a non-empty string jti', () => {
  for (const [name, jti] of [
    ['null', null],
    ['empty', ''],
    ['a number', 12345],
    ['an object', {}],
  ] as const) {
    it(`refuses a SET whose jti is ${name} with 400 invalid_request, revoking nothing`, async () => {
      const store = new MemoryStore();
      const records: SecurityEventRecord[] = [];
      const receiver = createSetReceiver({ store, issuer: IDP, audience: RECEIVER, keys: [(await idpKey()).jwk], clock: () => NOW, onEvent: (r) => void records.push(r) });
      const r = await receiver.receive({ body: await securityEvent({ jti }), contentType: CT });
      expect(r.status).toBe(400);
      expect(JSON.parse(r.body)).toEqual({ err: 'invalid_request', description: expect.stringContaining('jti') });
      expect(store.getRevocation('t', 'alice', NOW.getTime())).toBeUndefined();
      expect(records).toEqual([expect.objectContaining({ outcome: 'refused', error: 'invalid_request', actions: [] })]);
      expect(records[0]).not.toHaveProperty('jti');
    });
  }

  it('bounds a jti at 256 characters: 257 refused, 256 taken', async () => {
    const receiver = createSetReceiver({ store: new MemoryStore(), issuer: IDP, audience: RECEIVER, keys: [(await idpKey()).jwk], clock: () => NOW });
    expect((await receiver.receive({ body: await securityEvent({ jti: 'j'.repeat(257) }), contentType: CT })).status).toBe(400);
    expect((await receiver.receive({ body: await securityEvent({ jti: 'j'.repeat(256) }), contentType: CT })).status).toBe(202);
  });
});
