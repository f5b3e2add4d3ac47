// Packs the library as npm would publish it, installs the tarball in a scratch folder, and loads every
// entry point through its exports map with both import and require.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { entryPoints } from '../../scripts/entry-points.js';

const root = path.resolve(import.meta.dirname, '../..');
// Inside the repo so that dependencies (jose, express…) resolve from its node_modules, as after an install.
let scratch: string;

// Every entry point from package.json `entryPoints`, with the runtime names its source module exports: the
// packed package must expose exactly those, through import and require.
const ENTRY_EXPORTS: Record<string, string[]> = Object.fromEntries(
  await Promise.all(entryPoints().map(async (e) => [e.specifier, Object.keys((await import(path.join(root, e.source))) as object).sort()] as const)),
);

function node(file: string, source: string): string {
  writeFileSync(path.join(scratch, file), source);
  return execFileSync(process.execPath, [file], { cwd: scratch, encoding: 'utf8', timeout: 30_000 });
}

beforeAll(() => {
  if (!existsSync(path.join(root, 'dist/index.js'))) execFileSync('npx', ['tsup'], { cwd: root, stdio: 'ignore' });
  mkdirSync(path.join(root, 'node_modules/.cache'), { recursive: true });
  scratch = mkdtempSync(path.join(root, 'node_modules/.cache/pack-'));
  const tarball = execFileSync('npm', ['pack', '--silent', '--pack-destination', scratch], { cwd: root, encoding: 'utf8' }).trim().split('\n').pop() as string;
  const dest = path.join(scratch, 'node_modules/token-guard');
  mkdirSync(dest, { recursive: true });
  execFileSync('tar', ['-xzf', path.join(scratch, tarball), '-C', dest, '--strip-components=1']);
}, 120_000);

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('the packed package', () => {
  const packedFiles = () =>
    execFileSync('find', ['.', '-type', 'f'], { cwd: path.join(scratch, 'node_modules/token-guard'), encoding: 'utf8' })
      .split('\n')
      .filter(Boolean);

  it("ships only dist, the docs' Markdown, README, CHANGELOG and package.json", () => {
    const files = packedFiles();
    expect(files.filter((f) => !/^\.\/(dist\/|docs\/.*\.md$|README\.md$|CHANGELOG\.md$|package\.json$|LICENSE$)/.test(f))).toEqual([]);
    expect(files).toContain('./dist/index.d.ts');
    expect(files).toContain('./dist/index.d.cts');
  });

  it('ships README.md, CHANGELOG.md, package.json (and LICENSE when there is one), and none of test/, bench/, examples/', () => {
    const files = packedFiles();
    expect(files).toEqual(expect.arrayContaining(['./README.md', './CHANGELOG.md', './package.json', './dist/index.js', './dist/index.cjs']));
    if (existsSync(path.join(root, 'LICENSE'))) expect(files).toContain('./LICENSE');
    expect(files.filter((f) => /^\.\/(test|bench|examples|src|scripts|\.snippets)\//.test(f))).toEqual([]);
  });

  // Regression: the README links ~60 pages as `](docs/…)`; without docs/ in the package they were dead for npm users.
  it('ships every docs/ page the README links to, and no generated API reference (docs/api/)', () => {
    const files = packedFiles();
    const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
    const linked = [...new Set([...readme.matchAll(/\]\((docs\/[^)#\s]+)/g)].map((m) => `./${m[1]}`))];
    expect(linked.length).toBeGreaterThan(20);
    expect(linked.filter((f) => !files.includes(f))).toEqual([]);
    expect(files.filter((f) => f.startsWith('./docs/api/'))).toEqual([]);
  });

  it('knows the documented entry points and their main exports', () => {
    expect(ENTRY_EXPORTS['token-guard']).toEqual(
      expect.arrayContaining([
        'createGuard',
        'MemoryStore',
        'issueApiKey',
        'hashApiKey',
        'parseApiKey',
        'TokenGuardError',
        'AccessDeniedError',
        'PolicyError',
        'StoreError',
        'REASONS',
        'denialResponse',
      ]),
    );
    expect(ENTRY_EXPORTS['token-guard/express']).toEqual(expect.arrayContaining(['tokenGuard', 'requireScopes']));
    expect(ENTRY_EXPORTS['token-guard/koa']).toEqual(expect.arrayContaining(['tokenGuard', 'requireScopes']));
    expect(ENTRY_EXPORTS['token-guard/fastify']).toEqual(expect.arrayContaining(['tokenGuard', 'requireScopes']));
    expect(ENTRY_EXPORTS['token-guard/fetch']).toEqual(expect.arrayContaining(['guardFetch', 'requireScopes']));
    expect(ENTRY_EXPORTS['token-guard/adapter-kit']).toEqual(expect.arrayContaining(['nodeGuardRequest', 'webGuardRequest', 'outcomeOf', 'resolveGuard', 'scopesFromArgs']));
    expect(ENTRY_EXPORTS['token-guard/redis']).toEqual(expect.arrayContaining(['RedisStore']));
    expect(ENTRY_EXPORTS['token-guard/testing']).toEqual(expect.arrayContaining(['storeConformance']));
  });

  it.each(Object.entries(ENTRY_EXPORTS))('%s loads with import and with require and has the named exports of its source', (entry, names) => {
    const list = `(m) => JSON.stringify(Object.keys(m).filter((n) => n !== 'default' && n !== 'module.exports').sort())`;
    const esm = node('check.mjs', `const m = await import(${JSON.stringify(entry)}); console.log((${list})(m));`);
    expect(JSON.parse(esm)).toEqual(names);
    const cjs = node('check.cjs', `const m = require(${JSON.stringify(entry)}); console.log((${list})(m));`);
    expect(JSON.parse(cjs)).toEqual(names);
  });

  it('keeps one error class across entry points within each module system', () => {
    for (const [file, load] of [
      ['identity.cjs', 'require'],
      ['identity.mjs', 'await import'],
    ] as const) {
      const out = node(
        file,
        `
        const core = ${load}('token-guard');
        const { tokenGuard } = ${load}('token-guard/express');
        const mw = tokenGuard({ apiKeys: { prefix: 'tg_' }, errors: 'throw' });
        const req = { method: 'GET', originalUrl: '/x', url: '/x', headers: {}, rawHeaders: [], socket: { remoteAddress: '127.0.0.1' } };
        mw(req, { setHeader() {} }, (err) => console.log(JSON.stringify([err instanceof core.TokenGuardError, err instanceof core.AccessDeniedError, err.code])));
      `,
      );
      expect(JSON.parse(out)).toEqual([true, true, 'token.missing']);
    }
  });

  it('resolves types for every entry point under node16 resolution', () => {
    const pkg = JSON.parse(node('pkg.cjs', `console.log(JSON.stringify(require('token-guard/package.json').exports))`)) as Record<string, unknown>;
    for (const entry of Object.keys(ENTRY_EXPORTS)) {
      const key = entry === 'token-guard' ? '.' : `./${entry.slice('token-guard/'.length)}`;
      expect(pkg[key]).toMatchObject({ import: { types: expect.stringMatching(/\.d\.ts$/) }, require: { types: expect.stringMatching(/\.d\.cts$/) } });
    }
  });
});
