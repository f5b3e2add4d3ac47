import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (p: string) => fileURLToPath(new URL(`./src/${p}`, import.meta.url));

export default defineConfig({
  // Examples import the package by name, as users do; tests run them against the sources.
  resolve: {
    alias: [
      { find: /^token-guard$/, replacement: src('index.ts') },
      { find: /^token-guard\/express$/, replacement: src('adapters/express.ts') },
      { find: /^token-guard\/koa$/, replacement: src('adapters/koa.ts') },
      { find: /^token-guard\/fastify$/, replacement: src('adapters/fastify.ts') },
      { find: /^token-guard\/fetch$/, replacement: src('adapters/fetch.ts') },
      { find: /^token-guard\/redis$/, replacement: src('stores/redis.ts') },
      { find: /^token-guard\/testing$/, replacement: src('testing/conformance.ts') },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    testTimeout: 20_000,
    hookTimeout: 60_000,
    typecheck: { enabled: true, include: ['test/**/*.test-d.ts'] },
  },
});
