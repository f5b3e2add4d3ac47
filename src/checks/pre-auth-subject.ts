// The subject a token claims before it is verified, for `preAuthLimit: { by: 'ip+subject' }`: a JWT's top-level `sub`
// (with its `iss`), read from the payload's JSON text in one bounded pass, never trusted for anything but picking one
// of the sender's own IP's buckets.
import type { CheckContext } from './check.js';

// A claimed subject longer than this counts as none (the IP alone): it bounds the memory one client can make us keep.
const MAX_SUBJECT_CHARS = 256;

// V8 copies a substring shorter than this; a longer one is a view into its parent (see flatCopy in leaf/bounded-map).
const SLICE_COPIED_BELOW = 13;

// base64url, as the payload segment of a compact JWS is written.
const B64URL_RE = /^[A-Za-z0-9_-]+$/;

/** The end (one past the closing quote) of the JSON string that starts at `i`, or -1 when it does not end. */
function stringEnd(s: string, i: number): number {
  for (let j = i + 1; j < s.length; j++) {
    const c = s.charCodeAt(j);
    if (c === 0x5c) j++;
    else if (c === 0x22) return j + 1;
  }
  return -1;
}

/** The JSON string value after the key that ends at `end` (`"key": "value"`): the value and where it ends, or undefined. */
function stringValue(json: string, end: number): { value: string; next: number } | undefined {
  let j = end;
  while (json.charCodeAt(j) <= 0x20 && j < json.length) j++;
  if (json.charCodeAt(j) !== 0x3a) return undefined;
  j++;
  while (json.charCodeAt(j) <= 0x20 && j < json.length) j++;
  if (json.charCodeAt(j) !== 0x22) return undefined;
  const next = stringEnd(json, j);
  if (next === -1 || next - j - 2 > MAX_SUBJECT_CHARS * 6) return undefined;
  const raw = json.slice(j, next);
  // A short value is copied when sliced. A longer one is parsed even without escapes: its slice would be a view into
  // the whole payload (up to maxTokenBytes), kept with the limiter's key; JSON.parse makes a string of its own.
  if (raw.length < SLICE_COPIED_BELOW + 2 && !raw.includes('\\')) return { value: raw.slice(1, -1), next };
  try {
    return { value: JSON.parse(raw) as string, next };
  } catch {
    return undefined;
  }
}

/**
 * The top-level `sub` and `iss` of a JWT payload's JSON text, read in one pass without parsing the document: nested
 * ones (an `act` claim's) are skipped, only string values count. Untrusted input: whatever it yields only picks one
 * of the sender's own IP's buckets, so a forger gains nothing by confusing it.
 */
function topLevelSubject(json: string): { sub: string | undefined; iss: string | undefined } | undefined {
  let depth = 0;
  let sub: string | undefined;
  let iss: string | undefined;
  for (let i = 0; i < json.length; ) {
    const c = json.charCodeAt(i);
    if (c === 0x22) {
      const end = stringEnd(json, i);
      if (end === -1) return undefined;
      const isSub = depth === 1 && end - i === 5 && json.startsWith('"sub"', i);
      if (isSub || (depth === 1 && end - i === 5 && json.startsWith('"iss"', i))) {
        const v = stringValue(json, end);
        if (v === undefined) return undefined;
        if (isSub) sub ??= v.value;
        else iss ??= v.value;
        if (sub !== undefined && iss !== undefined) break;
        i = v.next;
        continue;
      }
      i = end;
      continue;
    }
    if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) depth--;
    i++;
  }
  return { sub, iss };
}

/**
 * The subject the request's token claims, unverified: a JWT's `sub` (with its `iss`, when it has one); undefined for
 * an API key, an opaque or unreadable token, several Authorization headers, or a token longer than `maxTokenBytes`
 * (checked before anything is decoded, so the work per request stays bounded by the policy's own token size cap).
 */
export function claimedSubject(headers: CheckContext['headers'], maxTokenBytes: number): string | undefined {
  const value = headers['authorization'];
  if (typeof value !== 'string' || value.length > maxTokenBytes + 16) return undefined;
  const sp = value.indexOf(' ');
  if (sp === -1) return undefined;
  const scheme = value.slice(0, sp).toLowerCase();
  if (scheme !== 'bearer' && scheme !== 'dpop') return undefined;
  const d1 = value.indexOf('.', sp + 1);
  const d2 = d1 === -1 ? -1 : value.indexOf('.', d1 + 1);
  // A compact JWS has exactly three segments (a JWE has five: its payload is not readable anyway).
  if (d2 === -1 || value.indexOf('.', d2 + 1) !== -1 || d1 === sp + 1) return undefined;
  const payload = value.slice(d1 + 1, d2);
  if (!B64URL_RE.test(payload)) return undefined;
  const claimed = topLevelSubject(Buffer.from(payload, 'base64url').toString('utf8'));
  const sub = claimed?.sub;
  if (sub === undefined || sub === '' || sub.length > MAX_SUBJECT_CHARS) return undefined;
  // With its issuer: two issuers' `alice` (two tenants behind one NAT) are two people, each with its own budget.
  const iss = claimed?.iss;
  return iss === undefined || iss.length > MAX_SUBJECT_CHARS ? sub : `${sub}\u0000${iss}`;
}
