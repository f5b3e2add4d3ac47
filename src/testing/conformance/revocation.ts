// Conformance of the revocation part of a store: revoke by token id, revoke by subject, and the lookup of both.
import type { Awaitable } from '../../leaf/types.js';
import type { TokenStore } from '../../leaf/store.js';
import { DAY, MINUTE, T0, allTypeErrors, bad, refusals, runConcern, type Concern, type ConformanceOptions, type ConformanceRunner } from './kit.js';

/** The revocation part of a TokenStore: what `revocationConformance` tests. */
export type RevocationStore = Pick<TokenStore, 'revoke' | 'revokeSubject' | 'getRevocation' | 'close'>;

/** The tests of this concern, for `revocationConformance` and `storeConformance`. */
export const revocation: Concern<RevocationStore> = {
  tests({ describe, expect, test }) {
    describe('revocation by token id', () => {
      test('a token never revoked reads as not revoked', async (store) => {
        expect(await store.getRevocation('tok-1', undefined, T0)).toBeUndefined();
        expect(await store.getRevocation('tok-1', 'alice', T0)).toBeUndefined();
      });

      test('revoke without an expiry revokes the token from then on, with the time it was revoked', async (store) => {
        await store.revoke('tok-1', { now: T0 });
        expect(await store.getRevocation('tok-1', undefined, T0)).toEqual({ revokedAt: T0 });
        expect(await store.getRevocation('tok-1', 'alice', T0 + 365 * 86_400_000)).toEqual({ revokedAt: T0 });
      });

      test('revoke with a future expiry holds until then and reads as not revoked from expiresAt on', async (store) => {
        await store.revoke('tok-1', { now: T0, expiresAt: T0 + 10 * MINUTE });
        expect(await store.getRevocation('tok-1', undefined, T0 + 10 * MINUTE - 1)).toEqual({ revokedAt: T0 });
        expect(await store.getRevocation('tok-1', undefined, T0 + 10 * MINUTE)).toBeUndefined();
      });

      test('revoke with an expiry elapsed long ago does not persist', async (store) => {
        await store.revoke('tok-1', { now: T0, expiresAt: T0 - DAY });
        expect(await store.getRevocation('tok-1', undefined, T0 - 2 * DAY)).toBeUndefined();
      });

      // A store may keep one that just elapsed on the revoker's clock (the built-in shared stores do, for readers
      // whose clock is behind): the reader decides with its own now.
      test('revoke with an expiry just elapsed reads as not revoked from expiresAt on', async (store) => {
        await store.revoke('tok-1', { now: T0, expiresAt: T0 });
        await store.revoke('tok-2', { now: T0, expiresAt: T0 - MINUTE });
        expect(await store.getRevocation('tok-1', undefined, T0)).toBeUndefined();
        expect(await store.getRevocation('tok-2', undefined, T0 - MINUTE)).toBeUndefined();
      });

      test('a second revoke with an earlier expiry never shortens the first', async (store) => {
        await store.revoke('tok-1', { now: T0, expiresAt: T0 + 10 * MINUTE });
        await store.revoke('tok-1', { now: T0 + MINUTE, expiresAt: T0 + 2 * MINUTE });
        expect(await store.getRevocation('tok-1', undefined, T0 + 5 * MINUTE)).toEqual({ revokedAt: T0 });
      });

      test('a second revoke with a later expiry extends the first', async (store) => {
        await store.revoke('tok-1', { now: T0, expiresAt: T0 + MINUTE });
        await store.revoke('tok-1', { now: T0, expiresAt: T0 + 10 * MINUTE });
        expect(await store.getRevocation('tok-1', undefined, T0 + 5 * MINUTE)).toEqual({ revokedAt: T0 });
      });

      test('a revoke without an expiry after one with an expiry keeps the token revoked for good', async (store) => {
        await store.revoke('tok-1', { now: T0, expiresAt: T0 + MINUTE });
        await store.revoke('tok-1', { now: T0 });
        expect(await store.getRevocation('tok-1', undefined, T0 + 60 * MINUTE)).toEqual({ revokedAt: T0 });
      });

      test('a revoke after an earlier revocation expired starts afresh, with the new time', async (store) => {
        await store.revoke('tok-1', { now: T0, expiresAt: T0 + MINUTE });
        await store.revoke('tok-1', { now: T0 + 2 * MINUTE, expiresAt: T0 + 10 * MINUTE });
        expect(await store.getRevocation('tok-1', undefined, T0 + 3 * MINUTE)).toEqual({ revokedAt: T0 + 2 * MINUTE });
      });

      test('revoking one token leaves every other token alone', async (store) => {
        await store.revoke('tok-1', { now: T0 });
        expect(await store.getRevocation('tok-2', 'alice', T0)).toBeUndefined();
        expect(await store.getRevocation('tok-10', undefined, T0)).toBeUndefined();
      });

      test('token ids with separators and braces are kept apart', async (store) => {
        await store.revoke('a}:b', { now: T0 });
        await store.revoke('{x}', { now: T0 });
        expect(await store.getRevocation('a', undefined, T0)).toBeUndefined();
        expect(await store.getRevocation('a}', undefined, T0)).toBeUndefined();
        expect(await store.getRevocation('x', undefined, T0)).toBeUndefined();
        expect(await store.getRevocation('a}:b', undefined, T0)).toEqual({ revokedAt: T0 });
        expect(await store.getRevocation('{x}', undefined, T0)).toEqual({ revokedAt: T0 });
      });

      test('ids and subjects of several kilobytes (a long jti in a signed token) are revoked and kept apart', async (store) => {
        // Varied characters, which PostgreSQL cannot compress below its index entry limit (2704 bytes) as it would a repeat.
        let seed = 1;
        const varied = (n: number, alphabet: string): string =>
          Array.from({ length: n }, () => {
            seed = (seed * 48271) % 2147483647;
            return alphabet[seed % alphabet.length];
          }).join('');
        const long = `jti-${varied(3000, 'abcdefghijklmnopqrstuvwxyz0123456789-_')}`;
        const wide = `sub-${varied(2000, '\u00e9\u00e8\u00ea\u00eb\u00e0\u00e2\u00f4\u00fb\u00e7\u00ef')}`;
        await store.revoke(long, { now: T0 });
        await store.revokeSubject(wide, { now: T0, before: T0 });
        expect(await store.getRevocation(long, undefined, T0)).toEqual({ revokedAt: T0 });
        expect(await store.getRevocation(`${long}y`, undefined, T0)).toBeUndefined();
        expect(await store.getRevocation(long.slice(0, -1), undefined, T0)).toBeUndefined();
        expect((await store.getRevocation('tok-1', wide, T0 + 1))?.subjectRevokedBefore).toBe(T0);
        expect(await store.getRevocation('tok-1', `${wide}e`, T0 + 1)).toBeUndefined();
      });

      test('ids and subjects with an astral character (an emoji, a surrogate pair) are revoked as given, apart from their U+FFFD spelling', async (store) => {
        await store.revoke('tok-\ud83d\ude80', { now: T0 });
        await store.revokeSubject('bob \ud83d\ude80', { now: T0, before: T0 });
        expect(await store.getRevocation('tok-\ud83d\ude80', 'bob \ud83d\ude80', T0 + 1)).toEqual({ revokedAt: T0, subjectRevokedBefore: T0 });
        expect(await store.getRevocation('tok-\ufffd', 'bob \ufffd', T0 + 1)).toBeUndefined();
        expect(await store.getRevocation('tok-\ufffd\ufffd', 'bob \ufffd\ufffd', T0 + 1)).toBeUndefined();
      });

      test('a token id spelled like a subject does not revoke that subject', async (store) => {
        await store.revoke('alice', { now: T0 });
        expect(await store.getRevocation('tok-1', 'alice', T0)).toBeUndefined();
        expect(await store.getRevocation('alice', undefined, T0)).toEqual({ revokedAt: T0 });
      });
    });

    describe('revocation by subject', () => {
      test('revokeSubject records the cut-off for every token of that subject', async (store) => {
        await store.revokeSubject('alice', { now: T0, before: T0 });
        expect(await store.getRevocation('tok-1', 'alice', T0)).toEqual({ subjectRevokedBefore: T0 });
        expect(await store.getRevocation('tok-2', 'alice', T0 + MINUTE)).toEqual({ subjectRevokedBefore: T0 });
      });

      test('getRevocation without a subject ignores subject revocations', async (store) => {
        await store.revokeSubject('alice', { now: T0, before: T0 });
        expect(await store.getRevocation('tok-1', undefined, T0)).toBeUndefined();
      });

      test('revoking one subject leaves other subjects alone', async (store) => {
        await store.revokeSubject('alice', { now: T0, before: T0 });
        expect(await store.getRevocation('tok-1', 'bob', T0)).toBeUndefined();
        expect(await store.getRevocation('tok-1', 'alice2', T0)).toBeUndefined();
      });

      test('the latest cut-off wins: an earlier one never shortens it', async (store) => {
        await store.revokeSubject('alice', { now: T0, before: T0 + 1000 });
        await store.revokeSubject('alice', { now: T0, before: T0 - 1000 });
        expect(await store.getRevocation('tok-1', 'alice', T0)).toEqual({ subjectRevokedBefore: T0 + 1000 });
        await store.revokeSubject('alice', { now: T0, before: T0 + 2000 });
        expect(await store.getRevocation('tok-1', 'alice', T0)).toEqual({ subjectRevokedBefore: T0 + 2000 });
      });

      test('a subject revocation with an expiry reads as absent from expiresAt on', async (store) => {
        await store.revokeSubject('alice', { now: T0, before: T0, expiresAt: T0 + MINUTE });
        expect(await store.getRevocation('tok-1', 'alice', T0 + MINUTE - 1)).toEqual({ subjectRevokedBefore: T0 });
        expect(await store.getRevocation('tok-1', 'alice', T0 + MINUTE)).toBeUndefined();
      });

      test('a later subject revocation never shortens the expiry of an earlier one', async (store) => {
        await store.revokeSubject('alice', { now: T0, before: T0, expiresAt: T0 + 10 * MINUTE });
        await store.revokeSubject('alice', { now: T0, before: T0 + 1, expiresAt: T0 + MINUTE });
        expect(await store.getRevocation('tok-1', 'alice', T0 + 5 * MINUTE)).toEqual({ subjectRevokedBefore: T0 + 1 });
      });

      test('a subject revocation after an earlier one expired replaces its cut-off instead of keeping the old one', async (store) => {
        await store.revokeSubject('alice', { now: T0, before: T0 + 10 * MINUTE, expiresAt: T0 + MINUTE });
        await store.revokeSubject('alice', { now: T0 + 2 * MINUTE, before: T0 + 2 * MINUTE, expiresAt: T0 + 60 * MINUTE });
        expect(await store.getRevocation('tok-1', 'alice', T0 + 3 * MINUTE)).toEqual({ subjectRevokedBefore: T0 + 2 * MINUTE });
      });

      test('revokeSubject with an expiry elapsed long ago does not persist', async (store) => {
        await store.revokeSubject('alice', { now: T0, before: T0, expiresAt: T0 - DAY });
        expect(await store.getRevocation('tok-1', 'alice', T0 - 2 * DAY)).toBeUndefined();
      });

      test('revokeSubject with an expiry just elapsed reads as not revoked from expiresAt on', async (store) => {
        await store.revokeSubject('alice', { now: T0, before: T0, expiresAt: T0 });
        expect(await store.getRevocation('tok-1', 'alice', T0)).toBeUndefined();
      });

      test('a revoked token of a revoked subject reports both', async (store) => {
        await store.revoke('tok-1', { now: T0 });
        await store.revokeSubject('alice', { now: T0 + 5, before: T0 + 5 });
        expect(await store.getRevocation('tok-1', 'alice', T0 + 10)).toEqual({ revokedAt: T0, subjectRevokedBefore: T0 + 5 });
      });
    });
  },

  badArguments({ expect, test }) {
    const date = new Date(T0);

    test('revoke without options, without now, or with a Date, NaN or Infinity, or a bad token id (empty, not a string, a lone surrogate)', async (store) => {
      const cases: Record<string, () => unknown> = {
        'no options': () => store.revoke('tok-1', bad(undefined)),
        'null options': () => store.revoke('tok-1', bad(null)),
        'expiresAt without now': () => store.revoke('tok-1', bad({ expiresAt: T0 + MINUTE })),
        'now as a Date': () => store.revoke('tok-1', bad({ now: date })),
        'now as a string': () => store.revoke('tok-1', bad({ now: String(T0) })),
        'now NaN': () => store.revoke('tok-1', { now: Number.NaN }),
        'now Infinity': () => store.revoke('tok-1', { now: Number.POSITIVE_INFINITY }),
        'expiresAt as a Date': () => store.revoke('tok-1', bad({ now: T0, expiresAt: new Date(T0 + MINUTE) })),
        'expiresAt NaN': () => store.revoke('tok-1', { now: T0, expiresAt: Number.NaN }),
        'expiresAt Infinity': () => store.revoke('tok-1', { now: T0, expiresAt: Number.POSITIVE_INFINITY }),
        'an empty token id': () => store.revoke('', { now: T0 }),
        'a token id that is a number': () => store.revoke(bad(42), { now: T0 }),
        // PostgreSQL and Redis would keep a lone surrogate as U+FFFD, filing tok-\ud800, tok-\udc00 and tok-\ufffd as one.
        'a token id with a lone surrogate': () => store.revoke('tok-\ud800', { now: T0 }),
        'a token id with a trail surrogate first': () => store.revoke('tok-\ude80\ud83d', { now: T0 }),
      };
      expect(await refusals(cases)).toEqual(allTypeErrors(cases));
      expect(await store.getRevocation('tok-1', undefined, T0)).toBeUndefined();
      expect(await store.getRevocation('tok-\ufffd', undefined, T0)).toBeUndefined();
      expect(await store.getRevocation('tok-\ufffd\ufffd', undefined, T0)).toBeUndefined();
    });

    test('revokeSubject without before or now, or with Dates, NaN or a bad subject (empty, not a string, a lone surrogate)', async (store) => {
      const cases: Record<string, () => unknown> = {
        'no options': () => store.revokeSubject('alice', bad(undefined)),
        'no before': () => store.revokeSubject('alice', bad({ now: T0 })),
        'no now': () => store.revokeSubject('alice', bad({ before: T0 })),
        'before as a Date': () => store.revokeSubject('alice', bad({ now: T0, before: date })),
        'now as a Date': () => store.revokeSubject('alice', bad({ now: date, before: T0 })),
        'before NaN': () => store.revokeSubject('alice', { now: T0, before: Number.NaN }),
        'expiresAt as a Date': () => store.revokeSubject('alice', bad({ now: T0, before: T0, expiresAt: new Date(T0 + MINUTE) })),
        'expiresAt NaN': () => store.revokeSubject('alice', { now: T0, before: T0, expiresAt: Number.NaN }),
        'an empty subject': () => store.revokeSubject('', { now: T0, before: T0 }),
        'a subject that is not a string': () => store.revokeSubject(bad(['alice']), { now: T0, before: T0 }),
        'a subject with a lone surrogate': () => store.revokeSubject('bob\udfff', { now: T0, before: T0 }),
      };
      expect(await refusals(cases)).toEqual(allTypeErrors(cases));
      expect(await store.getRevocation('tok-1', 'alice', T0)).toBeUndefined();
      expect(await store.getRevocation('tok-1', 'bob\ufffd', T0)).toBeUndefined();
    });

    test('getRevocation with a Date, NaN or missing now, an empty token id, a subject that is not a string, or a lone surrogate', async (store) => {
      const cases: Record<string, () => unknown> = {
        'now as a Date': () => store.getRevocation('tok-1', 'alice', bad(date)),
        'now NaN': () => store.getRevocation('tok-1', 'alice', Number.NaN),
        'now missing': () => store.getRevocation('tok-1', 'alice', bad(undefined)),
        'an empty token id': () => store.getRevocation('', 'alice', T0),
        'a subject that is a number': () => store.getRevocation('tok-1', bad(7), T0),
        // Never written, so never found, yet PostgreSQL and Redis would look up tok-\ufffd: refused, as by every store.
        'a token id with a lone surrogate': () => store.getRevocation('tok-\ud800', undefined, T0),
        'a subject with a lone surrogate': () => store.getRevocation('tok-1', 'bob\udfff', T0),
      };
      expect(await refusals(cases)).toEqual(allTypeErrors(cases));
    });
  },

  failingCalls: (store) => ({
    revoke: () => store.revoke('tok-1', { now: T0 }),
    revokeSubject: () => store.revokeSubject('alice', { now: T0, before: T0 }),
    getRevocation: () => store.getRevocation('tok-1', 'alice', T0),
  }),
};

/**
 * Registers the revocation part of the store conformance suite: a revocation holds until its expiry and never
 * shortens, a subject cut-off only moves later, and ids that look alike stay apart.
 *
 * Exported from `token-guard/testing`.
 */
export function revocationConformance(
  name: string,
  makeStore: () => Awaitable<RevocationStore>,
  runner: ConformanceRunner,
  options: ConformanceOptions<RevocationStore> = {},
): void {
  runConcern(`${name} conforms to the revocation part of TokenStore`, revocation, makeStore, runner, options);
}
