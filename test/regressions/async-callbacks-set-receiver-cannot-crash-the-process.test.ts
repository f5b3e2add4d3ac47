// Regression (same class as the claims predicates and risk signals of bbf09e1): the SET receiver called its
// synchronous `subjectOf` and `clock` options, and a `guard` given as any object's `tokenIdOf` / `subjectIdOf`,
// without looking at a promise they returned. A mapping that needs a lookup (`(s) => users.find(s.email)`) answered
// with a promise: the event was audited as "not mapped", and the promise's rejection (an event without the field the
// mapping reads) was left unhandled, which ends the process under Node's default --unhandled-rejections=throw. A clock
// answering with a promise (or no valid Date) made the delivery reject with a bare TypeError, its own rejection
// unhandled and no audit record; an Invalid Date was a 400 the transmitter would not retry. Now the promise is dropped
// with its rejection handled: the event is ignored and says why; a delivery without a valid time is a 503; an `async`
// subjectOf or clock is a UsageError at creation.
import { createServer } from 'node:http';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../src/index.js';
import { CAEP_EVENTS, createSetReceiver, type SecurityEventRecord, type SetReceiverOptions, type TokenIdSource } from '../../src/receivers/set.js';
import { CT, IDP, NOW, RECEIVER, idpKey, securityEvent } from '../receivers/set-fixtures.js';
import { afterRejectionsAreReported, collectUnhandledRejections } from '../helpers/unhandled.js';

const unhandled = collectUnhandledRejections();

async function receiverWith(extra: Partial<SetReceiverOptions>) {
  const store = new MemoryStore();
  const records: SecurityEventRecord[] = [];
  const { jwk } = await idpKey();
  const receiver = createSetReceiver({ store, issuer: IDP, audience: RECEIVER, keys: [jwk], clock: () => NOW, onEvent: (r) => void records.push(r), ...extra });
  const server = createServer(receiver.node);
  const post = async (body: string) => request(server).post('/security-events').set('content-type', CT).send(body);
  return { store, records, post };
}

/** A session-revoked for a subject named by email only: a mapping reading `email.toLowerCase()` of an opaque one throws. */
const revokedSession = (subject: Record<string, unknown>) => securityEvent({ events: { [CAEP_EVENTS.sessionRevoked]: { subject } } });

describe('regression: SET receiver callbacks that answer with a promise', () => {
  it('a subjectOf returning a rejected promise: 202, the event ignored with why, nothing revoked, no rejection unhandled', async () => {
    const subjectOf = ((s: Record<string, unknown>) =>
      Promise.resolve().then(() => `user:${(s['email'] as string).toLowerCase()}`)) as unknown as SetReceiverOptions['subjectOf'];
    const { store, records, post } = await receiverWith({ subjectOf });
    for (const subject of [
      { format: 'opaque', id: 'x' },
      { format: 'email', email: 'Alice@Example.com' },
    ]) {
      const res = await post(await revokedSession(subject));
      expect(res.status).toBe(202);
    }
    expect(records.map((r) => [r.outcome, r.actions])).toEqual([
      ['applied', [{ type: CAEP_EVENTS.sessionRevoked, action: 'ignored', detail: 'subjectOf returned a promise (it must be synchronous)' }]],
      ['applied', [{ type: CAEP_EVENTS.sessionRevoked, action: 'ignored', detail: 'subjectOf returned a promise (it must be synchronous)' }]],
    ]);
    expect(await store.getRevocation('tok-1', 'user:alice@example.com', NOW.getTime())).toBeUndefined();
    await afterRejectionsAreReported();
    expect(unhandled).toEqual([]);
  });

  it('a clock returning a rejected promise: 503 (the transmitter retries), audited as failed, no rejection unhandled; the retry applies it', async () => {
    let clock: () => unknown = () => Promise.reject(new Error('time service down'));
    const { store, records, post } = await receiverWith({ clock: (() => clock()) as () => Date });
    const set = await securityEvent();
    const failed = await post(set);
    expect([failed.status, failed.headers['retry-after']]).toEqual([503, '5']);
    expect(records.map((r) => [r.outcome, r.description])).toEqual([['failed', "no valid time: the clock (or the delivery's now) gave no valid Date"]]);
    await afterRejectionsAreReported();
    expect(unhandled).toEqual([]);
    clock = () => NOW;
    expect((await post(set)).status).toBe(202);
    expect(await store.getRevocation('tok-1', 'alice', NOW.getTime())).toEqual({ subjectRevokedBefore: NOW.getTime() });
  });

  it('a guard given as any object whose tokenIdOf returns a rejected promise: the jwt_id event is ignored with why, no rejection unhandled', async () => {
    const guard = { tokenIdOf: (() => Promise.reject(new Error('lookup failed'))) as unknown as TokenIdSource['tokenIdOf'] };
    const { records, post } = await receiverWith({ guard });
    const set = await securityEvent({ events: { [CAEP_EVENTS.tokenClaimsChange]: { subject: { format: 'jwt_id', iss: IDP, jti: 'tok-1' } } } });
    expect((await post(set)).status).toBe(202);
    expect(records.map((r) => r.actions)).toEqual([
      [{ type: CAEP_EVENTS.tokenClaimsChange, action: 'ignored', detail: 'guard.tokenIdOf returned a promise (it must be synchronous)' }],
    ]);
    await afterRejectionsAreReported();
    expect(unhandled).toEqual([]);
  });

  it("subjectScope 'issuer' with a guard whose subjectIdOf returns a promise is a UsageError at creation, its rejection handled", async () => {
    const guard = { tokenIdOf: () => undefined, subjectIdOf: (() => Promise.reject(new Error('lookup failed'))) as unknown as TokenIdSource['subjectIdOf'] };
    await expect(receiverWith({ guard, subjectScope: 'issuer' })).rejects.toMatchObject({
      name: 'UsageError',
      message: "createSetReceiver: subjectScope 'issuer': guard.subjectIdOf returned a promise (it must be synchronous)",
    });
    await afterRejectionsAreReported();
    expect(unhandled).toEqual([]);
  });

  it('refuses an async subjectOf and an async clock at creation with a UsageError naming the option', async () => {
    const subjectOf = (async () => 'alice') as unknown as SetReceiverOptions['subjectOf'];
    await expect(receiverWith({ subjectOf })).rejects.toMatchObject({
      name: 'UsageError',
      message: expect.stringMatching(/^createSetReceiver: subjectOf: an async subjectOf/),
    });
    const clock = (async () => NOW) as unknown as () => Date;
    await expect(receiverWith({ clock })).rejects.toMatchObject({ name: 'UsageError', message: expect.stringMatching(/^createSetReceiver: clock: an async clock/) });
  });

  it('a clock returning an Invalid Date or no Date is a 503 too, never a 400 that would make the transmitter drop the SET', async () => {
    for (const wrong of [new Date(Number.NaN), NOW.getTime(), undefined]) {
      const { records, post } = await receiverWith({ clock: (() => wrong) as () => Date });
      const res = await post(await securityEvent());
      expect([res.status, records.map((r) => r.outcome)]).toEqual([503, ['failed']]);
    }
  });
});
