// Type-checks every ```ts / ```js code block of README.md and docs/**/*.md under the project's strict
// tsconfig, against the package's own source (tsconfig `paths` map `token-guard/*` to src/), and runs the
// blocks marked `run`. Usage: `npm run check:snippets` (CI runs it). Exit code 1 on any error.
//
// The fence's info string says how a block is checked:
//   ```ts               a whole module: it must compile on its own (imports included)
//   ```ts fragment      a piece of an app: names it uses but does not declare (app, guard, policy, req, …) are
//                       declared from FRAGMENT_CONTEXT below, so the rest of it is checked as strictly
//   ```ts continues     the same module as the file's previous checked block (an example built up in steps)
//   ```ts isolated      compiled as its own program (for blocks that augment a module's types, e.g. ExpressAuthShape)
//   ```ts run           also executed with tsx after the type check (cheap, self-contained blocks only)
//   ```ts no-check      not compiled; say next to it why (a runtime or a package this repo does not install)
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
// In the repo, not under node_modules: tsx applies tsconfig `paths` only to files outside node_modules.
const outDir = path.join(root, '.snippets');

/**
 * Declarations a `fragment` block may lean on, each added only when the block uses the name (not as a property:
 * `x.name`; a spread `...name` counts) and does not declare it.
 */
const FRAGMENT_CONTEXT: Record<string, string> = {
  express: "import express from 'express';",
  app: "declare const app: import('express').Express;",
  router: "declare const router: import('@koa/router').default;",
  guard: "declare const guard: import('token-guard').Guard;",
  policy: "declare const policy: import('token-guard').TokenGuardPolicy;",
  jwt: "declare const jwt: NonNullable<import('token-guard').TokenGuardPolicy['jwt']>;",
  rules: "declare const rules: NonNullable<import('token-guard').TokenGuardPolicy['rules']>;",
  store: "declare const store: import('token-guard').MemoryStore;",
  req: "declare const req: import('express').Request;",
  request: "declare const request: import('token-guard').GuardRequest;",
  expiresAt: 'declare const expiresAt: Date;',
  tokenGuard: "import { tokenGuard } from 'token-guard/express';",
  requireScopes: "import { requireScopes } from 'token-guard/express';",
  createGuard: "import { createGuard } from 'token-guard';",
  issueApiKey: "import { issueApiKey } from 'token-guard';",
  MemoryStore: "import { MemoryStore } from 'token-guard';",
  TokenGuardPolicy: "import type { TokenGuardPolicy } from 'token-guard';",
  describe: "import { describe } from 'vitest';",
  it: "import { it } from 'vitest';",
  expect: "import { expect } from 'vitest';",
  // Stand-ins for the reader's own stores and helpers in docs/stores.md.
  MyStore:
    "type MyStore = import('token-guard').TokenStore & { dropNamespace(): Promise<void> }; declare const MyStore: new (options: { namespace?: string; url?: string }) => MyStore;",
  RedisCounters: "declare const RedisCounters: new (client: unknown, prefix: string) => import('token-guard/testing').CountersStore;",
  PgKeys: "type PgKeys = import('token-guard/testing').KeysStore & { drop(): Promise<void> }; declare const PgKeys: new (pool: unknown, schema: string) => PgKeys;",
  client: 'declare const client: unknown;',
  pool: 'declare const pool: unknown;',
  randomPrefix: 'declare function randomPrefix(): string;',
  randomSchema: 'declare function randomSchema(): string;',
};

interface Snippet {
  file: string; // relative to root
  line: number; // line of the first code line in the Markdown file
  lang: 'ts' | 'js';
  flags: Set<string>;
  code: string;
}

function markdownFiles(): string[] {
  const out = ['README.md'];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (rel !== path.join('docs', 'api')) walk(rel);
      } else if (entry.name.endsWith('.md')) out.push(rel);
    }
  };
  walk('docs');
  return out;
}

const FENCE = /^```(ts|typescript|js|javascript)\b(.*)$/;

function extract(file: string): Snippet[] {
  const lines = readFileSync(path.join(root, file), 'utf8').split('\n');
  const found: Snippet[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i] as string);
    if (!open) continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && !/^```\s*$/.test(lines[end] as string)) end++;
    const lang = open[1]?.startsWith('t') ? 'ts' : 'js';
    found.push({ file, line: start + 1, lang, flags: new Set((open[2] ?? '').trim().split(/\s+/).filter(Boolean)), code: lines.slice(start, end).join('\n') });
    i = end;
  }
  return found;
}

/** The names a block declares itself (so the fragment context does not declare them twice). */
function declaredNames(code: string): Set<string> {
  const names = new Set<string>();
  for (const m of code.matchAll(/\b(?:const|let|var|function|class|type|interface)\s+([A-Za-z_$][\w$]*)/g)) names.add(m[1] as string);
  for (const m of code.matchAll(/\b(?:const|let|var)\s*\{([^}]*)\}/g)) for (const n of (m[1] as string).split(',')) names.add(n.split(':').pop()?.trim() ?? '');
  for (const m of code.matchAll(/import\s+(?:type\s+)?([\w$]+)?\s*,?\s*(?:\{([^}]*)\})?\s*from/g)) {
    if (m[1]) names.add(m[1]);
    for (const n of (m[2] ?? '').split(',')) names.add(n.replace(/^\s*type\s+/, '').split(/\s+as\s+/).pop()?.trim() ?? '');
  }
  return names;
}

function preludeFor(code: string): string[] {
  const own = declaredNames(code);
  const lines: string[] = [];
  for (const [name, declaration] of Object.entries(FRAGMENT_CONTEXT)) {
    if (!own.has(name) && new RegExp(`(?<![\\w$'])(?:(?<=\\.\\.\\.)|(?<!\\.))${name.replace('$', '\\$')}\\b`).test(code) && !lines.includes(declaration)) lines.push(declaration);
  }
  return lines;
}

/** One compiled module: a block and the blocks that continue it, each starting at `at` (0-based line in the module). */
interface Written {
  snippet: Snippet;
  path: string;
  parts: { snippet: Snippet; at: number }[];
}

/** Joins each block with the `continues` blocks after it (same file), in order. */
function units(snippets: Snippet[]): Snippet[][] {
  const out: Snippet[][] = [];
  for (const s of snippets) {
    const last = out[out.length - 1];
    if (s.flags.has('continues') && last && last[0]?.file === s.file) last.push(s);
    else out.push([s]);
  }
  return out;
}

function write(snippets: Snippet[], group: string): Written[] {
  const dir = path.join(outDir, group);
  mkdirSync(dir, { recursive: true });
  return units(snippets).map((unit, n) => {
    const first = unit[0] as Snippet;
    const prelude = first.flags.has('fragment') ? preludeFor(unit.map((u) => u.code).join('\n')) : [];
    const name = `${first.file.replace(/[/.]/g, '_')}_${first.line}_${n}.${first.lang}`;
    const file = path.join(dir, name);
    const lines = [...prelude];
    const parts = unit.map((snippet) => {
      const at = lines.length;
      lines.push(...snippet.code.split('\n'));
      return { snippet, at };
    });
    // `export {}` makes every block a module: top-level await works, and blocks do not share globals.
    writeFileSync(file, `${lines.join('\n')}\nexport {};\n`);
    return { snippet: first, path: file, parts };
  });
}

/** The Markdown position of a line of a written module. */
function position(w: Written, line: number): string {
  const index = line - 1;
  const part = [...w.parts].reverse().find((p) => p.at <= index) ?? w.parts[0];
  if (!part) return `${w.snippet.file}:${w.snippet.line}`;
  return `${part.snippet.file}:${part.snippet.line + Math.max(index - part.at, 0)}`;
}

function typecheck(written: Written[], group: string): string[] {
  const config = path.join(outDir, group, 'tsconfig.json');
  const base = path.relative(path.dirname(config), path.join(root, 'tsconfig.json'));
  writeFileSync(config, JSON.stringify({ extends: base, compilerOptions: { allowJs: true, checkJs: true, noEmit: true }, include: [], files: written.map((w) => w.path) }, null, 2));
  const tsc = spawnSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', config, '--pretty', 'false'], { encoding: 'utf8' });
  if (tsc.status === 0) return [];
  const errors: string[] = [];
  for (const line of `${tsc.stdout}${tsc.stderr}`.split('\n')) {
    const m = /^(.*?)\((\d+),(\d+)\): (error .*)$/.exec(line);
    const w = m && written.find((x) => path.resolve(path.dirname(config), m[1] as string) === x.path || path.resolve(root, m[1] as string) === x.path);
    if (m && w) errors.push(`${position(w, Number(m[2]))}:${m[3]}: ${m[4]}`);
    else if (line.trim()) errors.push(line);
  }
  return errors;
}

function run(w: Written): string[] {
  const config = path.join(path.dirname(w.path), 'tsconfig.json');
  try {
    execFileSync(process.execPath, [path.join(root, 'node_modules/tsx/dist/cli.mjs'), '--tsconfig', config, w.path], { cwd: root, encoding: 'utf8', timeout: 30_000, stdio: 'pipe' });
    return [];
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    return [`${w.snippet.file}:${w.snippet.line}: running the block failed: ${(e.stderr || e.message).trim().split('\n').slice(0, 8).join('\n')}`];
  }
}

const all = markdownFiles().flatMap(extract);
const checked = all.filter((s) => !s.flags.has('no-check'));
rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });
// ES modules, as the package is.
writeFileSync(path.join(outDir, 'package.json'), '{ "type": "module" }\n');
const shared = write(
  checked.filter((s) => !s.flags.has('isolated')),
  'shared',
);
const groups: Written[][] = [shared, ...checked.filter((s) => s.flags.has('isolated')).map((s, i) => write([s], `isolated-${i}`))];
const errors = groups.flatMap((g) => (g.length ? typecheck(g, path.basename(path.dirname(g[0]?.path as string))) : []));
if (errors.length === 0) for (const w of groups.flat()) if (w.snippet.flags.has('run')) errors.push(...run(w));

const skipped = all.length - checked.length;
const ran = groups.flat().filter((w) => w.snippet.flags.has('run')).length;
if (errors.length) {
  console.error(errors.join('\n'));
  console.error(`\ncheck-snippets: ${errors.length} error(s) in ${checked.length} checked blocks`);
  process.exit(1);
}
console.log(`check-snippets: ${checked.length} blocks type-check (${ran} also ran), ${skipped} marked no-check`);
