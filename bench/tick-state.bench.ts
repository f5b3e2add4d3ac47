// `npm run bench:tick-state`: the Node trap behind bench:http's two states of a guarded Fastify process (see
// docs/performance.md), reproduced without any framework or token-guard code. `process.nextTick` builds each tick
// object as a literal with computed keys; the hidden classes that literal goes through live only while some tick
// object does. One full collection made while none is alive, after `nextTick` has gathered type feedback, frees them,
// and every `nextTick` afterwards builds its object in V8's runtime. Prints the cost per `nextTick` without that
// collection and after it, each in a fresh process (the state cannot be undone within one).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const noop = (): void => {};

/** The best of 5 batches of 200,000 `nextTick` calls, in ns per call (the ticks run between batches). */
async function nsPerTick(): Promise<number> {
  let best = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 5; round++) {
    const started = process.hrtime.bigint();
    for (let i = 0; i < 200_000; i++) process.nextTick(noop);
    await new Promise((resolve) => setImmediate(resolve));
    best = Math.min(best, Number(process.hrtime.bigint() - started) / 200_000);
  }
  return best;
}

const mode = process.argv[2];
if (mode === 'child' || mode === 'child-gc') {
  // Enough calls for V8 to record type feedback, too few for it to optimise nextTick.
  for (let i = 0; i < 50; i++) process.nextTick(noop);
  await new Promise((resolve) => setTimeout(resolve, 5));
  // From a timer callback: the tick queue is empty, so no tick object is alive during this collection.
  if (mode === 'child-gc') (globalThis as { gc?: () => void }).gc?.();
  process.stdout.write(String(await nsPerTick()));
} else {
  const self = fileURLToPath(import.meta.url);
  const run = (child: string): number =>
    Number(
      execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', self, child], { encoding: 'utf8', env: { ...process.env, TSX_TSCONFIG_PATH: 'bench/tsconfig.json' } }),
    );
  console.log(`bench:tick-state on Node ${process.version}: ns per process.nextTick (best of 5 × 200,000), 3 fresh processes each`);
  for (let i = 0; i < 3; i++) {
    const plain = run('child');
    const collected = run('child-gc');
    console.log(`  without an idle full GC ${plain.toFixed(0)} ns, after one ${collected.toFixed(0)} ns (× ${(collected / plain).toFixed(1)})`);
  }
}
