// One place that sets how hard the property tests push: `npm test` runs a seeded subset, `npm run fuzz` the full search.
import type fc from 'fast-check';

const envRuns = process.env['FUZZ_RUNS'];
const envSeed = process.env['FUZZ_SEED'];

/** Cases per property. Default 2000 (the subset `npm test` runs); `FUZZ_RUNS` raises it (`npm run fuzz`: 100 000). */
export const FUZZ_RUNS = envRuns === undefined ? 2000 : Number(envRuns);

// `npm test` must be repeatable: a fixed seed unless FUZZ_RUNS asks for a search, which gets a fresh seed
// (fast-check prints it with the counterexample; FUZZ_SEED=<seed> replays it).
const SEED = envSeed !== undefined ? Number(envSeed) : envRuns === undefined ? 0x7e57_2026 : undefined;

if (!Number.isInteger(FUZZ_RUNS) || FUZZ_RUNS < 1) throw new TypeError(`FUZZ_RUNS must be a positive integer (got ${envRuns})`);

/**
 * fast-check parameters for one property. `scale` lowers the seeded subset only, for a property whose
 * every case is itself a loop (the hours property walks two hours minute by minute), so `npm test`
 * stays quick; a search (`FUZZ_RUNS` set) always runs the full count.
 */
export function fuzzParams<T>(scale = 1): fc.Parameters<T> {
  const numRuns = envRuns === undefined ? Math.max(1, Math.round(FUZZ_RUNS * scale)) : FUZZ_RUNS;
  const params: fc.Parameters<T> = { numRuns };
  if (SEED !== undefined) params.seed = SEED;
  return params;
}

/** Vitest timeout for one property: the default for the seeded subset, an hour for a full search. */
export const FUZZ_TIMEOUT = envRuns === undefined ? 20_000 : 3_600_000;
