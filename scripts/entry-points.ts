// The package's entry points, declared once: package.json `entryPoints` maps each public subpath to its source
// file. Everything else that lists them is derived from it: tsup's entries and vitest's aliases at load time;
// package.json `exports` and `typesVersions` and tsconfig `paths` by `npm run sync:entry-points` (a test fails
// while they disagree). Adding an entry point is one line in `entryPoints` plus that command.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** One public entry point. */
export interface EntryPoint {
  /** The exports key: `.` or `./express`. */
  subpath: string;
  /** What users import: `token-guard` or `token-guard/express`. */
  specifier: string;
  /** Base name of its files in dist/: `index`, `express`. */
  name: string;
  /** Its source file, relative to the root: `src/adapters/express.ts`. */
  source: string;
}

type Json = Record<string, unknown>;

function readJson(file: string): Json {
  return JSON.parse(readFileSync(path.join(root, file), 'utf8')) as Json;
}

/** The entry points, in the order package.json declares them. */
export function entryPoints(pkg: Json = readJson('package.json')): EntryPoint[] {
  const declared = pkg['entryPoints'] as Record<string, string> | undefined;
  if (!declared || typeof declared !== 'object') throw new Error('package.json: missing "entryPoints" (subpath → source file)');
  const name = String(pkg['name']);
  return Object.entries(declared).map(([subpath, source]) => {
    if (subpath !== '.' && !/^\.\/[a-z][a-z0-9-]*$/.test(subpath)) throw new Error(`package.json entryPoints: bad subpath ${subpath}`);
    const base = subpath === '.' ? 'index' : subpath.slice(2);
    return { subpath, specifier: subpath === '.' ? name : `${name}/${base}`, name: base, source };
  });
}

/** package.json `exports`: ESM and CJS, each with its own declaration file listed first (what attw checks). */
export function exportsFor(entries: EntryPoint[]): Json {
  const out: Json = {};
  for (const { subpath, name } of entries) {
    out[subpath] = {
      import: { types: `./dist/${name}.d.ts`, default: `./dist/${name}.js` },
      require: { types: `./dist/${name}.d.cts`, default: `./dist/${name}.cjs` },
    };
  }
  out['./package.json'] = './package.json';
  return out;
}

/** package.json `typesVersions`: subpaths for TypeScript users on `moduleResolution: node` (node10). */
export function typesVersionsFor(entries: EntryPoint[]): Json {
  const map: Json = {};
  for (const { subpath, name } of entries) if (subpath !== '.') map[name] = [`./dist/${name}.d.cts`];
  return { '*': map };
}

/** tsconfig `paths`: examples and tests import the package by name and type-check against the sources. */
export function tsconfigPathsFor(entries: EntryPoint[]): Json {
  const out: Json = {};
  for (const { specifier, source } of entries) out[specifier] = [`./${source}`];
  return out;
}

/** tsup `entry`: dist base name → source file. */
export function tsupEntries(entries: EntryPoint[] = entryPoints()): Record<string, string> {
  return Object.fromEntries(entries.map((e) => [e.name, e.source]));
}

/** Rewrites the derived lists in package.json and tsconfig.json; returns the files it changed. */
export function syncEntryPoints(): string[] {
  const changed: string[] = [];
  const pkg = readJson('package.json');
  const entries = entryPoints(pkg);
  const nextPkg = { ...pkg, exports: exportsFor(entries), typesVersions: typesVersionsFor(entries) };
  if (JSON.stringify(nextPkg) !== JSON.stringify(pkg)) {
    writeFileSync(path.join(root, 'package.json'), `${JSON.stringify(nextPkg, null, 2)}\n`);
    changed.push('package.json');
  }
  const tsconfig = readJson('tsconfig.json');
  const options = tsconfig['compilerOptions'] as Json;
  const paths = tsconfigPathsFor(entries);
  if (JSON.stringify(options['paths']) !== JSON.stringify(paths)) {
    options['paths'] = paths;
    writeFileSync(path.join(root, 'tsconfig.json'), `${JSON.stringify(tsconfig, null, 2)}\n`);
    changed.push('tsconfig.json');
  }
  return changed;
}
