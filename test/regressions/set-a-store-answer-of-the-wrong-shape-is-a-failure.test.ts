// Regression (security review, SET receiver): a claimOnce answer that was not `true` (1, 'yes', null) was read as
// "claimed before" and answered 400 as a replay, so the transmitter dropped a SET the store never claimed. As the
// store contract says, an answer of the wrong shape is a store failure: 503 (the transmitter retries), audited failed.
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../src/index.js';
import { createSetReceiver, type SecurityEventRecord } from '../../src/receivers/set.js';
import { CT, IDP, idpKey, NOW, RECEIVER, securityEvent, storeWith } from '../receivers/set-fixtures.js';

describe('regression: a claimOnce answer of the wrong shape is a store failure, not a replay', () => {
  for (const answer of [1, 0, 'true', null, undefined, {}]) {
    it(`answers 503 when claimOnce answers ${JSON.stringify(answer) ?? 'undefined'}, and the retry is applied once the store answers true`, async () => {
      const real = new MemoryStore();
      let broken = true;
      const store = storeWith(real, {
        claimOnce: (...args: unknown[]) => (broken ? Promise.resolve(answer) : real.claimOnce(...(args as Parameters<MemoryStore['claimOnce']>))),
      });
      const records: SecurityEventRecord[] = [];
      const receiver = createSetReceiver({ store, issuer: IDP, audience: RECEIVER, keys: [(await idpKey()).jwk], clock: () => NOW, onEvent: (r) => void records.push(r) });
      const set = await securityEvent();
      const first = await receiver.receive({ body: set, contentType: CT });
      expect(first.status).toBe(503);
      expect(first.headers['Retry-After']).toBeDefined();
      broken = false;
      expect((await receiver.receive({ body: set, contentType: CT })).status).toBe(202);
      expect(records.map((r) => r.outcome)).toEqual(['failed', 'applied']);
    });
  }
});
