// The layers of src/, as folder names show them: leaf ← checks, tokens, stores ← core ← adapters, cli.
// An import that goes the wrong way (or a new folder nobody placed) fails the build here.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

/** Which folders each folder may import (besides itself). `.` is src/index.ts, the package root. */
const ALLOWED: Record<string, readonly string[]> = {
  leaf: [],
  checks: ['leaf'],
  tokens: ['leaf'],
  stores: ['leaf'],
  testing: ['leaf'],
  // Receivers of what the identity provider pushes (security events): they write the store contract, and fetch the
  // transmitter's keys as tokens fetch an issuer's (bounded).
  receivers: ['leaf', 'tokens'],
  core: ['leaf', 'checks', 'tokens', 'stores'],
  adapters: ['leaf', 'core', 'checks'],
  // Observability (token-guard/otel, token-guard/dashboard): built on the leaf's event and telemetry types only.
  observe: ['leaf'],
  // The `token-guard` command (package.json `bin`): an app of the library, beside the adapters; nothing imports it.
  cli: ['leaf', 'tokens', 'stores', 'core'],
  '.': ['leaf', 'checks', 'tokens', 'stores', 'core', 'adapters', 'testing', 'receivers', 'observe'],
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** The folder (first segment under src/) a file lives in; `.` for files directly in src/. */
function folderOf(file: string): string {
  const rel = relative(SRC, file).split(sep);
  return rel.length > 1 ? (rel[0] as string) : '.';
}

const IMPORT_RE = /(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

/** Every internal import edge between two folders: [from folder, to folder, file, specifier]. */
function edges(): [string, string, string, string][] {
  const out: [string, string, string, string][] = [];
  for (const file of sourceFiles(SRC)) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(IMPORT_RE)) {
      const spec = (m[1] ?? m[2]) as string;
      const target = resolve(dirname(file), spec);
      const from = folderOf(file);
      const to = folderOf(target);
      if (from !== to) out.push([from, to, relative(SRC, file), spec]);
    }
  }
  return out;
}

describe('layers', () => {
  it('places every src/ folder in a layer', () => {
    const folders = new Set(sourceFiles(SRC).map(folderOf));
    for (const f of folders) expect(Object.keys(ALLOWED), `src/${f} is in no layer: add it to ALLOWED`).toContain(f);
  });

  it('imports only downwards: leaf imports nothing internal, checks/tokens/stores only leaf, core only those, adapters only core and below', () => {
    const wrong = edges()
      .filter(([from, to]) => !(ALLOWED[from] ?? []).includes(to))
      .map(([from, to, file, spec]) => `${file} (${from}) imports ${spec} (${to})`);
    expect(wrong).toEqual([]);
  });

  it('finds the edges it checks (a scan that saw nothing would pass vacuously)', () => {
    const seen = new Set(edges().map(([from, to]) => `${from}→${to}`));
    expect(seen).toContain('core→leaf');
    expect(seen).toContain('adapters→core');
    expect(seen).toContain('stores→leaf');
    expect(seen).toContain('cli→core');
  });
});
