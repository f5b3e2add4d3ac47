// `npm run bench:http:profile`: one server of bench/http/scenarios.ts under `node --cpu-prof`, loaded by autocannon,
// then the functions that took the most self time, so that what an adapter spends per request can be read by name.
// Build first (`npm run build`): the server imports dist/, as in `npm run bench:http`.
//
// Env: SCENARIO (fastify-guard), DURATION seconds under load (8), CONNECTIONS (50), TOP (30 rows), INTERVAL (sampling µs, 1000), PIN=0 to skip taskset.
// The .cpuprofile is kept under bench/results/profiles/ (open it in Chrome DevTools or speedscope for the call tree).
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { SignJWT, exportJWK, exportSPKI, generateKeyPair } from 'jose';
import ts from 'typescript';
import { AUDIENCE, ISSUER, ROUTE, SCENARIOS, SCOPE, type BenchKeys, type FromServer } from './scenarios.js';

const id = process.env.SCENARIO ?? 'fastify-guard';
const scenario = SCENARIOS.find((s) => s.id === id);
if (!scenario) throw new Error(`SCENARIO=${id} is none of ${SCENARIOS.map((s) => s.id).join(', ')}`);
const DURATION = Number(process.env.DURATION ?? 8);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 50);
const TOP = Number(process.env.TOP ?? 30);
/** Sampling interval in µs (V8's default is 1000): finer for a closer look at short functions. */
const INTERVAL = Number(process.env.INTERVAL ?? 1000);

const rs = await generateKeyPair('RS256', { extractable: true });
const keys: BenchKeys = {
  rsPublicJwk: { ...(await exportJWK(rs.publicKey)), kid: 'bench-rs', alg: 'RS256', use: 'sig' },
  rsPublicPem: await exportSPKI(rs.publicKey),
  hsSecret: randomBytes(32).toString('base64url'),
};
const claims = new SignJWT({ scope: `${SCOPE} profile` }).setIssuer(ISSUER).setAudience(AUDIENCE).setSubject('alice').setIssuedAt().setExpirationTime('6h');
const token =
  scenario.alg === 'RS256'
    ? await claims.setProtectedHeader({ alg: 'RS256', kid: 'bench-rs' }).sign(rs.privateKey)
    : await claims.setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(keys.hsSecret));

// The same plain-JavaScript build of the server as run.ts makes.
const root = fileURLToPath(new URL('../../', import.meta.url));
const buildDir = join(root, 'bench/results/.build');
for (const file of ['bench/http/server.ts', 'bench/http/scenarios.ts', 'examples/fetch/bridge.ts']) {
  const { outputText } = ts.transpileModule(readFileSync(join(root, file), 'utf8'), {
    fileName: file,
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
  });
  const out = join(buildDir, file.replace(/\.ts$/, '.js'));
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, outputText);
}

const profileDir = join(root, 'bench/results/profiles');
mkdirSync(profileDir, { recursive: true });
const name = `${id}-${new Date().toISOString().replace(/[:.]/g, '-')}.cpuprofile`;
const node = [
  process.execPath,
  '--cpu-prof',
  `--cpu-prof-interval=${INTERVAL}`,
  `--cpu-prof-dir=${profileDir}`,
  `--cpu-prof-name=${name}`,
  join(buildDir, 'bench/http/server.js'),
];
const canPin =
  process.env.PIN !== '0' &&
  (() => {
    try {
      execFileSync('taskset', ['-c', '0', 'true']);
      return true;
    } catch {
      return false;
    }
  })();
const [command, ...args] = canPin ? ['taskset', '-c', '0', ...node] : node;
const child = spawn(command as string, args, {
  stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  env: { ...process.env, BENCH_SCENARIO: id, BENCH_KEYS: JSON.stringify(keys) },
});
const port = await new Promise<number>((resolve, reject) => {
  child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  child.on('message', (m: FromServer) => {
    if (m.type === 'ready') resolve(m.port);
    else if (m.type === 'error') reject(new Error(m.message));
  });
});
const result = await autocannon({ url: `http://127.0.0.1:${port}${ROUTE}`, connections: CONNECTIONS, duration: DURATION, headers: { authorization: `Bearer ${token}` } });
console.log(`${id}: ${result.requests.total} requests in ${DURATION} s, ${result.non2xx} non-2xx`);
// On disconnect the server exits, and --cpu-prof writes the profile on exit.
await new Promise((resolve) => {
  child.once('exit', resolve);
  child.disconnect();
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
