// Regression: PostgresStore could not append a lifecycle event whose subject, token id or actor held a NUL (jsonb
// keeps none), so `guard.revokeSubject` of such a subject (a token issuer's to choose) stored the revocation and then
// rejected. And a query for a subject spelled like another's escape (`al%00ice` is how `al` NUL `ice` is kept) also
// listed that other subject's events an earlier release wrote as they were. Real PostgreSQL.
import { describe, expect, it } from 'vitest';
import { composeStores, createGuard, MemoryStore } from '../../src/index.js';
import { pgUp, useTestDatabase } from '../helpers/postgres.js';
import { basePolicy } from '../helpers/tokens.js';

const T0 = Date.UTC(2026, 11, 3, 10, 0, 0);

describe.skipIf(!pgUp)('PostgresStore lifecycle events of any subject', () => {
  const db = useTestDatabase('eventnul');

  it('guard.revokeSubject and guard.revoke of ids with a NUL land with their events, which read back as given', async () => {
    const { store: s } = await db.store();
    const m = new MemoryStore();
    const guard = createGuard(await basePolicy({ store: composeStores({ keys: s, revocations: s, counters: m, claims: m, usage: m }) }));
    await guard.revokeSubject('al\u0000ice', { now: new Date(T0), actor: 'ops\u0000desk', reason: 'offboarded' });
    await guard.revoke('jti\u0000%1', { now: new Date(T0), reason: 'compromised' });
    expect(await s.getRevocation('t', 'al\u0000ice', T0 + 1)).toMatchObject({ subjectRevokedBefore: T0 });
    const [subjectEvent] = await s.listLifecycleEvents({ subject: 'al\u0000ice' });
    expect(subjectEvent).toMatchObject({ type: 'subject.revoked', subject: 'al\u0000ice', actor: 'ops\u0000desk', reason: 'offboarded' });
    expect((await s.listLifecycleEvents({ tokenId: 'jti\u0000%1' })).map((e) => [e.type, e.tokenId])).toEqual([['token.revoked', 'jti\u0000%1']]);
    expect(await s.listLifecycleEvents({ subject: 'al%00ice' })).toEqual([]);
  });

  it("lists an earlier release's event for its own subject only, not for the subject now kept under that spelling", async () => {
    const { store: s, prefix } = await db.store();
    // As an earlier release wrote it: the subject as it was.
    const old = { id: 'ev-old', at: T0, type: 'subject.revoked', subject: 'al%00ice', actor: 'admin' };
    await db.pool.query(`INSERT INTO "${prefix}events" (id, at, type, token_id, subject, event) VALUES ('ev-old', $1, 'subject.revoked', NULL, 'al%00ice', $2::jsonb)`, [
      T0,
      JSON.stringify(old),
    ]);
    await s.appendLifecycleEvent({ id: 'ev-nul', at: T0 + 1, type: 'subject.revoked', subject: 'al\u0000ice' });
    await s.appendLifecycleEvent({ id: 'ev-new', at: T0 + 2, type: 'subject.revoked', subject: 'al%00ice' });
    expect((await s.listLifecycleEvents({ subject: 'al%00ice' })).map((e) => e.id)).toEqual(['ev-old', 'ev-new']);
    expect((await s.listLifecycleEvents({ subject: 'al\u0000ice' })).map((e) => e.id)).toEqual(['ev-nul']);
    expect((await s.listLifecycleEvents({})).map((e) => e.subject)).toEqual(['al%00ice', 'al\u0000ice', 'al%00ice']);
  });
});
