// hasLoneSurrogate decides which ids and subjects every store refuses: the native check and the fallback scan (for
// runtimes without String.prototype.isWellFormed) must agree on every string, whichever one runs.
import { describe, expect, it } from 'vitest';
import { hasLoneSurrogate, scanLoneSurrogate } from '../../src/leaf/well-formed.js';
import { mulberry32 } from '../helpers/prng.js';

const CASES: [string, boolean][] = [
  ['', false],
  ['tok-1', false],
  ['al\u0000ice', false],
  ['caf\u00e9', false],
  ['\u{1F600}', false],
  ['a\u{1F600}b\u{1F600}', false],
  ['\uD83D', true],
  ['\uDE00', true],
  ['tok-\uD800', true],
  ['tok-\uDC00x', true],
  ['\uDE00\uD83D', true],
  ['\uD83D\uDE00\uDE00', true],
  ['\uD83D\uD83D\uDE00', true],
  ['\uFFFD', false],
];

describe('hasLoneSurrogate', () => {
  it.each(CASES)('%j → %s, natively and by the fallback scan', (s, lone) => {
    expect([hasLoneSurrogate(s), scanLoneSurrogate(s)]).toEqual([lone, lone]);
  });

  it('agrees with the fallback scan on random strings of surrogates, ASCII and astral characters', () => {
    const random = mulberry32(9);
    const units = [0x41, 0xd800, 0xdbff, 0xdc00, 0xdfff, 0xd83d, 0xde00, 0xfffd, 0xe9];
    for (let n = 0; n < 5000; n++) {
      const s = String.fromCharCode(...Array.from({ length: Math.floor(random() * 8) }, () => units[Math.floor(random() * units.length)] as number));
      expect(hasLoneSurrogate(s)).toBe(scanLoneSurrogate(s));
    }
  });
});
