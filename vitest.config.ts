import { fileURLToPath } from 'node:url';
import { configDefaults, defineConfig } from 'vitest/config';
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
    environment: 'node',
    testTimeout: 20_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'lib',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, 'test/cli/**'],
          typecheck: { enabled: true, include: ['test/**/*.test-d.ts'] },
        },
      },
      {
        // The `token-guard` command, run as users run it: the built dist/cli.js in a child process. Its global setup
        // builds that one file first (about a second), and runs only when a CLI test is selected.
        extends: true,
        // Each test spawns Node a few times: a minute each, for a loaded machine.
        test: { name: 'cli', include: ['test/cli/**/*.test.ts'], globalSetup: ['test/cli/build-cli.ts'], testTimeout: 60_000 },
      },
    ],
  },
});
