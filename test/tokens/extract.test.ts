// Reading the token from the Authorization header, through guard.evaluate with hand-built headers.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Guard } from '../../src/index.js';
import { signToken } from '../helpers/tokens.js';
import { expectAllowed, expectRefused, jwtGuard, requestWith } from './fixtures.js';

let guard: Guard;
let token: string;

beforeAll(async () => {
  guard = await jwtGuard();
  token = await signToken({ scope: 'orders:read' });
});

const withAuthorization = (authorization: string | string[] | undefined, extra: Record<string, string | string[]> = {}) =>
  guard.evaluate(requestWith({ authorization, ...extra }));

describe('the Bearer scheme', () => {
  for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEaReR']) {
    it(`reads the token under the scheme spelled "${scheme}"`, async () => {
      expectAllowed(await withAuthorization(`${scheme} ${token}`));
    });
  }

  it('reads the token after exactly one space under the DPoP scheme too (the proof is checked later)', async () => {
    const decision = await withAuthorization(`DPoP ${token}`, { dpop: 'eyJ.e30.c2ln' });
    // No dpop policy: the scheme parses, then the binding check refuses it, never the syntax.
    expect(decision.reason).not.toBe('request.malformed');
    expect(decision.reason).not.toBe('token.missing');
  });

  it('reads a single Authorization header given as a one-element array', async () => {
    expectAllowed(await withAuthorization([`Bearer ${token}`]));
  });

  it('hands a token of valid b64token syntax to verification rather than calling the request malformed', async () => {
    for (const t of ['abc~def+ghi/jkl==', 'a.b.c=', token.replace(/\./g, '~')]) {
      expectRefused(await withAuthorization(`Bearer ${t}`), 'token.malformed');
    }
  });
});

describe('no token', () => {
  it('answers a request without an Authorization header with token.missing and a bare Bearer challenge', async () => {
    const decision = await withAuthorization(undefined);
    expectRefused(decision, 'token.missing');
    expect(decision.headers['WWW-Authenticate']).toBe('Bearer');
  });

  it('treats an empty Authorization header or an empty header list as no token', async () => {
    for (const value of ['', []]) {
      const decision = await withAuthorization(value);
      expectRefused(decision, 'token.missing');
      expect(decision.headers['WWW-Authenticate']).toBe('Bearer');
    }
  });

  it('puts the realm, and still no error, in the challenge when the policy names a realm', async () => {
    const withRealm = await jwtGuard({}, { realm: 'orders' });
    const decision = await withRealm.evaluate(requestWith({}));
    expectRefused(decision, 'token.missing');
    expect(decision.headers['WWW-Authenticate']).toBe('Bearer realm="orders"');
  });

  it('treats credentials under another scheme as no token', async () => {
    // Same-length look-alikes too: the scheme is compared in place, letter case folded for letters only.
    const lookAlikes = [`Bearex ${token}`, `B~arer ${token}`, `^earer ${token}`, `Bear3r ${token}`, `DPo0 ${token}`, `D^OP ${token}`, `Bea ${token}`];
    for (const value of ['Basic YWxpY2U6c2VjcmV0', 'Digest username="alice"', `Token ${token}`, `Bearerx ${token}`, `JWT ${token}`, ...lookAlikes]) {
      const decision = await withAuthorization(value);
      expectRefused(decision, 'token.missing');
      expect(decision.headers['WWW-Authenticate']).toBe('Bearer');
    }
  });

  it('never reads a token from the query string', async () => {
    for (const path of [`/orders/1?access_token=${token}`, `/orders/1?token=${token}&access_token=${token}`]) {
      const decision = await guard.evaluate(requestWith({}, { path }));
      expectRefused(decision, 'token.missing');
    }
  });

  it('never reads a token from another header', async () => {
    const decision = await guard.evaluate(requestWith({ 'x-access-token': token, 'x-api-key': token, cookie: `access_token=${token}` }));
    expectRefused(decision, 'token.missing');
  });
});

describe('malformed credentials', () => {
  // Values are built from the valid token once it exists (it is signed in beforeAll).
  const malformed: [string, (t: string) => string | string[]][] = [
    ['the Bearer scheme with no token', () => 'Bearer'],
    ['the Bearer scheme followed by blanks only', () => 'Bearer    '],
    ['two space-separated tokens', () => 'Bearer a b'],
    ['two Bearer credentials in one header', () => 'Bearer a, Bearer b'],
    ['a token followed by a comma', (t) => `Bearer ${t},`],
    ['a Basic and a Bearer credential in one header', (t) => `Basic YWxpY2U6c2VjcmV0, Bearer ${t}`],
    ['a token with characters outside b64token', () => 'Bearer tok"en'],
    ['a token with a control character', (t) => `Bearer ${t.slice(0, 10)}\u0000${t.slice(10)}`],
    ['two Authorization headers', (t) => [`Bearer ${t}`, `Bearer ${t}`]],
    ['two Authorization headers, one of them empty', (t) => [`Bearer ${t}`, '']],
  ];
  // RFC 9110 §11.4: credentials = auth-scheme [ 1*SP token68 ]; only one SP separates them here, and
  // the value has no whitespace around it (HTTP strips OWS before the guard sees it).
  const separators: [string, string][] = [
    ['a tab', '\t'],
    ['two spaces', '  '],
    ['four spaces', '    '],
    ['a space then a tab', ' \t'],
    ['a tab then a space', '\t '],
    ['a no-break space (U+00A0)', '\u00a0'],
    ['an em space (U+2003)', '\u2003'],
    ['an ideographic space (U+3000)', '\u3000'],
    ['a line separator (U+2028)', '\u2028'],
    ['a vertical tab', '\u000b'],
    ['a form feed', '\f'],
    ['CR LF (an obsolete line fold)', '\r\n '],
    ['a bare LF', '\n'],
    ['a bare CR', '\r'],
    ['a NUL', '\u0000'],
    ['a slash instead of a space', '/'],
  ];
  for (const [what, sep] of separators) {
    for (const scheme of ['Bearer', 'DPoP']) {
      malformed.push([`${what} between ${scheme} and the token`, (t) => `${scheme}${sep}${t}`]);
    }
  }
  malformed.push(
    ['a space before the scheme', (t) => ` Bearer ${t}`],
    ['a tab before the scheme', (t) => `\tBearer ${t}`],
    ['a space after the token', (t) => `Bearer ${t} `],
    ['a tab after the token', (t) => `Bearer ${t}\t`],
    ['a no-break space after the token', (t) => `Bearer ${t}\u00a0`],
    ['a CR LF after the token', (t) => `Bearer ${t}\r\n`],
    ['the Bearer scheme followed by one space only', () => 'Bearer '],
    ['the DPoP scheme with no token', () => 'DPoP'],
    ['a value of whitespace only', () => ' \t '],
  );
  for (const [what, value] of malformed) {
    it(`answers ${what} with 400 request.malformed and error="invalid_request"`, async () => {
      const decision = await withAuthorization(value(token));
      expectRefused(decision, 'request.malformed');
      expect(decision.headers['WWW-Authenticate']).toMatch(/^Bearer error="invalid_request"/);
    });
  }

  it('answers a Bearer token sent with a DPoP proof header with 400 request.malformed', async () => {
    for (const dpop of ['eyJhbGciOiJFUzI1NiJ9.e30.c2ln', '', ['a', 'b']]) {
      expectRefused(await withAuthorization(`Bearer ${token}`, { dpop }), 'request.malformed');
    }
  });

  it('answers a DPoP token sent with two DPoP proof headers with 400 request.malformed', async () => {
    expectRefused(await withAuthorization(`DPoP ${token}`, { dpop: ['eyJ.e30.c2ln', 'eyJ.e30.c2ln'] }), 'request.malformed');
  });
});
