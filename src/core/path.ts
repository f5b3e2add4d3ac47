// Request-path normalisation and rule path globs, compiled once.
//
// Frameworks disagree on how they route an odd path: Express matches the raw, still-encoded path;
// find-my-way (Fastify) decodes first; proxies may resolve dot segments. Any normalisation the guard
// does that a router does not (or the reverse) can send a request past a stricter rule. So instead of
// guessing, the guard refuses every spelling that routers could read two ways:
//   - dot segments (`.`, `..`) in any form, and percent-escapes of unreserved characters (`%2e`, `%61`);
//   - encoded slash or backslash (`%2F`, `%5C`), a literal backslash, control characters, NUL;
//   - malformed escapes (`%zz`), invalid UTF-8, a target that is not origin-form, an overlong path.
// What is left has one reading. Query string and fragment are dropped, repeated slashes are folded,
// and a trailing slash is ignored. Case follows the policy's `caseSensitive` (default: insensitive, as
// Express and @koa/router route).

/** Longest request target the guard will look at (bytes of the raw path). */
export const MAX_PATH_LENGTH = 8192;

const HEX: Record<string, number> = {};
for (let i = 0; i < 16; i++) {
  HEX[i.toString(16)] = i;
  HEX[i.toString(16).toUpperCase()] = i;
}
const utf8 = new TextDecoder('utf-8', { fatal: true });

function isUnreserved(byte: number): boolean {
  return (
    (byte >= 0x30 && byte <= 0x39) || // 0-9
    (byte >= 0x41 && byte <= 0x5a) || // A-Z
    (byte >= 0x61 && byte <= 0x7a) || // a-z
    byte === 0x2d || byte === 0x2e || byte === 0x5f || byte === 0x7e // - . _ ~
  );
}

function percentDecode(path: string): string | null {
  const bytes: number[] = [];
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c !== 0x25) {
      if (c < 0x80) bytes.push(c);
      else {
        // Non-ASCII in a raw target: keep its UTF-8 bytes so the whole string decodes uniformly.
        for (const b of Buffer.from(path[i] as string, 'utf8')) bytes.push(b);
      }
      continue;
    }
    const hi = HEX[path[i + 1] as string];
    const lo = HEX[path[i + 2] as string];
    if (hi === undefined || lo === undefined) return null;
    const byte = hi * 16 + lo;
    if (isUnreserved(byte) || byte === 0x2f || byte === 0x5c || byte < 0x20 || byte === 0x7f) return null;
    bytes.push(byte);
    i += 2;
  }
  try {
    return utf8.decode(Uint8Array.from(bytes));
  } catch {
    return null;
  }
}

/**
 * Normalises a request target for rule matching. Returns `null` for a target that must be refused
 * (400 `request.malformed`). The result starts with `/`, has no query string, no empty, `.` or `..`
 * segments and no trailing slash (the root is `/`).
 */
export function normalizePath(target: string): string | null {
  let end = target.length;
  const q = target.indexOf('?');
  if (q !== -1) end = q;
  const h = target.indexOf('#');
  if (h !== -1 && h < end) end = h;
  if (end > MAX_PATH_LENGTH || target.charCodeAt(0) !== 0x2f) return null;

  let needsDecode = false;
  let needsSegments = false;
  let prev = 0;
  for (let i = 0; i < end; i++) {
    const c = target.charCodeAt(i);
    if (c < 0x20 || c === 0x7f || c === 0x5c) return null;
    if (c === 0x25 || c >= 0x80) needsDecode = true;
    else if (c === 0x2e && (prev === 0x2f || prev === 0x2e)) needsSegments = true;
    else if (c === 0x2f && prev === 0x2f) needsSegments = true;
    prev = c;
  }
  let path = end === target.length ? target : target.slice(0, end);
  if (needsDecode) {
    const decoded = percentDecode(path);
    if (decoded === null) return null;
    path = decoded;
    needsSegments = true;
  }
  if (needsSegments) {
    const out: string[] = [];
    for (const seg of path.split('/')) {
      if (seg === '') continue;
      if (seg === '.' || seg === '..') return null;
      out.push(seg);
    }
    return '/' + out.join('/');
  }
  return path.length > 1 && path.charCodeAt(path.length - 1) === 0x2f ? path.slice(0, -1) : path;
}

const GLOB_SEGMENT_RE = /^[^?#\\%]*$/;

/** Why a rule path glob is invalid, or undefined when it is fine. */
export function checkGlob(glob: string): string | undefined {
  if (!glob.startsWith('/')) return `path glob must start with "/": "${glob}"`;
  for (const seg of glob.split('/')) {
    if (seg === '.' || seg === '..') return `path glob must not contain dot segments: "${glob}"`;
    if (!GLOB_SEGMENT_RE.test(seg)) return `path glob must not contain "?", "#", "%" or "\\": "${glob}"`;
    if (seg.includes('**') && seg !== '**') return `"**" must be a whole segment: "${glob}"`;
  }
  return undefined;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Compiles a path glob to a matcher over normalised paths: `*` is one segment (or part of one),
 * `**` is any number of segments, including none (`/orders/**` matches `/orders` and `/orders/1/items`).
 */
export function compileGlob(glob: string, caseSensitive: boolean): (path: string) => boolean {
  let source = '^';
  for (const seg of glob.split('/')) {
    if (seg === '') continue;
    if (seg === '**') source += '(?:/[^/]+)*';
    else if (seg === '*') source += '/[^/]+';
    else source += '/' + seg.split('*').map(escapeRegExp).join('[^/]*');
  }
  source += '$';
  const re = new RegExp(source, caseSensitive ? '' : 'i');
  // Normalised paths have no trailing slash; the root is '/', which segment-wise is empty.
  return (path) => re.test(path === '/' ? '' : path);
}
