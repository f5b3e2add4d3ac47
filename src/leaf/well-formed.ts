// Strings a key record may hold: well-formed Unicode without NUL. A lone UTF-16 surrogate (a name cut in the middle
// of an emoji) survives JSON.stringify as `\ud83d`, but PostgreSQL's jsonb refuses it and Redis's Lua cjson cannot
// decode it; jsonb refuses `\u0000` too. The same record would work in one store and fail (503) or be refused in
// another. Refused everywhere instead.
//
// Token ids and subjects follow a narrower rule (`hasLoneSurrogate`): a NUL is theirs to hold (PostgresStore escapes
// one), but a lone surrogate reaches PostgreSQL and Redis as U+FFFD, so `tok-\uD800`, `tok-\uDC00` and `tok-\uFFFD`
// would share one revocation there and stay three in MemoryStore.

/** With the `u` flag a paired surrogate is one code point, so this matches only a lone one; and NUL. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is what this looks for (PostgreSQL cannot store it)
const UNSTORABLE = /[\uD800-\uDFFF\u0000]/u;

/** Nesting deeper than any record has: a cycle or a mistake, not data. */
const MAX_DEPTH = 16;

/** What `illFormedStringAt` found. */
export interface IllFormed {
  /** Below the given path, e.g. `record.metadata.note`. */
  path: string;
  /** What is wrong there, as the end of a sentence. */
  problem: string;
}

const UNSTORABLE_PROBLEM = 'well-formed Unicode without NUL (it holds a lone UTF-16 surrogate or a NUL)';

/**
 * Where `value` holds a string (or an object key) that is not well-formed Unicode or holds a NUL, or nests deeper
 * than any record does, below `path`; undefined when nothing is wrong. Arrays and plain objects are walked.
 */
export function illFormedStringAt(value: unknown, path: string, depth = 0): IllFormed | undefined {
  if (typeof value === 'string') return UNSTORABLE.test(value) ? { path, problem: UNSTORABLE_PROBLEM } : undefined;
  if (value === null || typeof value !== 'object') return undefined;
  if (depth >= MAX_DEPTH) return { path, problem: `nested at most ${MAX_DEPTH} levels deep` };
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const at = illFormedStringAt(value[i], `${path}[${i}]`, depth + 1);
      if (at !== undefined) return at;
    }
    return undefined;
  }
  for (const [k, v] of Object.entries(value)) {
    if (UNSTORABLE.test(k)) return { path: `${path} (a key)`, problem: UNSTORABLE_PROBLEM };
    const at = illFormedStringAt(v, `${path}.${k}`, depth + 1);
    if (at !== undefined) return at;
  }
  return undefined;
}

/** `String.prototype.isWellFormed` (ES2024, in every Node this package supports; not in the TypeScript lib it compiles against). */
interface WellFormedString {
  isWellFormed(): boolean;
}
/** V8 answers a one-byte string (nearly every id) at once, where a regular expression scans it: this runs on every store call. */
const NATIVE = typeof (String.prototype as Partial<WellFormedString>).isWellFormed === 'function';

/**
 * Whether `s` holds a lone UTF-16 surrogate: a lead (D800–DBFF) not followed by a trail (DC00–DFFF), or a trail
 * without a lead. Natively where the runtime can, else `scanLoneSurrogate`.
 */
export function hasLoneSurrogate(s: string): boolean {
  return NATIVE ? !(s as unknown as WellFormedString).isWellFormed() : scanLoneSurrogate(s);
}

/** Any UTF-16 surrogate code unit, paired or not (no `u` flag): a native scan that lets almost every string skip the loop. */
const ANY_SURROGATE = /[\uD800-\uDFFF]/;

/** `hasLoneSurrogate` without `isWellFormed`: allocates nothing; the pairing loop runs only on a string with a surrogate at all. */
export function scanLoneSurrogate(s: string): boolean {
  if (!ANY_SURROGATE.test(s)) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    if (c > 0xdbff) return true;
    const next = s.charCodeAt(i + 1); // NaN past the end: no trail
    if (!(next >= 0xdc00 && next <= 0xdfff)) return true;
    i++;
  }
  return false;
}

/** What a token claim that becomes a store key (`jti`, `sub`) must be, for a refusal's detail; undefined when it is. */
export function illFormedClaim(jti: unknown, sub: unknown): string | undefined {
  if (typeof jti === 'string' && hasLoneSurrogate(jti)) return 'jti is not well-formed Unicode (it holds a lone UTF-16 surrogate)';
  if (typeof sub === 'string' && hasLoneSurrogate(sub)) return 'sub is not well-formed Unicode (it holds a lone UTF-16 surrogate)';
  return undefined;
}
