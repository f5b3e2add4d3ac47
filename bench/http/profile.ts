// `npm run bench:http:profile`: one server of bench/http/scenarios.ts under `node --cpu-prof`, loaded by autocannon,
// then the functions that took the most self time, so that what an adapter spends per request can be read by name.
// Build first (`npm run build`): the server imports dist/, as in `npm run bench:http`.
//
// Env: SCENARIO (fastify-guard), DURATION seconds under load (8), CONNECTIONS (50), TOP (30 rows), INTERVAL (sampling
// µs, 1000), PIN=0 to skip taskset.
// The .cpuprofile is kept under bench/results/profiles/ (open it in Chrome DevTools or speedscope for the call tree).
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { load, sanityCheck, startServer } from './harness.js';
import { SCENARIOS } from './scenarios.js';

const id = process.env.SCENARIO ?? 'fastify-guard';
const scenario = SCENARIOS.find((s) => s.id === id);
if (!scenario) throw new Error(`SCENARIO=${id} is none of ${SCENARIOS.map((s) => s.id).join(', ')}`);
const DURATION = Number(process.env.DURATION ?? 8);
const TOP = Number(process.env.TOP ?? 30);
/** Sampling interval in µs (V8's default is 1000): finer for a closer look at short functions. */
const INTERVAL = Number(process.env.INTERVAL ?? 1000);

const root = fileURLToPath(new URL('../../', import.meta.url));
const profileDir = join(root, 'bench/results/profiles');
mkdirSync(profileDir, { recursive: true });
const name = `${id}-${new Date().toISOString().replace(/[:.]/g, '-')}.cpuprofile`;
// The server of bench:http (harness.ts: keys, plain-JavaScript build, pinning), under --cpu-prof.
const server = await startServer(scenario, undefined, [], ['--cpu-prof', `--cpu-prof-interval=${INTERVAL}`, `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${name}`]);
await sanityCheck(server);
const result = await load(server, { duration: DURATION });
console.log(`${id}: ${result.requests.total} requests in ${DURATION} s, ${result.non2xx} non-2xx`);
// On disconnect the server exits, and --cpu-prof writes the profile on exit.
await new Promise((resolve) => {
  server.child.once('exit', resolve);
  server.child.disconnect();
});

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
const file = readdirSync(profileDir).find((f) => f === name);
if (!file) throw new Error(`no profile written to ${profileDir}`);
const profile = JSON.parse(readFileSync(join(profileDir, file), 'utf8')) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const label = (n: ProfileNode): string => {
  const where = n.callFrame.url.replace(/^.*\/(node_modules|dist)\//, '$1/').replace(/^file:\/\/.*\//, '');
  return `${n.callFrame.functionName || '(anonymous)'}  ${where}:${n.callFrame.lineNumber + 1}`;
};
// Self time per node, from the sampled time deltas.
const selfUs = new Map<number, number>();
for (let i = 0; i < profile.samples.length; i++) {
  const nodeId = profile.samples[i] as number;
  selfUs.set(nodeId, (selfUs.get(nodeId) ?? 0) + (profile.timeDeltas[i] ?? 0));
}
// Per function: self time, and total time (self plus callees, counted once where a function calls itself).
const self = new Map<string, number>();
const totalUs = new Map<string, number>();
let all = 0;
const walk = (id: number, open: Set<string>): number => {
  const n = nodes.get(id);
  if (!n) return 0;
  const key = label(n);
  const mine = selfUs.get(id) ?? 0;
  all += mine;
  self.set(key, (self.get(key) ?? 0) + mine);
  const nested = open.has(key);
  if (!nested) open.add(key);
  let sum = mine;
  for (const child of n.children ?? []) sum += walk(child, open);
  if (!nested) {
    open.delete(key);
    totalUs.set(key, (totalUs.get(key) ?? 0) + sum);
  }
  return sum;
};
walk(profile.nodes[0]?.id ?? 1, new Set());
const perRequest = (us: number) => (us / result.requests.total).toFixed(2).padStart(7);
const table = (title: string, rows: Map<string, number>, filter: (key: string) => boolean) => {
  console.log(`\n${title}`);
  for (const [key, us] of [...rows]
    .filter(([k]) => filter(k))
    .sort((a, b) => b[1] - a[1])
    .slice(0, TOP))
    console.log(`${perRequest(us)}  ${key}`);
};
console.log(`µs per request (sampled: ${(all / 1e6).toFixed(1)} s in the profile, idle included)`);
table('self time, every function:', self, () => true);
// token-guard's own functions (dist/), with what they call: where an adapter and the guard spend their time.
table("total time, token-guard's functions:", totalUs, (key) => key.includes(' dist/'));
table("self time, token-guard's functions:", self, (key) => key.includes(' dist/'));
console.log(`\nprofile: ${join(profileDir, file)}`);
