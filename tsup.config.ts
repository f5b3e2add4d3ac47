// Build: one ESM and one CJS bundle per entry point, with shared chunks so that error classes
// keep one identity across `token-guard` and its adapters within a module system.
// Entries come from package.json `entryPoints` (scripts/entry-points.ts): declared once.
// The `token-guard` command (package.json `bin`) is no entry point: it is its own ESM bundle, dist/cli.js, with
// a shebang and no declarations. `TOKEN_GUARD_BUILD=cli` builds only it; `cli+esm` builds it beside the library's ESM
// bundles without declarations or a clean (the CLI tests' global setup: their policy modules import `token-guard/*`).
import { defineConfig, type Options } from 'tsup';
import { tsupEntries } from './scripts/entry-points.js';

/** dist/cli.js and its map: the library build's clean leaves them to the CLI build, which runs beside it. */
const CLI_FILES = ['cli.js', 'cli.js.map'];

const library: Options = {
  entry: tsupEntries(),
  format: ['esm', 'cjs'],
  dts: true,
  splitting: true,
  sourcemap: true,
  clean: CLI_FILES.map((f) => `!${f}`),
  target: 'node20',
  platform: 'node',
  treeshake: true,
};

const cli: Options = {
  entry: { cli: 'src/cli/main.ts' },
  format: ['esm'],
  dts: false,
  splitting: false,
  sourcemap: true,
  clean: false,
  target: 'node20',
  platform: 'node',
  treeshake: true,
  banner: { js: '#!/usr/bin/env node' },
};

/** The library's ESM bundles alone, quickly: no declarations, and nothing cleaned (a full build's files stay usable). */
const libraryEsm: Options = { ...library, format: ['esm'], dts: false, clean: false };

const mode = process.env['TOKEN_GUARD_BUILD'];
export default defineConfig(mode === 'cli' ? [cli] : mode === 'cli+esm' ? [libraryEsm, cli] : [library, cli]);
