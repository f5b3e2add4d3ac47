// Property: the Authorization and DPoP header parsers never throw, and hand out a credential only for
// one header that reads `<scheme> <token68>`.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { extractToken } from '../../src/tokens/extract.js';
import { FUZZ_TIMEOUT, fuzzParams } from './runs.js';

const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;
const REASONS = new Set(['token.missing', 'request.malformed', 'token.malformed']);

const scheme = fc.oneof(
  fc.constantFrom('Bearer', 'bearer', 'BEARER', 'DPoP', 'dpop', 'Dpop', 'Basic', 'Digest', 'Bearer,', 'Bearerx', ''),
  fc.string({ unit: 'grapheme-ascii', maxLength: 8 }),
);
// Every kind of whitespace an attacker can put between or around the parts.
const space = fc.constantFrom('', ' ', '  ', '\t', ' \t', '\t ', '\n', '\r\n', '\u00a0', '\u000b', '\u000c', '\ufeff', '\u2028', '\u3000', ',', ', ');
const token68 = fc.stringMatching(/^[A-Za-z0-9\-._~+/]{1,40}={0,2}$/);
const credential = fc.oneof(token68, fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 20 }), fc.constant(''));
const composed = fc
  .tuple(space, scheme, space, credential, space, fc.option(fc.tuple(fc.constantFrom(',', ' ', ', '), scheme, space, credential)))
  .map(([pre, s, sep, cred, post, more]) => `${pre}${s}${sep}${cred}${post}${more ? more.join('') : ''}`);
const headerValue = fc.oneof({ weight: 4, arbitrary: composed }, { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 80 }) });
const header = fc.oneof(
  { weight: 6, arbitrary: headerValue },
  { weight: 1, arbitrary: fc.constant(undefined) },
  { weight: 2, arbitrary: fc.array(headerValue, { maxLength: 3 }) },
);
const headers = fc.record({ authorization: header, dpop: header, 'x-other': header }, { requiredKeys: [] });
const maxBytes = fc.oneof(fc.constant(8192), fc.integer({ min: 1, max: 64 }));

describe('fuzz: Authorization and DPoP header parsing', () => {
  it(
    'never throws, and returns either a credential under a known scheme or a reason',
    () => {
      fc.assert(
        fc.property(headers, maxBytes, (h, max) => {
          const r = extractToken(h, max);
          if (typeof r === 'string') expect(REASONS.has(r)).toBe(true);
          else {
            expect(['bearer', 'dpop']).toContain(r.scheme);
            expect(r.token).toMatch(TOKEN68);
            expect(r.token.length).toBeLessThanOrEqual(max);
          }
        }),
        fuzzParams(),
      );
    },
    FUZZ_TIMEOUT,
  );

  it(
    'returns a credential only from one header reading "<scheme> <token68>", and never a Bearer token beside a DPoP proof',
    () => {
      fc.assert(
        fc.property(headers, maxBytes, (h, max) => {
          const r = extractToken(h, max);
          if (typeof r === 'string') return;
          const auth = h.authorization;
          // Exactly one Authorization header.
          const values = Array.isArray(auth) ? auth : [auth];
          expect(values).toHaveLength(1);
          const value = values[0] as string;
          // What the parser accepts today: any surrounding whitespace is trimmed (String#trim, so NBSP, BOM,
          // CR/LF too), and the separator is SP or HTAB followed by any whitespace ("Bearer \r\n_" reads "_").
          // RFC 9110 §11.4: exactly `<scheme> SP <token68>`, nothing around it (issue 7 item 4).
          const m = /^(bearer|dpop) ([A-Za-z0-9\-._~+/]+=*)$/i.exec(value);
          expect(m, `accepted ${JSON.stringify(value)}`).not.toBeNull();
          expect((m as RegExpExecArray)[1]?.toLowerCase()).toBe(r.scheme);
          expect((m as RegExpExecArray)[2]).toBe(r.token);
          if (r.scheme === 'bearer') expect(h.dpop).toBeUndefined();
          if (Array.isArray(h.dpop)) expect(h.dpop.length).toBeLessThanOrEqual(1);
        }),
        fuzzParams(),
      );
    },
    FUZZ_TIMEOUT,
  );

  it(
    'reads every well-formed "<scheme> <token68>" header, whatever the case of the scheme',
    () => {
      fc.assert(
        fc.property(fc.constantFrom('Bearer', 'bearer', 'BEARER', 'bEaReR', 'DPoP', 'dpop', 'DPOP'), token68, (s, t) => {
          const r = extractToken(s.toLowerCase() === 'dpop' ? { authorization: `${s} ${t}`, dpop: 'proof' } : { authorization: `${s} ${t}` }, 8192);
          expect(r).toEqual({ token: t, scheme: s.toLowerCase() });
        }),
        fuzzParams(),
      );
    },
    FUZZ_TIMEOUT,
  );

  it(
    'refuses two credentials, in two headers or joined by a comma, as request.malformed',
    () => {
      fc.assert(
        fc.property(fc.constantFrom('Bearer', 'DPoP'), token68, fc.constantFrom('Bearer', 'DPoP', 'Basic'), token68, fc.boolean(), (s1, t1, s2, t2, joined) => {
          const h = joined ? { authorization: `${s1} ${t1}, ${s2} ${t2}` } : { authorization: [`${s1} ${t1}`, `${s2} ${t2}`] };
          expect(extractToken(h, 8192)).toBe('request.malformed');
        }),
        fuzzParams(),
      );
    },
    FUZZ_TIMEOUT,
  );
});
