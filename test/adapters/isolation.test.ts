// Against the BUILT package: loading an entry point (import and require, through the package's own
// exports) pulls in no framework but its own. Frameworks are optional peers; a stray import would
// make `token-guard/koa` crash in an app that has no Express installed.
import { beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { entryPoints } from '../../scripts/entry-points.js';

const root = path.resolve(import.meta.dirname, '../..');
const probes = path.join(import.meta.dirname, 'isolation');

/** Every optional peer package, as it appears under node_modules. */
const PEERS = ['express', 'koa', '@koa/router', 'fastify', 'ioredis', '@opentelemetry/api'];

/** The peers an entry point may load (its own framework); every other peer is forbidden. Not listed: none. */
const OWN_PEERS: Record<string, string[]> = {
  'token-guard/express': ['express'],
  'token-guard/koa': ['koa', '@koa/router'],
  'token-guard/fastify': ['fastify'],
  'token-guard/redis': ['ioredis'],
  'token-guard/otel': ['@opentelemetry/api'],
};

/** Every entry point from package.json `entryPoints` → the peers it may load. */
const ENTRIES: Record<string, string[]> = Object.fromEntries(entryPoints().map((e) => [e.specifier, OWN_PEERS[e.specifier] ?? []]));

/** Runs a probe in a fresh node with the repo root as cwd; resolves to its exit code and output. */
function probe(kind: 'cjs' | 'mjs', entry: string, forbidden: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(probes, `probe.${kind}`), entry, JSON.stringify(forbidden)], { cwd: root, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) || 1 : 0, out: `${stdout}${stderr}` });
    });
  });
}

const cases = Object.entries(ENTRIES).flatMap(([entry, own]) => (['mjs', 'cjs'] as const).map((kind) => ({ entry, kind, forbidden: PEERS.filter((p) => !own.includes(p)) })));

describe('entry point isolation (dist)', () => {
  beforeAll(() => {
    if (!existsSync(path.join(root, 'dist/koa.js')) || !existsSync(path.join(root, 'dist/koa.cjs'))) {
      throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
    }
  });

  it('knows the peers of entry points that exist', () => {
    expect(Object.keys(OWN_PEERS).filter((entry) => !(entry in ENTRIES))).toEqual([]);
  });

  it.each(cases)('$entry via $kind loads none of $forbidden', async ({ entry, kind, forbidden }) => {
    const { code, out } = await probe(kind, entry, forbidden);
    expect({ code, out: out.trim() }).toEqual({ code: 0, out: 'ok' });
  });

  // The probes must be able to fail: loading Express itself is caught by both.
  it.each(['mjs', 'cjs'] as const)('the %s probe notices a framework being loaded', async (kind) => {
    const { code, out } = await probe(kind, 'express', ['express']);
    expect(code).not.toBe(0);
    expect(out).toMatch(/isolation: .*express/);
  });

  it.each(['mjs', 'cjs'] as const)('the %s probe notices a framework loaded by a dependency, not by name', async (kind) => {
    // Express requires its dependency `router` internally (CommonJS, another package folder): the probes
    // see transitive loads too, not only the name that was asked for.
    const { code, out } = await probe(kind, 'express', ['router']);
    expect(code).not.toBe(0);
    expect(out).toMatch(/isolation: .*router/);
  });
});
