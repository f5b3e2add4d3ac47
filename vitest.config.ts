import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { entryPoints } from './scripts/entry-points.js';

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');

export default defineConfig({
  // Examples import the package by name, as users do; tests run them against the sources. The aliases come
  // from package.json `entryPoints` (scripts/entry-points.ts): declared once.
  resolve: {
    alias: entryPoints().map((e) => ({
      find: new RegExp(`^${escapeRegExp(e.specifier)}$`),
      replacement: fileURLToPath(new URL(`./${e.source}`, import.meta.url)),
    })),
  },
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    testTimeout: 20_000,
    hookTimeout: 60_000,
    typecheck: { enabled: true, include: ['test/**/*.test-d.ts'] },
  },
});
