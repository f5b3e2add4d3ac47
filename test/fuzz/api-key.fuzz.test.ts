// Properties of API-key parsing: every issued key parses; a one-character typo never does; nothing throws.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MemoryStore, createGuard, issueApiKey, parseApiKey } from '../../src/index.js';
import { wrapStore } from '../helpers/stores.js';
import { NOW } from '../helpers/tokens.js';
import { FUZZ_TIMEOUT, fuzzParams } from './runs.js';

const prefix = fc.stringMatching(/^[A-Za-z][A-Za-z0-9]{0,15}_$/);
const issue = (p: string) => issueApiKey({ prefix: p, subject: 'svc', scopes: ['orders:read'], expiresIn: '1d', now: NOW }).key;
// Replacement characters: every base62 symbol, the separator, and a few that must never pass.
const replacement = fc.oneof(
  fc.constantFrom(...'0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-=+/. \u0000é'),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
);

/** A one-character change: a substitution, or a swap of two neighbouring different characters. */
const typo = (key: string) =>
  fc
    .oneof(
      fc.tuple(fc.nat(key.length - 1), replacement).map(([i, c]) => key.slice(0, i) + c + key.slice(i + 1)),
      fc.nat(key.length - 2).map((i) => key.slice(0, i) + key[i + 1] + key[i] + key.slice(i + 2)),
    )
    .filter((k) => k !== key);

describe('fuzz: API-key parsing', () => {
  it(
    'parses every issued key, with its prefix given or found',
    () => {
      fc.assert(
        fc.property(prefix, (p) => {
          const key = issue(p);
          const parsed = parseApiKey(key, p);
          expect(parsed).not.toBeNull();
          expect(parseApiKey(key)).toEqual(parsed);
          expect(`${parsed?.prefix}${parsed?.body}${parsed?.checksum}`).toBe(key);
        }),
        fuzzParams(),
      );
    },
    FUZZ_TIMEOUT,
  );

  it(
    'refuses every key with one character changed or two neighbours swapped',
    () => {
      fc.assert(
        fc.property(
          prefix.chain((p) => {
            const key = issue(p);
            return fc.tuple(fc.constant(p), fc.constant(key), typo(key));
          }),
          ([p, key, bad]) => {
            expect(parseApiKey(bad, p), `${key} → ${bad}`).toBeNull();
            expect(parseApiKey(bad), `${key} → ${bad}`).toBeNull();
          },
        ),
        fuzzParams(),
      );
    },
    FUZZ_TIMEOUT,
  );

  it(
    'never throws on any string',
    () => {
      fc.assert(
        fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 300 }), fc.stringMatching(/^[A-Za-z0-9_]{0,80}$/)), fc.option(prefix), (s, p) => {
          const parsed = parseApiKey(s, p ?? undefined);
          if (parsed) expect(`${parsed.prefix}${parsed.body}${parsed.checksum}`).toBe(s);
        }),
        fuzzParams(),
      );
    },
    FUZZ_TIMEOUT,
  );

  it(
    'answers a mistyped key through the guard with 401 token.malformed and no store call',
    async () => {
      const memory = new MemoryStore();
      let calls = 0;
      // Counts every store method the guard may call for a key.
      const store = wrapStore(memory, (_method, call) => {
        calls++;
        return call();
      });
      const guard = createGuard({ apiKeys: { prefix: 'tg_' }, store, clock: () => NOW, rules: [{ path: '/**', scopes: ['orders:read'] }] });
      const issued = issueApiKey({ prefix: 'tg_', subject: 'svc', scopes: ['orders:read'], expiresIn: '1d', now: NOW });
      await memory.putApiKey(issued.record);
      const request = (key: string) => guard.evaluate({ method: 'GET', path: '/orders', headers: { authorization: `Bearer ${key}` }, remoteAddress: '192.0.2.1', now: NOW });
      expect((await request(issued.key)).reason).toBe('ok');
      await fc.assert(
        fc.asyncProperty(
          typo(issued.key).filter((k) => k.startsWith('tg_') && /^[A-Za-z0-9_]+$/.test(k)),
          async (bad) => {
            calls = 0;
            const d = await request(bad);
            expect([d.status, d.reason, calls], bad).toEqual([401, 'token.malformed', 0]);
          },
        ),
        fuzzParams(),
      );
    },
    FUZZ_TIMEOUT,
  );
});
