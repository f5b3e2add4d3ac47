// Regression (security review, SET receiver): the receiver's store calls had no timeout, so a store that never
// answered (a hung connection) left every delivery pending forever, and the transmitter never learned to retry. Each
// call is now bounded by `storeTimeout` (default '1s', as the guard's): then 503, audited failed.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MemoryStore, type TokenStore } from '../../src/index.js';
import { CAEP_EVENTS, createSetReceiver, type SecurityEventRecord, type SetResponse } from '../../src/receivers/set.js';
import { CT, IDP, idpKey, NOW, RECEIVER, securityEvent, storeWith } from '../receivers/set-fixtures.js';

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
});
afterEach(() => {
  vi.useRealTimers();
});

/** A store whose `method` never answers, and a promise that settles when it is first called. */
function hangingOn(method: keyof TokenStore) {
  let called!: () => void;
  const reached = new Promise<void>((resolve) => {
    called = resolve;
  });
  const store = storeWith(new MemoryStore(), {
    [method]: () => {
      called();
      return new Promise(() => undefined);
    },
  });
  return { store, reached };
}

/** Delivers `set` and tracks whether the answer came. */
function tracked(p: Promise<SetResponse>) {
  const state: { answer?: SetResponse } = {};
  void p.then((r) => {
    state.answer = r;
  });
  return state;
}

describe('regression: a store call that never answers fails the delivery after storeTimeout', () => {
  for (const [method, events] of [
    ['revokeSubject', undefined],
    ['revoke', { [CAEP_EVENTS.tokenClaimsChange]: { subject: { format: 'jwt_id', iss: IDP, jti: 'tok-1' } } }],
    ['claimOnce', undefined],
  ] as const) {
    it(`answers 503 one second (the default) after ${method} hangs, audited failed`, async () => {
      const { store, reached } = hangingOn(method);
      const records: SecurityEventRecord[] = [];
      const receiver = createSetReceiver({ store, issuer: IDP, audience: RECEIVER, keys: [(await idpKey()).jwk], clock: () => NOW, onEvent: (r) => void records.push(r) });
      const state = tracked(receiver.receive({ body: await securityEvent(events ? { events } : {}), contentType: CT }));
      await reached;
      await vi.advanceTimersByTimeAsync(999);
      expect(state.answer).toBeUndefined();
      await vi.advanceTimersByTimeAsync(1);
      expect(state.answer).toMatchObject({ status: 503, headers: { 'Retry-After': expect.any(String) } });
      expect(records).toEqual([expect.objectContaining({ outcome: 'failed' })]);
    });
  }

  it('takes its own storeTimeout', async () => {
    const { store, reached } = hangingOn('revokeSubject');
    const receiver = createSetReceiver({ store, issuer: IDP, audience: RECEIVER, keys: [(await idpKey()).jwk], clock: () => NOW, storeTimeout: '250ms' });
    const state = tracked(receiver.receive({ body: await securityEvent(), contentType: CT }));
    await reached;
    await vi.advanceTimersByTimeAsync(249);
    expect(state.answer).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(state.answer?.status).toBe(503);
  });
});
