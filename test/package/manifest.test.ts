// Checks package.json against itself: every exported subpath is reachable by TypeScript users on
// `moduleResolution: node` (node10) through typesVersions, and engines names the real Node floor.
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { entryPoints, exportsFor, tsconfigPathsFor, typesVersionsFor } from '../../scripts/entry-points.js';

const root = path.resolve(import.meta.dirname, '../..');
type Conditions = { import?: { types?: string }; require?: { types?: string } };
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  engines: { node: string };
  exports: Record<string, Conditions | string>;
  typesVersions?: Record<string, Record<string, string[]>>;
};

// Subpaths with types, derived from the exports map (package.json itself is plain JSON).
const typedSubpaths = Object.entries(pkg.exports)
  .filter((entry): entry is [string, Conditions] => entry[0] !== '.' && typeof entry[1] === 'object')
  .map(([subpath, conditions]) => ({ name: subpath.slice('./'.length), conditions }));

describe('package.json', () => {
  it('lists exports, typesVersions and tsconfig paths exactly as derived from entryPoints (run `npm run sync:entry-points`)', () => {
    const entries = entryPoints();
    const tsconfig = JSON.parse(readFileSync(path.join(root, 'tsconfig.json'), 'utf8')) as { compilerOptions: { paths?: unknown } };
    expect(pkg.exports).toEqual(exportsFor(entries));
    expect(pkg.typesVersions).toEqual(typesVersionsFor(entries));
    expect(tsconfig.compilerOptions.paths).toEqual(tsconfigPathsFor(entries));
  });

  it('points every entry point at a source file that exists', () => {
    for (const { specifier, source } of entryPoints()) expect([specifier, existsSync(path.join(root, source))]).toEqual([specifier, true]);
  });

  it('exports at least the documented subpaths with types', () => {
    expect(typedSubpaths.map((s) => s.name)).toEqual(expect.arrayContaining(['express', 'koa', 'fastify', 'fetch', 'adapter-kit', 'redis', 'testing']));
  });

  it("maps every typed exports subpath in typesVersions to that subpath's own declaration file", () => {
    const map = pkg.typesVersions?.['*'] ?? {};
    for (const { name, conditions } of typedSubpaths) {
      const declared = [conditions.require?.types, conditions.import?.types].filter(Boolean);
      expect([name, map[name]?.length]).toEqual([name, 1]);
      expect(declared).toContain(map[name]?.[0]);
    }
    expect(Object.keys(map).sort()).toEqual(typedSubpaths.map((s) => s.name).sort());
  });

  it('points typesVersions at files the build produces', () => {
    if (!existsSync(path.join(root, 'dist/index.d.cts'))) return; // the build runs before the suite in `npm test`
    for (const [name, [file]] of Object.entries(pkg.typesVersions?.['*'] ?? {})) {
      expect([name, existsSync(path.join(root, file as string))]).toEqual([name, true]);
    }
  });

  it('requires the Node versions whose require() loads ESM-only jose (20.19, 22.12)', () => {
    expect(pkg.engines.node).toBe('^20.19.0 || >=22.12.0');
  });
});
