// `npm run bench:http`: bare vs guarded HTTP servers (Express, Koa, Fastify, fetch on node:http) and peer libraries,
// interleaved over several rounds in one run. Each server runs in its own process (pinned to one core when taskset is
// available), autocannon runs here (pinned to another core), and each server reports its own CPU time, so "CPU µs per
// request" is the server's cost, not the load generator's. Servers run as plain JavaScript and import the built package
// (dist/): no tsx in the measured process.
//
// Env: ROUNDS (3), DURATION seconds per measurement (2), WARMUP seconds before each (3; 1 with FRESH=0), WARMUP_REQUESTS (5000: the
// least a server has answered before its first measurement, so a slow machine still measures JIT-compiled code),
// CONNECTIONS (50), ONLY=express,fastify-jwt (ids or id prefixes from scenarios.ts), PIN=0 to skip taskset,
// FRESH=0 to keep one server process per scenario for every round (default: a new process each round, since two processes
// of the same server differ by up to ±10 % on this kind of machine, as much as the differences measured), ALONE=1 to have
// only the measured server alive (each started for its measurement and stopped after it; default: all of a round's
// servers are started together and wait, idle, for their turn).
//
// Besides CPU µs per request (user + system), the table gives the user-mode part added: the loopback write the kernel
// charges to the server grows when a slower server leaves the load generator idle more often, which is not the
// guard's own work.
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { CONNECTIONS, int, load, median, pinned, sanityCheck, startServer, version, type Server } from './harness.js';
import { ROUTE, SCENARIOS, type Framework, type Scenario } from './scenarios.js';

// autocannon stops on its 1 s sampling tick, so durations are whole seconds.
const ROUNDS = int('ROUNDS', 3, 1);
const DURATION = int('DURATION', 2, 1);
/** A new server process each round, unless FRESH=0. */
const FRESH = process.env.FRESH !== '0';
/** ALONE=1: only the server being measured is alive (started for its measurement, stopped after it). */
const ALONE = process.env.ALONE === '1';
// A new process needs about 3 s under load before the guard's code runs at its steady-state cost (after 1 s, Fastify's
// guarded server measured +7 µs a request; after 4 s, and in a process kept over rounds, +3 to +4).
const WARMUP = int('WARMUP', FRESH ? 3 : 1, 0);
const WARMUP_REQUESTS = int('WARMUP_REQUESTS', 5000, 0);
const only = (process.env.ONLY ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const scenarios = SCENARIOS.filter((s) => only.length === 0 || only.some((o) => s.id === o || s.id.startsWith(`${o}-`)));
if (scenarios.length === 0) throw new Error(`ONLY=${process.env.ONLY} matches none of ${SCENARIOS.map((s) => s.id).join(', ')}`);

// ---------- measuring ----------

interface Sample {
  round: number;
  requests: number;
  seconds: number;
  reqPerSec: number;
  cpuUsPerReq: number;
  /** The user-mode part of cpuUsPerReq (the server's JavaScript and V8, without the kernel's socket work). */
  userUsPerReq: number;
  /** Share of one core the server used while measured: below ~90 % the load generator, not the server, was the limit. */
  serverCpuPct: number;
  loadGeneratorCpuPct: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  non2xx: number;
  errors: number;
  rssMiB: number;
}

const answered = new Map<Server, number>();

async function measure(server: Server, round: number): Promise<Sample> {
  let warm = answered.get(server) ?? 0;
  if (WARMUP > 0) warm += (await load(server, { duration: WARMUP })).requests.total;
  // autocannon refuses an amount below its connection count.
  if (warm < WARMUP_REQUESTS) warm += (await load(server, { amount: Math.max(CONNECTIONS, WARMUP_REQUESTS - warm) })).requests.total;
  const before = await server.cpu();
  const ownBefore = process.cpuUsage();
  const wallBefore = performance.now();
  const result = await load(server, { duration: DURATION });
  const wallUs = (performance.now() - wallBefore) * 1000;
  const own = process.cpuUsage(ownBefore);
  const after = await server.cpu();
  const requests = result.requests.total;
  answered.set(server, warm + requests);
  const cpuUs = after.us - before.us;
  return {
    round,
    requests,
    seconds: result.duration,
    reqPerSec: requests / result.duration,
    cpuUsPerReq: requests > 0 ? cpuUs / requests : Number.NaN,
    userUsPerReq: requests > 0 ? (after.userUs - before.userUs) / requests : Number.NaN,
    serverCpuPct: (100 * cpuUs) / wallUs,
    loadGeneratorCpuPct: (100 * (own.user + own.system)) / wallUs,
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
    rssMiB: after.rssBytes / 2 ** 20,
  };
}

const totalSeconds = scenarios.length * ROUNDS * (WARMUP + DURATION + (FRESH ? 1 : 0.3));
console.log(
  `bench:http: ${scenarios.length} servers × ${ROUNDS} rounds × (${WARMUP} s warm-up + ${DURATION} s), ${CONNECTIONS} connections, ` +
    `${pinned ? `servers on CPU ${pinned.server}, autocannon on CPU ${pinned.loadGenerator}` : 'not pinned'}, ` +
    `${ALONE ? 'one server alive at a time' : FRESH ? 'new server processes each round' : 'one process per server'}; about ${Math.ceil(totalSeconds / 60)} min`,
);

let servers: Server[] = [];
const stopAll = () => {
  for (const s of servers) s.child.kill();
  servers = [];
};
/** Starts every scenario's server (all at once: each waits on its own child) and checks that each answers as it should. */
async function startAll(): Promise<void> {
  const started = await Promise.allSettled(scenarios.map((s) => startServer(s)));
  for (const s of started) if (s.status === 'fulfilled') servers.push(s.value);
  for (const s of started) if (s.status === 'rejected') throw s.reason;
  for (const server of servers) await sanityCheck(server);
}
/** ALONE: starts one scenario's server as the only one alive, checked as startAll checks each. */
async function startAlone(scenario: Scenario): Promise<Server> {
  stopAll();
  const server = await startServer(scenario);
  servers.push(server);
  await sanityCheck(server);
  return server;
}
process.on('SIGINT', () => {
  stopAll();
  process.exit(130);
});

const samples = new Map<string, Sample[]>(scenarios.map((s) => [s.id, []]));
try {
  for (let round = 1; round <= ROUNDS; round++) {
    if (!ALONE && (round === 1 || FRESH)) {
      stopAll();
      await startAll();
    }
    // Every other round in reverse, so slow drift of the machine does not favour the servers measured first.
    const order = ALONE ? (round % 2 ? scenarios : [...scenarios].reverse()) : round % 2 ? servers : [...servers].reverse();
    for (const entry of order) {
      const server = 'child' in entry ? entry : await startAlone(entry);
      const sample = await measure(server, round);
      if (ALONE) stopAll();
      samples.get(server.scenario.id)?.push(sample);
      const flag = sample.non2xx || sample.errors ? `  ⚠ ${sample.non2xx} non-2xx, ${sample.errors} errors` : '';
      console.log(
        `  round ${round}/${ROUNDS}  ${server.scenario.id.padEnd(20)} ${Math.round(sample.reqPerSec).toString().padStart(7)} req/s ` +
          `${sample.cpuUsPerReq.toFixed(1).padStart(7)} µs/req  server ${sample.serverCpuPct.toFixed(0)}% load gen ${sample.loadGeneratorCpuPct.toFixed(0)}%${flag}`,
      );
    }
  }
} finally {
  stopAll();
}

// ---------- report ----------

interface Row {
  scenario: Scenario;
  reqPerSec: number;
  cpuUsPerReq: number;
  /** Medians over rounds of the per-round ratio to the framework's bare server (paired: same round). */
  reqPerSecVsBare?: number;
  addedCpuUsPerReq?: number;
  /** The user-mode part of addedCpuUsPerReq (paired per round too). */
  addedUserUsPerReq?: number;
}

const bareOf = (framework: Framework) => scenarios.find((s) => s.framework === framework && s.kind === 'bare');
const rows: Row[] = scenarios.map((scenario) => {
  const mine = samples.get(scenario.id) ?? [];
  const row: Row = { scenario, reqPerSec: median(mine.map((s) => s.reqPerSec)), cpuUsPerReq: median(mine.map((s) => s.cpuUsPerReq)) };
  const bare = bareOf(scenario.framework);
  if (bare && bare !== scenario) {
    const base = samples.get(bare.id) ?? [];
    const paired = mine.map((s) => [s, base.find((b) => b.round === s.round)] as const).filter((p): p is readonly [Sample, Sample] => p[1] !== undefined);
    row.reqPerSecVsBare = median(paired.map(([s, b]) => s.reqPerSec / b.reqPerSec));
    row.addedCpuUsPerReq = median(paired.map(([s, b]) => s.cpuUsPerReq - b.cpuUsPerReq));
    row.addedUserUsPerReq = median(paired.map(([s, b]) => s.userUsPerReq - b.userUsPerReq));
  }
  return row;
});

const fmtInt = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–');
const fmt = (n: number | undefined, digits: number, sign = false) => (n === undefined || !Number.isFinite(n) ? '' : `${sign && n >= 0 ? '+' : ''}${n.toFixed(digits)}`);
const table = [
  '| server | req/s | CPU µs/req | req/s vs bare | added CPU µs/req | of which user |',
  '| --- | ---: | ---: | ---: | ---: | ---: |',
  ...rows.map(
    (r) =>
      `| ${r.scenario.label} | ${fmtInt(r.reqPerSec)} | ${fmt(r.cpuUsPerReq, 1)} | ${fmt(r.reqPerSecVsBare, 2)} | ${fmt(r.addedCpuUsPerReq, 1, true)} | ${fmt(r.addedUserUsPerReq, 1, true)} |`,
  ),
].join('\n');

const env = {
  node: process.version,
  cpu: os.cpus()[0]?.model ?? '?',
  cores: os.availableParallelism(),
  loadAverage: os.loadavg(),
  pinned: pinned ?? null,
  versions: Object.fromEntries(['express', 'koa', '@koa/router', 'fastify', 'express-oauth2-jwt-bearer', '@fastify/jwt', 'autocannon', 'jose'].map((n) => [n, version(n)])),
};
const underLoad = env.loadAverage[0] !== undefined && env.loadAverage[0] > 1.5;
console.log(
  `\nMedians of ${ROUNDS} round(s) × ${DURATION} s, ${CONNECTIONS} connections, Node ${env.node}, ${env.cpu}, ` +
    `${pinned ? 'server and autocannon pinned to separate cores' : 'not pinned'}; ratios paired per round` +
    `${underLoad ? `; load average ${env.loadAverage[0]?.toFixed(1)}: other work was running, treat as preliminary` : ''}.\n`,
);
console.log(table);

const date = new Date().toISOString();
const outDir = fileURLToPath(new URL('../results/', import.meta.url));
mkdirSync(outDir, { recursive: true });
const outFile = `${outDir}http-${date.replace(/[:.]/g, '-')}.json`;
writeFileSync(
  outFile,
  `${JSON.stringify(
    {
      date,
      config: {
        rounds: ROUNDS,
        durationS: DURATION,
        warmupS: WARMUP,
        warmupRequests: WARMUP_REQUESTS,
        connections: CONNECTIONS,
        route: ROUTE,
        freshProcesses: FRESH,
        alone: ALONE,
      },
      env,
      results: rows.map((r) => ({
        id: r.scenario.id,
        label: r.scenario.label,
        framework: r.scenario.framework,
        kind: r.scenario.kind,
        tokenAlg: r.scenario.alg,
        reqPerSec: r.reqPerSec,
        cpuUsPerReq: r.cpuUsPerReq,
        reqPerSecVsBare: r.reqPerSecVsBare ?? null,
        addedCpuUsPerReq: r.addedCpuUsPerReq ?? null,
        addedUserUsPerReq: r.addedUserUsPerReq ?? null,
        samples: samples.get(r.scenario.id) ?? [],
      })),
      markdown: table,
    },
    null,
    2,
  )}\n`,
);
console.log(`\nwritten to ${outFile}`);
