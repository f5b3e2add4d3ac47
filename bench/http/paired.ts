// `npm run bench:paired`: what a guarded request adds, measured inside one server process. The server holds several
// apps of one framework (bare, an empty layer, the adapter around a stub guard, the real guard) behind one listener and
// switches between them on a message; the load generator measures each app for a slice of requests in turn, in an
// order that rotates every cycle. Two apps are then compared in the same process, with the same JIT state and heap,
// seconds apart, so the drift of a shared machine and the ±10 % between two processes of the same server (which
// bench:http has to average away over rounds) cancel out of each paired difference. What it cannot remove is the
// machine's noise within a slice: the spread of the paired differences (p25–p75) is printed beside their median.
//
// Env: ONLY=fastify,koa (frameworks; default all four), ARMS_FASTIFY=fastify,fastify-guard (a framework's apps, bare
// first; ids from scenarios.ts), CYCLES (16), SLICE requests per measurement (20000), WARMUP_REQUESTS per app before the
// first cycle (30000), CONNECTIONS (50), PIN=0 to skip taskset. Two builds in one process:
// ONLY=express ARMS_EXPRESS=express,express-guard-baseline,express-guard BASELINE_DIST=<the other build's dist/>.
import os from 'node:os';
import { CONNECTIONS, int, load, median, pinned, sanityCheck, startServer, type Server } from './harness.js';
import { SCENARIOS, type Framework, type Scenario } from './scenarios.js';

const CYCLES = int('CYCLES', 16, 1);
const SLICE = int('SLICE', 20_000, CONNECTIONS);
const WARMUP_REQUESTS = int('WARMUP_REQUESTS', 30_000, CONNECTIONS);
const FRAMEWORKS: readonly Framework[] = ['fastify', 'koa', 'express', 'fetch'];
const only = (process.env.ONLY ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const frameworks = FRAMEWORKS.filter((f) => only.length === 0 || only.includes(f));
if (frameworks.length === 0) throw new Error(`ONLY=${process.env.ONLY} names none of ${FRAMEWORKS.join(', ')}`);

/** The apps one server switches between: its bare app first (what every other is compared with). */
const DEFAULT_ARMS: Record<Framework, string> = {
  fastify: 'fastify,fastify-layer,fastify-stub,fastify-guard',
  koa: 'koa,koa-layer,koa-stub,koa-guard',
  express: 'express,express-layer,express-stub,express-guard,express-guard-route',
  fetch: 'fetch,fetch-stub,fetch-guard',
};
/** ARMS_FASTIFY=fastify,fastify-guard (and so on) picks the apps of one framework's server. */
const armIds = (f: Framework): string[] => (process.env[`ARMS_${f.toUpperCase()}`] ?? DEFAULT_ARMS[f]).split(',').map((id) => id.trim());
const scenarioOf = (id: string): Scenario => {
  const s = SCENARIOS.find((x) => x.id === id);
  if (!s) throw new Error(`no scenario ${id}`);
  return s;
};

interface Slice {
  cpuUsPerReq: number;
  userUsPerReq: number;
}

/** One slice of `SLICE` requests against the app `index` serves: the server's CPU µs per request. */
async function slice(server: Server, index: number, scenario: Scenario, amount: number): Promise<Slice> {
  await server.arm(index);
  const before = await server.cpu();
  const result = await load({ ...server, scenario }, { amount });
  const after = await server.cpu();
  const requests = result.requests.total;
  if (result.non2xx || result.errors) throw new Error(`${scenario.id}: ${result.non2xx} non-2xx answers, ${result.errors} errors`);
  return { cpuUsPerReq: (after.us - before.us) / requests, userUsPerReq: (after.userUs - before.userUs) / requests };
}

/** The q-quantile (0..1) of `values`, linear between neighbours. */
const quantile = (values: number[], q: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return (sorted[lo] as number) + ((sorted[hi] as number) - (sorted[lo] as number)) * (at - lo);
};

const fmt = (n: number, digits = 1, sign = false) => `${sign && n >= 0 ? '+' : ''}${n.toFixed(digits)}`;

console.log(
  `bench:paired: ${frameworks.join(', ')}; ${CYCLES} cycles × ${SLICE} requests per app, ${CONNECTIONS} connections, ` +
    `${pinned ? `server on CPU ${pinned.server}, autocannon on CPU ${pinned.loadGenerator}` : 'not pinned'}; load average ${os.loadavg()[0]?.toFixed(1)}`,
);

const lines: string[] = ['| app | CPU µs/req | added CPU µs/req (median) | p25 … p75 | of which user |', '| --- | ---: | ---: | ---: | ---: |'];
for (const framework of frameworks) {
  const arms = armIds(framework).map(scenarioOf);
  const server = await startServer(arms[0] as Scenario, arms);
  try {
    for (const [i, arm] of arms.entries()) {
      await server.arm(i);
      await sanityCheck(server, arm);
      await slice(server, i, arm, WARMUP_REQUESTS);
    }
    const cycles: Slice[][] = [];
    for (let c = 0; c < CYCLES; c++) {
      // A Latin-square order: each app in each position equally often, every other cycle reversed.
      const order = arms.map((_, i) => (i + c) % arms.length);
      if (c % 2) order.reverse();
      const cycle: Slice[] = [];
      for (const i of order) cycle[i] = await slice(server, i, arms[i] as Scenario, SLICE);
      cycles.push(cycle);
      process.stdout.write(`  ${framework} cycle ${c + 1}/${CYCLES}: ${cycle.map((s, i) => `${arms[i]?.id} ${s.cpuUsPerReq.toFixed(1)}`).join(', ')}\n`);
    }
    for (const [i, arm] of arms.entries()) {
      const mine = cycles.map((c) => c[i] as Slice);
      const cpu = median(mine.map((s) => s.cpuUsPerReq));
      if (i === 0) {
        lines.push(`| ${arm.label} | ${fmt(cpu)} | | | |`);
        continue;
      }
      const added = cycles.map((c) => (c[i] as Slice).cpuUsPerReq - (c[0] as Slice).cpuUsPerReq);
      const user = cycles.map((c) => (c[i] as Slice).userUsPerReq - (c[0] as Slice).userUsPerReq);
      lines.push(
        `| ${arm.label} | ${fmt(cpu)} | ${fmt(median(added), 1, true)} | ${fmt(quantile(added, 0.25), 1, true)} … ${fmt(quantile(added, 0.75), 1, true)} | ${fmt(median(user), 1, true)} |`,
      );
    }
  } finally {
    server.child.kill();
  }
}
console.log(`\nOne process per framework, apps switched per slice; medians over ${CYCLES} cycles of paired differences with the bare app.\n`);
console.log(lines.join('\n'));
