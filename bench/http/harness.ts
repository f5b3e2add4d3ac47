// What bench:http's scripts share (run.ts, paired.ts): pinning, the keys and tokens, the server processes
// (bench/http/server.ts, run as plain JavaScript against dist/), their sanity check and the load generator.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { SignJWT, exportJWK, exportSPKI, generateKeyPair } from 'jose';
import ts from 'typescript';
import { AUDIENCE, BODY, ISSUER, ROUTE, SCOPE, type BenchKeys, type FromServer, type Scenario, type ToServer } from './scenarios.js';

/** An integer option from the environment, or `fallback`. */
export const int = (name: string, fallback: number, min: number): number => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be an integer ≥ ${min}, got ${raw}`);
  return value;
};

/** Load-generator connections (CONNECTIONS, 50). */
export const CONNECTIONS = int('CONNECTIONS', 50, 1);

// ---------- pinning: server processes on one core, this process (autocannon) on another ----------

function allowedCpus(): number[] {
  try {
    // "pid 123's current affinity list: 0-3,6"
    const list =
      execFileSync('taskset', ['-cp', String(process.pid)], { encoding: 'utf8' })
        .split(':')
        .pop()
        ?.trim() ?? '';
    return list.split(',').flatMap((part) => {
      const [a, b] = part.split('-').map(Number) as [number, number | undefined];
      return b === undefined ? [a] : Array.from({ length: b - a + 1 }, (_, i) => a + i);
    });
  } catch {
    return [];
  }
}

const cpus = process.env.PIN === '0' ? [] : allowedCpus();
/** The server's core and the load generator's, where taskset works and PIN is not 0. */
export const pinned = cpus.length >= 2 ? { server: cpus[0] as number, loadGenerator: cpus[1] as number } : undefined;
if (pinned) execFileSync('taskset', ['-a', '-cp', String(pinned.loadGenerator), String(process.pid)], { stdio: 'ignore' });

// ---------- keys and the one token each request carries ----------

const rs = await generateKeyPair('RS256', { extractable: true });
/** Key material every server gets. */
export const keys: BenchKeys = {
  rsPublicJwk: { ...(await exportJWK(rs.publicKey)), kid: 'bench-rs', alg: 'RS256', use: 'sig' },
  rsPublicPem: await exportSPKI(rs.publicKey),
  hsSecret: randomBytes(32).toString('base64url'),
};
const claims = () => new SignJWT({ scope: `${SCOPE} profile` }).setIssuer(ISSUER).setAudience(AUDIENCE).setSubject('alice').setIssuedAt().setExpirationTime('6h');
/** The one token per algorithm each request carries. */
export const tokens = {
  RS256: await claims().setProtectedHeader({ alg: 'RS256', kid: 'bench-rs' }).sign(rs.privateKey),
  HS256: await claims().setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(keys.hsSecret)),
};

// ---------- server processes ----------

/** A server process under test. */
export interface Server {
  scenario: Scenario;
  child: ChildProcess;
  url: string;
  cpu(): Promise<{ us: number; userUs: number; rssBytes: number }>;
  /** With `arms` (paired.ts): switches the server to the app of `arms[index]`, answered once done. */
  arm(index: number): Promise<void>;
}

// Servers run as plain JavaScript on plain node, without tsx's loader: transpile them (types only, no bundling) into a
// mirror of the repository's layout, where `token-guard` still resolves to the package itself, i.e. to dist/.
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
const serverEntry = join(buildDir, 'bench/http/server.js');

/** SERVER_NODE_ARGS='--single-threaded-gc' (say): node options for every bench server (NODE_OPTIONS refuses some of them). */
const NODE_ARGS = (process.env.SERVER_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);

/**
 * Starts `scenario`'s server, or with `arms` one server that serves each arm's app in turn (`arm(i)`); `wrapper`
 * is a command to run node under (valgrind, for instructions.ts), `nodeArgs` node's own options.
 */
export function startServer(scenario: Scenario, arms?: readonly Scenario[], wrapper: readonly string[] = [], nodeArgs: readonly string[] = []): Promise<Server> {
  const node = [...wrapper, process.execPath, ...NODE_ARGS, ...nodeArgs, serverEntry];
  const [command, ...args] = pinned ? ['taskset', '-c', String(pinned.server), ...node] : node;
  const child = spawn(command as string, args, {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, BENCH_SCENARIO: scenario.id, BENCH_KEYS: JSON.stringify(keys), ...(arms && { BENCH_ARMS: arms.map((a) => a.id).join(',') }) },
  });
  let seq = 0;
  const waiting = new Map<number, (m: Extract<FromServer, { type: 'cpu' }>) => void>();
  const switching = new Map<number, () => void>();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => {
        child.kill();
        reject(new Error(`${scenario.id}: not ready after ${wrapper.length ? 600 : 120} s`));
      },
      wrapper.length ? 600_000 : 120_000,
    );
    child.once('exit', (code) => reject(new Error(`${scenario.id}: server exited with ${code} before it was ready`)));
    child.on('message', (m: FromServer) => {
      if (m.type === 'cpu') waiting.get(m.seq)?.(m);
      else if (m.type === 'armed') switching.get(m.seq)?.();
      else if (m.type === 'error') reject(new Error(`${scenario.id}: ${m.message}`));
      else {
        clearTimeout(timer);
        resolve({
          scenario,
          child,
          url: `http://127.0.0.1:${m.port}${ROUTE}`,
          cpu: () =>
            new Promise((done) => {
              const id = ++seq;
              waiting.set(id, (r) => {
                waiting.delete(id);
                done({ us: r.userUs + r.systemUs, userUs: r.userUs, rssBytes: r.rssBytes });
              });
              child.send({ type: 'cpu', seq: id } satisfies ToServer);
            }),
          arm: (index) =>
            new Promise((done) => {
              const id = ++seq;
              switching.set(id, () => {
                switching.delete(id);
                done();
              });
              child.send({ type: 'arm', seq: id, index } satisfies ToServer);
            }),
        });
      }
    });
  });
}

/** Fails the run unless the server answers the token with the body, and (when it guards) refuses no token. */
export async function sanityCheck(server: Server, scenario: Scenario = server.scenario): Promise<void> {
  const token = tokens[scenario.alg];
  const ok = await fetch(server.url, { headers: { authorization: `Bearer ${token}` } });
  const body = await ok.text();
  if (ok.status !== 200 || body !== JSON.stringify(BODY)) throw new Error(`${scenario.id}: with the token got ${ok.status} ${body.slice(0, 200)}`);
  // A stub guard (or an empty layer) allows everything: only a real guard must refuse a request without a token.
  if (scenario.kind === 'bare' || scenario.kind === 'layer' || scenario.kind === 'stub') return;
  const refused = await fetch(server.url);
  await refused.arrayBuffer();
  if (refused.status !== 401) throw new Error(`${scenario.id}: without a token got ${refused.status}, expected 401`);
}

/** autocannon against `server` with its scenario's token, for a duration or a number of requests. */
export const load = (server: Server, length: { duration: number } | { amount: number }) =>
  autocannon({
    url: server.url,
    connections: CONNECTIONS,
    ...length,
    headers: { authorization: `Bearer ${tokens[server.scenario.alg]}` },
  });

/** The median of the finite values (NaN for none). */
export const median = (values: number[]): number => {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

/** An installed package's version, or ?. */
export const version = (name: string): string => {
  try {
    return (JSON.parse(readFileSync(new URL(`../../node_modules/${name}/package.json`, import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
};
