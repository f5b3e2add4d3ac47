// Reads the access token from the Authorization header, and only from there (never query or body).
import type { ReasonCode } from '../leaf/types.js';

/** A token found in a request, with the scheme it came under. */
export interface ExtractedToken {
  token: string;
  scheme: 'bearer' | 'dpop';
}

// RFC 6750 b64token: one credential, no spaces, no commas.
const B64TOKEN_RE = /^[A-Za-z0-9\-._~+/]+=*$/;

// RFC 9110 §5.6.2 tchar: the characters an auth-scheme is made of. Anything else ends the scheme.
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TCHAR[c.charCodeAt(0)] = 1;

/** Length of the auth-scheme at the start of `value` (0 when it does not start with one). */
function schemeLength(value: string): number {
  let i = 0;
  while (i < value.length) {
    const c = value.charCodeAt(i);
    if (c >= 128 || TCHAR[c] === 0) break;
    i++;
  }
  return i;
}

/** Whether `value` starts with `lower` (lower-case ASCII letters), in any letter case. */
function startsWithFolded(value: string, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) if ((value.charCodeAt(i) | 0x20) !== lower.charCodeAt(i)) return false;
  return true;
}

/** `Bearer` in any letter case and one SP: readToken's first test, and all a header needs to hold a Bearer token after it. */
function bearerPrefixed(value: string): boolean {
  return value.charCodeAt(6) === 0x20 && startsWithFolded(value, 'bearer');
}

/**
 * The Authorization header when it is one string and the request carries no DPoP proof (a proof with a Bearer token is
 * refused): the header `JwtVerifier.lookupHeader` may be asked about. Undefined otherwise.
 */
export function bearerCandidate(headers: Record<string, string | string[] | undefined>): string | undefined {
  const value = headers['authorization'];
  return typeof value === 'string' && headers['dpop'] === undefined ? value : undefined;
}

/**
 * Whether `readToken` reads `header` as `token` in the Bearer scheme by its first test (`Bearer`, any letter case, one
 * SP, then the token to the end), whatever else it checks. For a cache that hands out a token's verification to an
 * equal header: such a header reads as nothing but this token.
 */
export function isBearerHeaderOf(header: string, token: string): boolean {
  return header.length === token.length + 7 && bearerPrefixed(header) && header.endsWith(token);
}

/**
 * The scheme (RFC 7235 names are case-insensitive) of a value whose auth-scheme is `end` tchars long, if it is one we
 * take. Compared in place: every request reads one, and slicing and lower-casing it would allocate two strings.
 * (`c | 0x20` is a lower-case letter only when `c` is that letter in either case: nothing else folds onto a letter.)
 */
function schemeOf(value: string, end: number): ExtractedToken['scheme'] | undefined {
  if (end === 6) return startsWithFolded(value, 'bearer') ? 'bearer' : undefined;
  if (end === 4) return startsWithFolded(value, 'dpop') ? 'dpop' : undefined;
  return undefined;
}

/** Whether a token has the RFC 6750 b64token syntax (what `extractToken` checks unless told the token is known). */
export const hasTokenSyntax = (token: string): boolean => B64TOKEN_RE.test(token);

/** Where `readToken` puts the token it found and its scheme (the engine's evaluation, so nothing is allocated for it). */
export interface TokenSlot {
  rawToken: string | undefined;
  scheme: ExtractedToken['scheme'] | undefined;
}

/**
 * Reads the token into `into` (token and scheme), or says why there is none: `token.missing` (no Authorization header, or another
 * scheme such as Basic), `request.malformed` (two headers, two credentials, a Bearer token with a DPoP
 * proof header, anything but exactly one SP between the scheme and the token, whitespace around the
 * value), `token.malformed` (longer than `maxBytes`, checked before anything else is parsed). `known` says
 * whether a token was verified before (the JWT cache), whose syntax then needs no second look.
 */
export function readToken(
  into: TokenSlot,
  headers: Record<string, string | string[] | undefined>,
  maxBytes: number,
  known?: (token: string) => boolean,
): ReasonCode | undefined {
  let value = headers['authorization'];
  if (Array.isArray(value)) {
    if (value.length > 1) return 'request.malformed';
    value = value[0];
  }
  if (value === undefined || value === '') return 'token.missing';
  // Node and the fetch API only ever give strings; a hand-made GuardRequest (a custom adapter) may not.
  if (typeof value !== 'string') return 'request.malformed';
  // Size before anything is parsed; a comma still means several credentials (fetch joins repeated
  // headers with ", "), so an oversized pair reads the same through every adapter.
  if (value.length > maxBytes + 16) return value.includes(',') ? 'request.malformed' : 'token.malformed';
  // RFC 9110 §11.4: credentials = auth-scheme [ 1*SP token68 ]. Only SP separates the two: a tab, a
  // no-break space, CR/LF or a second SP is read differently by proxies, WAFs and servers, so one of
  // them could see a token (or none) where another sees something else. Such a value is refused,
  // never repaired. No whitespace around the value either: HTTP strips OWS before a field value
  // reaches the app, so any left here came from a caller that did not parse HTTP.
  let end = 6;
  let scheme: ExtractedToken['scheme'] | undefined = 'bearer';
  // `Bearer` and one SP, what nearly every request sends, is known without measuring the scheme first.
  if (!bearerPrefixed(value)) {
    end = schemeLength(value);
    if (end === 0) return 'request.malformed';
    scheme = schemeOf(value, end);
    if (scheme === undefined) {
      // A comma means several challenges' credentials in one header: refuse rather than pick one.
      return value.includes(',') ? 'request.malformed' : 'token.missing';
    }
    if (end === value.length || value.charCodeAt(end) !== 0x20) return 'request.malformed';
  }
  const token = value.slice(end + 1);
  // Size first, as documented: an oversized token is `token.malformed` whatever it holds, not sometimes
  // `request.malformed` depending on whether its characters happen to pass the b64token check.
  if (token.length > maxBytes) return 'token.malformed';
  // A token the verifier already accepted passed this check before: `known` skips it on the cached path.
  if (!known?.(token) && !B64TOKEN_RE.test(token)) return 'request.malformed';
  const proof = headers['dpop'];
  if (scheme === 'bearer' && proof !== undefined) return 'request.malformed';
  if (Array.isArray(proof) ? proof.length > 1 || (proof.length === 1 && typeof proof[0] !== 'string') : proof !== undefined && typeof proof !== 'string') {
    return 'request.malformed';
  }
  into.rawToken = token;
  into.scheme = scheme;
  return undefined;
}

/** Extracts the token, or says why there is none (the reasons of `readToken`). */
export function extractToken(headers: Record<string, string | string[] | undefined>, maxBytes: number, known?: (token: string) => boolean): ExtractedToken | ReasonCode {
  const slot: TokenSlot = { rawToken: undefined, scheme: undefined };
  const refused = readToken(slot, headers, maxBytes, known);
  return refused ?? { token: slot.rawToken as string, scheme: slot.scheme as ExtractedToken['scheme'] };
}
