// Strings a key record may hold: well-formed Unicode without NUL. A lone UTF-16 surrogate (a name cut in the middle
// of an emoji) survives JSON.stringify as `\ud83d`, but PostgreSQL's jsonb refuses it and Redis's Lua cjson cannot
// decode it; jsonb refuses `\u0000` too. The same record would work in one store and fail (503) or be refused in
// another. Refused everywhere instead.

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
