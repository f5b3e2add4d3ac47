// Request-path normalisation and rule path globs, compiled once.
//
// Frameworks disagree on how they route an odd path: Express matches the raw, still-encoded path;
// find-my-way (Fastify) decodes first; proxies may resolve dot segments. Any normalisation the guard
// does that a router does not (or the reverse) can send a request past a stricter rule. So instead of
// guessing, the guard refuses every spelling that routers could read two ways:
//   - dot segments (`.`, `..`) in any form, and percent-escapes of unreserved characters (`%2e`, `%61`);
//   - encoded slash or backslash (`%2F`, `%5C`), a literal backslash, control characters, NUL;
//   - a raw space or any raw non-ASCII character (a request target is ASCII: clients percent-encode). HTTP/1 parsers
//     refuse them, but an HTTP/2 `:path` may carry them, and Node's legacy url.parse (parseurl's fallback, so Koa's
//     and Express's `req.path`) trims a raw space, U+00A0 or U+FEFF at the ends: `/admin` NBSP routed as `/admin`;
//   - malformed escapes (`%zz`), invalid UTF-8, a target that is not origin-form, an overlong path.
// What is left has one reading. Query string and fragment are dropped, repeated slashes are folded,
// and a trailing slash is ignored. Case follows the policy's `caseSensitive` (default: insensitive, as
// Express and @koa/router route); letters that String#toLowerCase folds but a `/i` regex does not are refused.

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
    byte === 0x2d ||
    byte === 0x2e ||
    byte === 0x5f ||
    byte === 0x7e // - . _ ~
  );
}

function percentDecode(path: string): string | null {
  const bytes: number[] = [];
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c !== 0x25) {
      // ASCII only: normalizePath refused anything else.
      bytes.push(c);
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

// Every character whose String#toLowerCase differs from what a non-Unicode `/i` regex folds it to: U+0130
// and U+212A (to ASCII 'i̇' and 'k'), ϴ, ẞ, the Greek capitals with prosgegrammeni, OHM and ANGSTROM SIGN,
// and astral capitals (Deseret, Osage, Adlam, …), which a `/i` regex without `u` never folds.
const LOWER_ONLY_FOLDS_RE =
  /[\u0130\u03F4\u1E9E\u1F88-\u1F8F\u1F98-\u1F9F\u1FA8-\u1FAF\u1FBC\u1FCC\u1FFC\u2126\u212A\u212B]|(?=\p{Changes_When_Lowercased})[\u{10000}-\u{10FFFF}]/u;

/**
 * Normalises a request target for rule matching. Returns `null` for a target that must be refused
 * (400 `request.malformed`). The result starts with `/`, has no query string, no empty, `.` or `..`
 * segments and no trailing slash (the root is `/`).
 */
export function normalizePath(target: string): string | null {
  if (target.charCodeAt(0) !== 0x2f) return null;
  // One pass finds the end of the path (`?` or `#`) and what it needs, and stops past the longest path accepted:
  // no indexOf over a long query string first.
  let end = target.length;
  let needsDecode = false;
  let needsSegments = false;
  let prev = 0;
  for (let i = 0; i < end; i++) {
    const c = target.charCodeAt(i);
    if (c === 0x3f || c === 0x23) {
      end = i;
      break;
    }
    if (i === MAX_PATH_LENGTH || c <= 0x20 || c >= 0x7f || c === 0x5c) return null;
    if (c === 0x25) needsDecode = true;
    else if (c === 0x2e && (prev === 0x2f || prev === 0x2e)) needsSegments = true;
    else if (c === 0x2f && prev === 0x2f) needsSegments = true;
    prev = c;
  }
  let path = end === target.length ? target : target.slice(0, end);
  if (needsDecode) {
    const decoded = percentDecode(path);
    // Letters that String#toLowerCase (which routers such as find-my-way use) folds but a case-insensitive
    // regex does not: one path, two readings.
    if (decoded === null || LOWER_ONLY_FOLDS_RE.test(decoded)) return null;
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

// Rule paths are globs over the decoded path, written with RFC 3986 path characters: letters, digits,
// `-._~!&',;=@`, `:` inside a segment (`/v1/things:batchGet`), non-ASCII letters, and `*`/`**`.
// Router syntax would be matched literally and leave the real route to a later, laxer rule, so it is
// refused: `:id` at a segment start (Express, Koa, Fastify parameters), braces (`{id}`, `{*rest}`),
// a whole-segment `*name` (Express 5 named wildcard), and regex or path-to-regexp characters
// `( ) [ ] | ^ $ + \`. `+`, `(`, `)` and `$` are legal in URLs but are syntax in path-to-regexp
// (Express, @koa/router) or find-my-way, and a literal one is rare: write `*` in its place.
const PARAM_RE = /^:[A-Za-z_$]/;
const NAMED_WILDCARD_RE = /^\*[A-Za-z_$][\w$]*$/;

/**
 * What is wrong with one glob segment. `whole`: the segment stands for a route parameter, to be replaced
 * by `*` (or `**` when `anyDepth`); otherwise `repair` is the segment with the offending characters fixed.
 */
interface SegmentProblem {
  message: string;
  whole: boolean;
  anyDepth: boolean;
  repair: string;
}

function segmentProblem(seg: string): SegmentProblem | undefined {
  const whole = (message: string, anyDepth: boolean): SegmentProblem => ({ message, whole: true, anyDepth, repair: anyDepth ? '**' : '*' });
  const inside = (message: string, repair: string): SegmentProblem => ({ message, whole: false, anyDepth: false, repair });
  if (PARAM_RE.test(seg)) return whole(`"${seg}" is a route parameter (Express, Koa and Fastify syntax), which a rule path would match literally`, /[*+]$/.test(seg));
  if (seg.includes('{') || seg.includes('}')) {
    return whole(`"${seg}" is router syntax (path-to-regexp or OpenAPI braces), which a rule path would match literally`, seg.includes('{*'));
  }
  if (NAMED_WILDCARD_RE.test(seg)) return whole(`"${seg}" is a named wildcard (Express 5 syntax), but in a rule path it means one segment ending in "${seg.slice(1)}"`, true);
  if (seg.includes('**') && seg !== '**') return whole(`"**" must be a whole segment (got "${seg}")`, true);
  if (seg.includes('|')) {
    const alternatives = seg.replace(/^\((.*)\)$/, '$1').split('|');
    const each = alternatives.every((a) => a !== '' && !segmentProblem(a)) ? ` (${alternatives.map((a) => `"${a}"`).join(', ')})` : '';
    return whole(`"${seg}" is a regular-expression alternative, which a rule path would match literally: write one rule per alternative${each}, or`, false);
  }
  for (let i = 0; i < seg.length; i++) {
    const ch = seg[i] as string;
    const c = seg.charCodeAt(i);
    if (ch === '?') return inside('"?" starts a query string or marks an optional router parameter, and rule paths match the path alone', seg.slice(0, i));
    if (ch === '#') return inside('"#" starts a fragment, which is never sent to the server', seg.slice(0, i));
    if (ch === '%') {
      let decoded = '*';
      try {
        decoded = decodeURIComponent(seg);
      } catch {
        // Not decodable: suggest a wildcard.
      }
      return inside('rule paths match the decoded path: write the characters themselves, not percent-escapes', decoded);
    }
    if (c <= 0x20 || c === 0x7f || (c >= 0x80 && c <= 0x9f)) {
      return inside(
        'whitespace and control characters are not part of a request path as written (a space arrives as %20)',
        seg.trim().replace(/[\s\x00-\x1f\x7f-\x9f]+/g, '*'),
      );
    }
    if (ch === '^' || ch === '$' || ch === '\\') {
      return inside(`"${ch}" is regular-expression syntax, which a rule path would match literally (rule paths always match the whole path)`, seg.replace(/[$^\\]/g, ''));
    }
    if (ch === '(' || ch === ')' || ch === '[' || ch === ']' || ch === '+') {
      return inside(
        `"${ch}" is regular-expression or router syntax (path-to-regexp, find-my-way), which a rule path would match literally; a literal "${ch}" is matched with "*"`,
        seg.replace(/\[[^\]]*\]?|[()[\]+]+/g, '*').replace(/\*+/g, '*'),
      );
    }
    if (ch === '"' || ch === '<' || ch === '>' || ch === '`') return inside(`"${ch}" is not a URL path character`, seg.replace(/["<>`]+/g, '*').replace(/\*+/g, '*'));
  }
  return undefined;
}

/**
 * Why a rule path glob is invalid, or undefined when it is fine. The message says what to write
 * instead, e.g. for `/orders/:id`: `use /orders/* for one segment, /orders/** for any depth`.
 */
export function checkGlob(glob: string): string | undefined {
  if (!glob.startsWith('/')) return `path glob must start with "/": "${glob}"`;
  const segs = glob.split('/');
  if (segs.some((seg) => seg === '.' || seg === '..')) return `path glob must not contain dot segments: "${glob}"`;
  const brace = glob.search(/[{}]/);
  if (brace !== -1) {
    // A brace group may span segments (`/users{/:id}`): what comes before it is the literal part.
    const close = glob.indexOf('}', brace);
    const group = glob.slice(brace, close === -1 ? undefined : close + 1);
    const base = glob.slice(0, brace).replace(/\/[^/]*$/, (last) => (last === '/' ? '' : last));
    const rest = close === -1 ? '' : glob.slice(close + 1);
    const oneSegment = `${base}/*${rest}`;
    const one = checkGlob(oneSegment) === undefined ? `${oneSegment} for one segment` : 'a "*" segment for one segment';
    const any = `${base}/** for any depth`;
    const fix = group.startsWith('{*') || group.startsWith('{/*') ? `${any}, ${one}` : `${one}, ${any}`;
    return `"${group}" is router syntax (path-to-regexp or OpenAPI braces), which a rule path would match literally: use ${fix} (in "${glob}")`;
  }
  let first = -1;
  let problem: SegmentProblem | undefined;
  const fixed = segs.map((seg, i) => {
    const p = segmentProblem(seg);
    if (p && !problem) {
      first = i;
      problem = p;
    }
    return p ? p.repair : seg;
  });
  if (!problem) return undefined;
  const valid = (g: string) => g.startsWith('/') && segs.length > 0 && !g.split('/').some((seg) => seg === '.' || seg === '..' || segmentProblem(seg));
  let fix: string;
  if (problem.whole) {
    const oneSegment = fixed.map((seg, i) => (i === first ? '*' : seg)).join('/');
    const anyDepth = `${segs.slice(0, first).join('/')}/**`;
    fix = problem.anyDepth ? `use ${anyDepth} for any depth, ${oneSegment} for one segment` : `use ${oneSegment} for one segment, ${anyDepth} for any depth`;
  } else {
    const repaired = fixed.join('/') || '/';
    fix = valid(repaired) ? `write ${repaired}` : 'use "*" where a segment varies and "**" for any depth';
  }
  return `${problem.message}${problem.message.endsWith(', or') ? ' ' : ': '}${fix} (in "${glob}")`;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const LOWER_ONLY_FOLDS_GLOBAL_RE = new RegExp(LOWER_ONLY_FOLDS_RE.source, 'gu');

/**
 * A case-insensitive glob with the letters only String#toLowerCase folds (OHM SIGN, ϴ, …) lower-cased as a
 * router does, so `/Ω/**` guards `/ω` as find-my-way routes it there (such letters in a path are refused).
 */
function foldGlob(glob: string, caseSensitive: boolean): string {
  return caseSensitive ? glob : glob.replace(LOWER_ONLY_FOLDS_GLOBAL_RE, (c) => c.toLowerCase());
}

/** Matches one path segment. */
type SegmentMatcher = (segment: string) => boolean;

// No backtracking anywhere: rules are matched before any token is checked, so a glob like
// `/img/*-*-*.png` compiled to a regex would let an anonymous 8 KB path block the event loop for minutes.
// Literal pieces are matched with sticky (or global, for the leftmost search) regexes only so that
// case-insensitive rules fold case exactly as the `i` flag does.
function compileSegment(seg: string, caseSensitive: boolean): SegmentMatcher {
  const parts = seg.split('*');
  const flags = caseSensitive ? '' : 'i';
  const sticky = parts.map((l) => (l === '' ? undefined : new RegExp(escapeRegExp(l), `${flags}y`)));
  const search = parts.map((l) => (l === '' ? undefined : new RegExp(escapeRegExp(l), `${flags}g`)));
  const at = (i: number, s: string, pos: number): boolean => {
    const re = sticky[i] as RegExp;
    re.lastIndex = pos;
    return re.test(s);
  };
  if (parts.length === 1) return (s) => s.length === seg.length && at(0, s, 0);
  const last = parts.length - 1;
  const headLength = (parts[0] as string).length;
  const tailLength = (parts[last] as string).length;
  return (s) => {
    let pos = 0;
    if (sticky[0]) {
      if (!at(0, s, 0)) return false;
      pos = headLength;
    }
    let end = s.length;
    if (sticky[last]) {
      end = s.length - tailLength;
      if (end < pos || !at(last, s, end)) return false;
    }
    // Middle pieces between '*'s: the leftmost placement of each is never worse than a later one.
    for (let i = 1; i < last; i++) {
      const re = search[i];
      if (!re) continue;
      re.lastIndex = pos;
      const m = re.exec(s);
      const length = (parts[i] as string).length;
      if (!m || m.index + length > end) return false;
      pos = m.index + length;
    }
    return true;
  };
}

/** The segments of a normalised path (the root has none). */
export function pathSegments(path: string): string[] {
  return path === '/' ? [] : path.slice(1).split('/');
}

/**
 * Compiles a path glob to a matcher over the segments of a normalised path: `*` is one segment (or part
 * of one), `**` is any number of segments, including none (`/orders/**` matches `/orders` and
 * `/orders/1/items`). Linear in the path, whatever the glob.
 */
export function compileGlobSegments(glob: string, caseSensitive: boolean): (segments: readonly string[]) => boolean {
  // Runs of fixed-length segment matchers, separated by '**'.
  const blocks: SegmentMatcher[][] = [[]];
  for (const seg of foldGlob(glob, caseSensitive).split('/')) {
    if (seg === '') continue;
    if (seg === '**') blocks.push([]);
    else (blocks[blocks.length - 1] as SegmentMatcher[]).push(compileSegment(seg, caseSensitive));
  }
  const first = blocks[0] as SegmentMatcher[];
  const lastBlock = blocks[blocks.length - 1] as SegmentMatcher[];
  const fits = (segs: readonly string[], block: SegmentMatcher[], at: number): boolean => {
    for (let i = 0; i < block.length; i++) if (!(block[i] as SegmentMatcher)(segs[at + i] as string)) return false;
    return true;
  };
  return (segs) => {
    if (blocks.length === 1) return segs.length === first.length && fits(segs, first, 0);
    const lastAt = segs.length - lastBlock.length;
    if (first.length > lastAt || !fits(segs, first, 0) || !fits(segs, lastBlock, lastAt)) return false;
    let pos = first.length;
    // Blocks between '**'s: again, the leftmost placement of each is never worse than a later one.
    for (let b = 1; b < blocks.length - 1; b++) {
      const block = blocks[b] as SegmentMatcher[];
      let found = -1;
      for (let at = pos; at + block.length <= lastAt; at++) {
        if (fits(segs, block, at)) {
          found = at;
          break;
        }
      }
      if (found === -1) return false;
      pos = found + block.length;
    }
    return true;
  };
}

/**
 * A rule path matcher: takes the normalised path, and its segments on demand (split at most once per
 * request, and only if some glob needs them).
 */
export type PathMatcher = (path: string, segments: () => readonly string[]) => boolean;

const PRINTABLE_ASCII_RE = /^[\x20-\x7e]*$/;

/**
 * `text` (printable ASCII) as the whole path, or with `prefix` as a leading run of whole segments, compared in place:
 * every rule tried on every request runs this, and a regex test costs a call into V8's regex builtin. Without
 * `caseSensitive` a letter matches itself in either case and nothing else does, which is what the `i` flag (without
 * `u`) does for ASCII: it never folds a non-ASCII character onto one.
 */
function literalMatcher(text: string, prefix: boolean, caseSensitive: boolean): PathMatcher {
  const n = text.length;
  // Per character, what it must equal once OR-ed with its mask: 0x20 on a letter read in either case (`c | 0x20` is a
  // lower-case letter only when c is that letter in either case), 0 elsewhere.
  const expected = new Uint16Array(n);
  const mask = new Uint16Array(n);
  const folded = caseSensitive ? text : text.toLowerCase();
  for (let i = 0; i < n; i++) {
    const c = folded.charCodeAt(i);
    expected[i] = c;
    mask[i] = !caseSensitive && c >= 0x61 && c <= 0x7a ? 0x20 : 0;
  }
  return (path) => {
    if (path.length !== n && !(prefix && path.length > n && path.charCodeAt(n) === 0x2f)) return false;
    for (let i = 0; i < n; i++) if ((path.charCodeAt(i) | (mask[i] as number)) !== expected[i]) return false;
    return true;
  };
}

/**
 * Compiles a rule path glob. The common shapes, a literal path or a literal prefix with a trailing
 * `/**`, are compared in place when ASCII (`literalMatcher`), else become one anchored regex with nothing to
 * backtrack over (no wildcard inside, and `(?:/|$)` cannot be read two ways); anything with inner wildcards uses the
 * segment matcher above.
 */
export function compilePathMatcher(glob: string, caseSensitive: boolean): PathMatcher {
  glob = foldGlob(glob, caseSensitive);
  const flags = caseSensitive ? '' : 'i';
  if (glob === '/**' || glob === '/') return glob === '/**' ? () => true : (path) => path === '/';
  const prefixOnly = glob.endsWith('/**') ? glob.slice(0, -3) : undefined;
  const literal = prefixOnly ?? glob;
  if (!literal.includes('*')) {
    const segments = literal.replace(/\/+$/, '').split('/').filter(Boolean);
    const text = `/${segments.join('/')}`;
    if (PRINTABLE_ASCII_RE.test(text)) return literalMatcher(text, prefixOnly !== undefined, caseSensitive);
    const body = segments.map(escapeRegExp).join('/');
    const re = new RegExp(prefixOnly !== undefined ? `^/${body}(?:/|$)` : `^/${body}$`, flags);
    return (path) => re.test(path);
  }
  const match = compileGlobSegments(glob, caseSensitive);
  return (_path, segments) => match(segments());
}

/** A compiled glob over a normalised path string (tests and one-off use; rules use compilePathMatcher). */
export function compileGlob(glob: string, caseSensitive: boolean): (path: string) => boolean {
  const match = compilePathMatcher(glob, caseSensitive);
  return (path) => {
    let segs: string[] | undefined;
    return match(path, () => (segs ??= pathSegments(path)));
  };
}
