// Build: one ESM and one CJS bundle per entry point, with shared chunks so that error classes
// keep one identity across `token-guard` and its adapters within a module system.
// Entries come from package.json `entryPoints` (scripts/entry-points.ts): declared once.
import { defineConfig } from 'tsup';
import { tsupEntries } from './scripts/entry-points.js';

export default defineConfig({
  entry: tsupEntries(),
  format: ['esm', 'cjs'],
  dts: true,
  splitting: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  platform: 'node',
  treeshake: true,
});
