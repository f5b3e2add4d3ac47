// PostgresStore and ids too long for an index entry (2704 bytes): a signed token may carry a `jti` of several
// kilobytes, and such an id could not be revoked. Ids over 2600 bytes are kept as `%#` and their SHA-256, in the
// revocation table and in lifecycle events' token id and subject columns. Rows an earlier release stored as they
// were (PostgreSQL compresses an index entry, so a repetitive long id fitted) are still read, and merged by the
// contract's rules with what this release writes. Real PostgreSQL; the earlier release's rows are written by SQL.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { composeStores, createGuard, MemoryStore } from '../../src/index.js';
import { pgUp, useTestDatabase } from '../helpers/postgres.js';
import { basePolicy } from '../helpers/tokens.js';

const T0 = Date.UTC(2026, 10, 25, 10, 0, 0);

/** Varied text PostgreSQL cannot compress under the index limit. */
function varied(n: number): string {
  let seed = 7;
  let s = '';
  for (let i = 0; i < n; i++) {
    seed = (seed * 48271) % 2147483647;
    s += 'abcdefghijklmnopqrstuvwxyz0123456789'[seed % 36];
  }
  return s;
}

describe.skipIf(!pgUp)('PostgresStore: ids longer than an index entry', () => {
  const db = useTestDatabase('longids');

  it('guard.revoke of a 3 KB jti lands, with its lifecycle event, and refuses that id only', async () => {
    const { store: s } = await db.store();
    const m = new MemoryStore();
    const guard = createGuard(await basePolicy({ store: composeStores({ keys: s, revocations: s, counters: m, claims: m, usage: m }) }));
    const jti = `jti-${varied(3200)}`;
    await guard.revoke(jti, { now: new Date(T0), reason: 'compromised' });
    expect(await s.getRevocation(jti, undefined, T0 + 1)).toEqual({ revokedAt: T0, reason: 'compromised' });
    expect(await s.getRevocation(`${jti}x`, undefined, T0 + 1)).toBeUndefined();
    expect((await s.listLifecycleEvents({ tokenId: jti })).map((e) => [e.type, e.tokenId === jti])).toEqual([['token.revoked', true]]);
    await guard.revokeSubject(`sub-${varied(3000)}`, { now: new Date(T0) });
    expect(await s.listLifecycleEvents({ subject: `sub-${varied(3000)}` })).toHaveLength(1);
  });

  it("reads a long id an earlier release stored as it was, merged with this release's revocation of it", async () => {
    const { store: s, prefix } = await db.store();
    const id = 'a'.repeat(10_000);
    const subject = `${'s'.repeat(6000)}%`;
    // As the earlier release wrote them: the id as it is (`%` escaped), no digest.
    await db.pool.query(`INSERT INTO "${prefix}revocations" (kind, id, time, expires_at, reason) VALUES ('t', $1, $2, NULL, 'old'), ('s', $3, $2, $4, NULL)`, [
      id,
      T0,
      subject.replace('%', '%25'),
      T0 + 60_000,
    ]);
    await db.pool.query(`INSERT INTO "${prefix}events" (id, at, type, token_id, subject, event) VALUES ('ev-old', $1, 'token.revoked', $2, NULL, $3::jsonb)`, [
      T0,
      id,
      JSON.stringify({ id: 'ev-old', at: T0, type: 'token.revoked', tokenId: id, actor: 'admin' }),
    ]);
    expect(await s.getRevocation(id, subject, T0 + 1)).toEqual({ revokedAt: T0, reason: 'old', subjectRevokedBefore: T0 });
    expect((await s.listLifecycleEvents({ tokenId: id })).map((e) => e.id)).toEqual(['ev-old']);
    // This release writes the digest row; the two are read as one: the later cut-off, kept for good.
    await s.revokeSubject(subject, { now: T0 + 5, before: T0 + 5 });
    expect(await s.getRevocation('other', subject, T0 + 120_000)).toEqual({ subjectRevokedBefore: T0 + 5 });
    expect((await s.getRevocation('other', subject, T0 + 10))?.subjectRevokedBefore).toBe(T0 + 5);
  });

  it("keeps a short subject spelled like a long one's digest apart from it, in events as in revocations", async () => {
    const { store: s } = await db.store();
    const long = `sub-${varied(3000)}`;
    const lookalike = `%#${createHash('sha256').update(long).digest('base64url')}`;
    const event = (id: string, subject: string) => ({ id, at: T0, type: 'subject.revoked' as const, subject, actor: 'admin' });
    await s.appendLifecycleEvent(event('e-long', long));
    await s.appendLifecycleEvent(event('e-lookalike', lookalike));
    expect((await s.listLifecycleEvents({ subject: long })).map((e) => e.id)).toEqual(['e-long']);
    expect((await s.listLifecycleEvents({ subject: lookalike })).map((e) => e.id)).toEqual(['e-lookalike']);
    await s.revokeSubject(lookalike, { now: T0, before: T0 });
    expect(await s.getRevocation('tok', long, T0 + 1)).toBeUndefined();
    // A NUL in a query is answered, not a failure.
    expect(await s.listLifecycleEvents({ subject: 'a\u0000b' })).toEqual([]);
  });
});
