// `npm run bench:instructions`: what a guarded request adds, counted rather than timed. Each server runs under
// valgrind's callgrind with a simulated cache (L1 32 KiB + 32 KiB, last level 1 MiB: this machine's L2 per core), and
// is loaded by autocannon: instrumentation is switched on only after a warm-up (so V8 has compiled the hot code), for a
// fixed number of requests. Instruction and cache-miss counts do not depend on what else the machine runs, so two
// builds or two servers can be told apart to about a percent where bench:http's timings move by ±20 %; what
// they leave out is the kernel (socket work) and the real machine's memory latency, so they rank and explain, and
// bench:http's CPU µs remain the measure of record.
//
// Per request it prints instructions (Ir), first-level misses (I1 + D1) and last-level misses (LL: reads and writes
// that leave the simulated 1 MiB), and each server's difference with its framework's bare server (or with its empty
// layer when the bare server was not run). A last-level miss costs on the order of 100 instructions' time, so for a
// cold path the LL column matters as much as Ir. A second table splits the instructions by kind of work (KINDS):
// V8's runtime property lookups, compiled JavaScript, builtins and the rest; these move far less between windows.
//
// Env: ONLY=fastify,fastify-guard (scenario ids; default: bare, stub and guard of Fastify and Koa),
// WARMUP_REQUESTS (40000, uninstrumented), REQUESTS (5000 per counted window), WINDOWS (6: the median window is
// reported, V8's compiler and full collections left out), CONNECTIONS (50), KEEP=1 to keep the callgrind dumps,
// FUNCTIONS=1 to name the compiled JavaScript (jit-functions.ts: token-guard's functions and what they call, from the
// median window). Needs valgrind (apt-get install valgrind).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { CONNECTIONS, int, load, median, sanityCheck, startServer } from './harness.js';
import { SCENARIOS, type Scenario } from './scenarios.js';
import { jitFunctionTables } from './jit-functions.js';

const WARMUP_REQUESTS = int('WARMUP_REQUESTS', 40_000, CONNECTIONS);
const REQUESTS = int('REQUESTS', 5_000, CONNECTIONS);
const WINDOWS = int('WINDOWS', 6, 1);
/** KEEP=1 keeps each server's callgrind dumps (per function, C++ and V8 builtins by name; JIT code is anonymous). */
const KEEP = process.env.KEEP === '1';
/** FUNCTIONS=1: V8 writes its code map (`--perf-basic-prof`), and each server's JS functions are named (jit-functions.ts). */
const FUNCTIONS = process.env.FUNCTIONS === '1';
const DEFAULT = ['fastify', 'fastify-stub', 'fastify-guard', 'koa', 'koa-stub', 'koa-guard'];
const only = (process.env.ONLY ?? DEFAULT.join(','))
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const scenarios = SCENARIOS.filter((s) => only.includes(s.id));
if (scenarios.length === 0) throw new Error(`ONLY=${process.env.ONLY} matches no scenario`);
try {
  execFileSync('valgrind', ['--version'], { stdio: 'ignore' });
} catch {
  throw new Error('bench:instructions needs valgrind: apt-get install valgrind');
}

/** Callgrind's event counts for one server, per counted request, and its instructions by kind of work (KINDS). */
interface Counts {
  Ir: number;
  L1: number;
  LL: number;
  kinds: Record<(typeof KIND_NAMES)[number], number>;
}

/**
 * Kinds of work, by the function a dump charges (self cost), checked in this order:
 * - `lookups`: V8's runtime property lookup, what a read costs when it misses V8's inline and megamorphic caches. An
 *   Express request has a hidden class of its own, so every named read of it lands here.
 * - `oneOff`: work that falls in one window and not the next. V8's optimising compiler still compiles now and then
 *   after tens of thousands of requests (a path first taken when a load generator's connections close, a function
 *   first called from unoptimised code), and the full (mark-compact) collector runs every few windows. Either adds
 *   thousands of instructions per request to one server's window and not another's, so it is left out of every count.
 * - `js`: compiled JavaScript (anonymous in the dump); `builtins`: V8's builtins; `other`: the rest (the runtime, the
 *   young-generation collector every allocation pays for, Node's C++, libc).
 * These sums move far less between windows than the total does.
 */
const KINDS = {
  lookups:
    /LookupIterator|LoadIC::|Runtime_LoadIC|Runtime_KeyedLoadIC|StubCache::Set|FeedbackNexus|^v8::internal::IC::|FieldIndex|PrototypeChainValidityCell|NumberOfFields|MakePrototypesFast|FastPropertyAt|ComputeHandler|UpdateCaches|PrototypeIterator|KeyedLoadIC::/,
  oneOff: /compiler::|Compil|turboshaft|Turbofan|maglev|MarkCompact|Sweeper::|Marking|RememberedSetUpdatingItem|PointersUpdatingVisitor/,
  builtins: /^Builtins_/,
  js: /^0x[0-9a-f]+$/,
} as const;
type Kind = keyof typeof KINDS | 'other';
/** The kinds a request is charged with (oneOff is not). */
const KIND_NAMES = ['lookups', 'js', 'builtins', 'other'] as const;

/** A dump's instructions by kind (KINDS), not yet per request. */
function kindsOf(file: string): Record<Kind, number> {
  const out = execFileSync('callgrind_annotate', ['--inclusive=no', '--threshold=100', '--show=Ir', file], { encoding: 'utf8', maxBuffer: 256 * 2 ** 20 });
  const sums: Record<Kind, number> = { lookups: 0, oneOff: 0, builtins: 0, js: 0, other: 0 };
  const kinds = Object.keys(KINDS) as (keyof typeof KINDS)[];
  for (const line of out.split('\n')) {
    const m = /^\s*([\d,]+)\s+\([^)]*\)\s+(?:\?\?\?:)?(.*?)(?:\s+\[[^\]]*\])?$/.exec(line);
    if (!m || (m[2] as string).includes('PROGRAM TOTALS')) continue;
    const name = m[2] as string;
    sums[kinds.find((k) => KINDS[k].test(name)) ?? 'other'] += Number((m[1] as string).replaceAll(',', ''));
  }
  return sums;
}

/** A callgrind dump's totals, per request. */
function countsOf(file: string, requests: number): Counts {
  const text = readFileSync(file, 'utf8');
  const events = /^events: (.+)$/m.exec(text)?.[1]?.split(' ') ?? [];
  const totals = /^(?:summary|totals): (.+)$/m.exec(text)?.[1]?.split(' ').map(Number) ?? [];
  const get = (name: string) => totals[events.indexOf(name)] ?? 0;
  const kinds = kindsOf(file);
  return {
    Ir: (get('Ir') - kinds.oneOff) / requests,
    L1: (get('I1mr') + get('D1mr') + get('D1mw')) / requests,
    LL: (get('ILmr') + get('DLmr') + get('DLmw')) / requests,
    kinds: { lookups: kinds.lookups / requests, js: kinds.js / requests, builtins: kinds.builtins / requests, other: kinds.other / requests },
  };
}

async function count(scenario: Scenario): Promise<Counts> {
  const dir = mkdtempSync(join(os.tmpdir(), 'tg-callgrind-'));
  try {
    const wrapper = [
      'valgrind',
      '--tool=callgrind',
      '--instr-atstart=no',
      '--cache-sim=yes',
      '--I1=32768,8,64',
      '--D1=32768,8,64',
      '--LL=1048576,16,64',
      // V8 writes and rewrites machine code at run time.
      '--smc-check=all-non-file',
      '--dump-line=no',
      '--compress-strings=no',
      `--callgrind-out-file=${join(dir, 'callgrind.out.%p')}`,
      '-q',
    ];
    // GC and compilation on the main thread: background threads' work would land in the count at random moments.
    const server = await startServer(scenario, undefined, wrapper, [
      '--single-threaded',
      // --perf-basic-prof also starts V8's log, by default an isolate-*.log in the working directory: kept with the dumps.
      ...(FUNCTIONS ? ['--perf-basic-prof', `--logfile=${join(dir, 'v8.log')}`, '--no-logfile-per-isolate'] : []),
    ]);
    try {
      await sanityCheck(server);
      await load(server, { amount: WARMUP_REQUESTS });
      const pid = String(server.child.pid);
      execFileSync('callgrind_control', ['-i', 'on', pid], { stdio: 'ignore' });
      // Several windows, each dumped (and zeroed) by -d, the one-off work taken out of each (KINDS), and the median of
      // each count kept.
      const windows: Counts[] = [];
      const dumps: string[] = [];
      const counted: number[] = [];
      for (let w = 0; w < WINDOWS; w++) {
        const before = new Set(readdirSync(dir));
        const result = await load(server, { amount: REQUESTS });
        execFileSync('callgrind_control', ['-d', pid], { stdio: 'ignore' });
        const dump = readdirSync(dir).find((f) => f.startsWith('callgrind.out.') && !before.has(f));
        if (!dump) throw new Error(`${scenario.id}: callgrind wrote no dump`);
        windows.push(countsOf(join(dir, dump), result.requests.total));
        dumps.push(dump);
        counted.push(result.requests.total);
      }
      console.log(`  ${scenario.id}: instructions per request in each window: ${windows.map((c) => Math.round(c.Ir)).join(', ')}`);
      const kinds = Object.fromEntries(KIND_NAMES.map((k) => [k, median(windows.map((c) => c.kinds[k]))])) as Counts['kinds'];
      if (FUNCTIONS) {
        // The window whose compiled-JS count is the median one: its functions add up to the js column reported.
        const order = windows.map((c, i) => [c.kinds.js, i] as const).sort((a, b) => a[0] - b[0]);
        const [, middle] = order[Math.floor((order.length - 1) / 2)] as readonly [number, number];
        console.log(`\n${scenario.label}, window ${middle + 1}:\n\n${jitFunctionTables(join(dir, dumps[middle] as string), pid, counted[middle] as number)}\n`);
        if (!KEEP) rmSync(`/tmp/perf-${pid}.map`, { force: true });
      }
      return { Ir: median(windows.map((c) => c.Ir)), L1: median(windows.map((c) => c.L1)), LL: median(windows.map((c) => c.LL)), kinds };
    } finally {
      server.child.kill('SIGKILL');
    }
  } finally {
    if (KEEP) console.log(`  ${scenario.id}: callgrind dumps kept in ${dir} (callgrind_annotate reads them)`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`bench:instructions: ${scenarios.map((s) => s.id).join(', ')}; ${WARMUP_REQUESTS} warm-up + ${REQUESTS} counted requests each, under callgrind`);
const results = new Map<string, Counts>();
for (const scenario of scenarios) {
  const c = await count(scenario);
  results.set(scenario.id, c);
  console.log(
    `  ${scenario.id.padEnd(22)} ${Math.round(c.Ir).toLocaleString('en-US').padStart(9)} Ir  ${c.L1.toFixed(0).padStart(6)} L1 misses  ${c.LL.toFixed(1).padStart(7)} LL misses per request`,
  );
}
const fmt = (n: number, digits = 0) => `${n >= 0 ? '+' : ''}${n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })}`;
const whole = (n: number) => Math.round(n).toLocaleString('en-US');
/** What a server is compared with: its framework's bare server, or its empty layer when the bare one was not run. */
const referenceOf = (scenario: Scenario): Counts | undefined => {
  for (const kind of ['bare', 'layer'] as const) {
    const ref = scenarios.find((s) => s.framework === scenario.framework && s.kind === kind);
    if (ref) return ref === scenario ? undefined : results.get(ref.id);
  }
  return undefined;
};
const lines = ['| server | instructions/req | added | L1 misses/req | added | LL misses/req | added |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: |'];
const byKind = [`| server | ${KIND_NAMES.map((k) => `${k} | added`).join(' | ')} |`, `| --- | ${KIND_NAMES.map(() => '---: | ---:').join(' | ')} |`];
for (const scenario of scenarios) {
  const c = results.get(scenario.id) as Counts;
  const b = referenceOf(scenario);
  lines.push(
    `| ${scenario.label} | ${whole(c.Ir)} | ${b ? fmt(c.Ir - b.Ir) : ''} | ${c.L1.toFixed(0)} | ${b ? fmt(c.L1 - b.L1) : ''} | ${c.LL.toFixed(1)} | ${b ? fmt(c.LL - b.LL, 1) : ''} |`,
  );
  byKind.push(`| ${scenario.label} | ${KIND_NAMES.map((k) => `${whole(c.kinds[k])} | ${b ? fmt(c.kinds[k] - b.kinds[k]) : ''}`).join(' | ')} |`);
}
console.log(`\n${lines.join('\n')}`);
console.log(
  `\nInstructions per request by kind of work (median window each; "added" is over the bare server, or over the empty layer when the bare one was not run):\n\n${byKind.join('\n')}`,
);
