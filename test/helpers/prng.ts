// A seeded PRNG for randomised tests: a failing sequence is replayed from its seed.

/** mulberry32: a small deterministic PRNG over [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The C library's linear congruential generator over [0, 1), as earlier randomised tests wrote it inline: kept
 * to the letter (in doubles, as written) so that those tests still run the same cases.
 */
export function lcg(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
}
