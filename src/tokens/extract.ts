// Reads the access token from the Authorization header, and only from there (never query or body).
import type { ReasonCode } from '../core/types.js';

/** A token found in a request, with the scheme it came under. */
export interface ExtractedToken {
  token: string;
  scheme: 'bearer' | 'dpop';
}

// RFC 6750 b64token: one credential, no spaces, no commas.
const B64TOKEN_RE = /^[A-Za-z0-9\-._~+/]+=*$/;

/**
 * Extracts the token, or says why there is none: `token.missing` (no Authorization header, or another
 * scheme such as Basic), `request.malformed` (two headers, two credentials, a Bearer token with a DPoP
 * proof header), `token.malformed` (longer than `maxBytes`, checked before anything else is parsed).
 */
export function extractToken(
  headers: Record<string, string | string[] | undefined>,
  maxBytes: number,
): ExtractedToken | ReasonCode {
  let value = headers['authorization'];
  if (Array.isArray(value)) {
    if (value.length > 1) return 'request.malformed';
    value = value[0];
  }
  if (value === undefined || value === '') return 'token.missing';
  // Size before anything is parsed; a comma still means several credentials (fetch joins repeated
  // headers with ", "), so an oversized pair reads the same through every adapter.
  if (value.length > maxBytes + 16) return value.includes(',') ? 'request.malformed' : 'token.malformed';
  value = value.trim();
  const space = value.search(/[ \t]/);
  const scheme = (space === -1 ? value : value.slice(0, space)).toLowerCase();
  if (scheme !== 'bearer' && scheme !== 'dpop') {
    // A comma means several challenges' credentials in one header: refuse rather than pick one.
    return value.includes(',') ? 'request.malformed' : 'token.missing';
  }
  if (space === -1) return 'request.malformed';
  const token = value.slice(space + 1).trim();
  // Size first, as documented: an oversized token is `token.malformed` whatever it holds, not sometimes
  // `request.malformed` depending on whether its characters happen to pass the b64token check.
  if (token.length > maxBytes) return 'token.malformed';
  if (!B64TOKEN_RE.test(token)) return 'request.malformed';
  const proof = headers['dpop'];
  if (scheme === 'bearer' && proof !== undefined) return 'request.malformed';
  if (Array.isArray(proof) && proof.length > 1) return 'request.malformed';
  return { token, scheme };
}
