// Properties of request-path normalisation and rule glob matching, against a naive recursive matcher
// and against the ways routers read a path.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { checkGlob, compileGlob, normalizePath } from '../../src/leaf/path.js';
import { FUZZ_TIMEOUT, fuzzParams } from './runs.js';

/** ECMAScript's Canonicalize for a non-Unicode `/i` regex (ECMA-262 §22.2.2.7.3), what case-insensitive rules promise. */
function canon(ch: string): string {
  const u = ch.toUpperCase();
  if (u.length !== 1) return ch;
  if (ch.charCodeAt(0) >= 128 && u.charCodeAt(0) < 128) return ch;
  return u;
}
const sameChar = (a: string, b: string, ci: boolean) => a === b || (ci && canon(a) === canon(b));

/** Naive segment matcher: `*` is any run of characters, tried every way. */
function refSegment(glob: string, seg: string, ci: boolean): boolean {
  if (glob === '') return seg === '';
  if (glob[0] === '*') {
    for (let i = 0; i <= seg.length; i++) if (refSegment(glob.slice(1), seg.slice(i), ci)) return true;
    return false;
  }
  return seg !== '' && sameChar(glob[0] as string, seg[0] as string, ci) && refSegment(glob.slice(1), seg.slice(1), ci);
}

/** Naive path matcher: `**` is any number of whole segments, tried every way. */
function refGlob(glob: readonly string[], path: readonly string[], ci: boolean): boolean {
  if (glob.length === 0) return path.length === 0;
  const [g, ...rest] = glob as [string, ...string[]];
  if (g === '**') return refGlob(rest, path, ci) || (path.length > 0 && refGlob(glob, path.slice(1), ci));
  return path.length > 0 && refSegment(g, path[0] as string, ci) && refGlob(rest, path.slice(1), ci);
}
const segmentsOf = (s: string) => s.split('/').filter((x) => x !== '');

// A small alphabet makes matches likely; the non-ASCII letters are ones whose case folding is special.
const letter = fc.constantFrom('a', 'b', 'A', 'B', 'x', '-', '.', '_', '~', ' ', 'é', 'É', 'ß', 'σ', 'ς', 'Σ', 'ſ', 'ı', 'S', 's', '1', '@', ':', '+');
const literal = fc.array(letter, { minLength: 1, maxLength: 4 }).map((a) => a.join(''));
const globSegment = fc.oneof(
  { weight: 3, arbitrary: literal },
  { weight: 2, arbitrary: fc.constantFrom('*', '**') },
  { weight: 2, arbitrary: fc.array(fc.oneof(literal, fc.constant('*')), { minLength: 1, maxLength: 4 }).map((a) => a.join('')) },
);
const glob = fc
  .tuple(fc.array(globSegment, { maxLength: 5 }), fc.boolean())
  .map(([segs, trailing]) => `/${segs.join('/')}${trailing && segs.length ? '/' : ''}`)
  .filter((g) => checkGlob(g) === undefined);
const pathSegment = fc.oneof(
  { weight: 4, arbitrary: literal },
  {
    weight: 1,
    arbitrary: fc
      .string({ minLength: 1, maxLength: 6 })
      .map((s) => s.replace(/\//g, ''))
      .filter((s) => s !== ''),
  },
);
const normalPath = fc.array(pathSegment, { maxLength: 6 }).map((segs) => `/${segs.join('/')}`);

/** A path made from a glob, so that matches are common rather than rare. */
const pathFromGlob = (g: string) =>
  fc.array(fc.oneof(pathSegment, fc.constant('')), { minLength: 8, maxLength: 8 }).map((fill) => {
    let k = 0;
    const out: string[] = [];
    for (const seg of segmentsOf(g)) {
      if (seg === '**') {
        const n = (fill[k++] ?? '').length % 3;
        for (let i = 0; i < n; i++) out.push(fill[(k + i) % fill.length] || 'z');
      } else out.push(seg.replace(/\*/g, () => fill[k++ % fill.length] ?? ''));
    }
    return `/${out.filter((s) => s !== '').join('/')}`;
  });

const hex = (c: string) => [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
/** A decoded path spelled as a target: `%`, `?`, `#`, space and non-ASCII escaped (a target is ASCII). */
const respell = (n: string) => n.replace(/[%?# ]|[^\x00-\x7f]/gu, (c) => hex(c));

describe('fuzz: glob matching', () => {
  it(
    'agrees with a naive recursive matcher, case-sensitive or not',
    () => {
      fc.assert(
        fc.property(
          glob.chain((g) => fc.tuple(fc.constant(g), fc.oneof(normalPath, pathFromGlob(g)), fc.boolean())),
          ([g, path, ci]) => {
            fc.pre(normalizePath(respell(path)) === path);
            expect(compileGlob(g, !ci)(path), `${g} against ${path} (${ci ? 'case-insensitive' : 'case-sensitive'})`).toBe(refGlob(segmentsOf(g), segmentsOf(path), ci));
          },
        ),
        fuzzParams(),
      );
    },
    FUZZ_TIMEOUT,
  );
});

describe('fuzz: case-insensitive rules and router case folding', () => {
  // Letters with unusual case mappings, each next to the ones it folds to in some reading.
  const foldable = fc.constantFrom(
    'a',
    'A',
    'k',
    'K',
    '\u212A',
    'i',
    'I',
    '\u0130',
    'θ',
    'Θ',
    '\u03F4',
    'ω',
    'Ω',
    '\u2126',
    'å',
    'Å',
    '\u212B',
    'ß',
    '\u1E9E',
    'σ',
    'Σ',
    'ς',
    '\u{10428}',
    '\u{10400}',
    'é',
    'É',
    'ᾀ',
    '\u1F88',
  );
  const word = fc.array(foldable, { minLength: 1, maxLength: 4 }).map((a) => a.join(''));

  it(
    'applies a rule to every path that String#toLowerCase (find-my-way) folds to it, or refuses the path',
    () => {
      fc.assert(
        fc.property(word, word, (ruleWord, pathWord) => {
          const target = `/${[...pathWord].map((c) => hex(c)).join('')}/1`;
          const n = normalizePath(target);
          if (n === null) return;
          const routerMatches = pathWord.toLowerCase() === ruleWord.toLowerCase();
          if (routerMatches) expect(compileGlob(`/${ruleWord}/**`, false)(n), `rule /${ruleWord}/**, path ${n}`).toBe(true);
        }),
        fuzzParams(),
      );
    },
    FUZZ_TIMEOUT,
  );
});

// Request targets built from pieces an attacker would try: escapes, dot segments, doubled and encoded slashes.
const rawChar = fc.tuple(letter, fc.nat(5)).map(([c, how]) => (how === 0 ? hex(c) : how === 1 ? hex(c).toUpperCase() : c));
const rawSegment = fc.oneof(
  { weight: 5, arbitrary: fc.array(rawChar, { minLength: 1, maxLength: 5 }).map((a) => a.join('')) },
  { weight: 1, arbitrary: fc.constantFrom('admin', 'ADMIN', 'Admin', '%61dmin', 'adm%69n', '.', '..', '%2e', '%2E%2e', '.%2e', '', 'x') },
);
const separator = fc.constantFrom('/', '/', '/', '//', '%2F', '%2f', '%5C', '\\', '/./', '/../', ';', '%00', '%');
const rawTarget = fc
  .tuple(fc.array(fc.tuple(separator, rawSegment), { minLength: 1, maxLength: 5 }), fc.constantFrom('', '/', '?a=1', '#x', '?/../admin', '%3F'))
  .map(([parts, tail]) => `${parts.map(([s, seg]) => s + seg).join('')}${tail}`)
  .map((t) => (t.startsWith('/') ? t : `/${t}`));
const anyTarget = fc.oneof(
  { weight: 3, arbitrary: rawTarget },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }).map((s) => `/${s}`) },
);

/** How routers and proxies may read a target; each returns its segments, or undefined when it cannot read it. */
const readings: Record<string, (target: string) => string[] | undefined> = {
  // Express and @koa/router: the raw path, segments decoded one by one, nothing resolved.
  raw: (t) => segmentsOf(t.split(/[?#]/)[0] as string).map((s) => decodeURIComponent(s)),
  // A proxy or WHATWG URL: dot segments (also %2e) resolved, then segments decoded.
  whatwg: (t) => segmentsOf(new URL(`http://h${t.split('#')[0] as string}`).pathname).map((s) => decodeURIComponent(s)),
  // find-my-way style: decode everything first (an encoded slash becomes a separator), then resolve dots.
  decodeFirst: (t) => {
    const out: string[] = [];
    for (const s of decodeURIComponent(t.split(/[?#]/)[0] as string).split(/[/\\]/)) {
      if (s === '' || s === '.') continue;
      if (s === '..') out.pop();
      else out.push(s);
    }
    return out;
  },
};
const read = (f: (t: string) => string[] | undefined, t: string) => {
  try {
    return f(t);
  } catch {
    return undefined;
  }
};

describe('fuzz: path normalisation', () => {
  it(
    'never throws, and returns null or a path starting with "/" with no empty, "." or ".." segments and no query',
    () => {
      fc.assert(
        fc.property(anyTarget, (t) => {
          const n = normalizePath(t);
          if (n === null) return;
          expect(n.startsWith('/')).toBe(true);
          if (n !== '/')
            expect(
              n
                .slice(1)
                .split('/')
                .every((s) => s !== '' && s !== '.' && s !== '..'),
            ).toBe(true);
          if (!/%3f|%23/i.test(t)) expect(n).not.toMatch(/[?#]/);
        }),
        fuzzParams(),
      );
    },
    FUZZ_TIMEOUT,
  );

  it(
    'is idempotent: a normalised path, spelled as a target again, normalises to itself',
    () => {
      fc.assert(
        fc.property(anyTarget, (t) => {
          const n = normalizePath(t);
          if (n === null) return;
          expect(normalizePath(respell(n)), `${JSON.stringify(t)} → ${JSON.stringify(n)}`).toBe(n);
          if (!/[%?# ]|[^\x00-\x7f]/u.test(n)) expect(normalizePath(n)).toBe(n);
        }),
        fuzzParams(),
      );
    },
    FUZZ_TIMEOUT,
  );

  it(
    'never lets a spelling escape a rule: every path it accepts is under /admin/** for the guard exactly when it is for every router',
    () => {
      const guardUnder = compileGlob('/admin/**', false);
      fc.assert(
        fc.property(rawTarget, (t) => {
          const n = normalizePath(t);
          if (n === null) return;
          const guard = guardUnder(n);
          for (const [name, f] of Object.entries(readings)) {
            const segs = read(f, t);
            if (segs === undefined) continue;
            const router = (segs[0] ?? '').toLowerCase() === 'admin';
            expect(router, `${name} reads ${JSON.stringify(t)} as ${JSON.stringify(segs)}; the guard as ${JSON.stringify(n)}`).toBe(guard);
          }
        }),
        fuzzParams(),
      );
    },
    FUZZ_TIMEOUT,
  );
});
