// Regression (issue 8 item 12): a guard without a store keeps revocations, rate limits and key uses in
// its own process. Under NODE_ENV=production that is almost always a forgotten `store`, so the guard
// says so once per process through process.emitWarning (code TOKEN_GUARD_MEMORY_STORE).
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest';

type Core = typeof import('../../src/index.js');
const policy = { apiKeys: { prefix: 'tg_' } };

let emitWarning: MockInstance<typeof process.emitWarning>;
/** A fresh copy of the library: "once per process" state starts empty, as in a new process. */
async function freshCore(): Promise<Core> {
  vi.resetModules();
  return import('../../src/index.js');
}
const storeWarnings = () => emitWarning.mock.calls.filter((c) => (c[1] as { code?: string } | undefined)?.code === 'TOKEN_GUARD_MEMORY_STORE');

beforeEach(() => {
  emitWarning = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
});
afterEach(() => {
  vi.unstubAllEnvs();
  emitWarning.mockRestore();
});

describe('regression: the default in-memory store in production', () => {
  it('warns once per process, naming the code and the fix, however many guards fall back to it', async () => {
    vi.stubEnv('NODE_ENV', 'production');
    const { createGuard } = await freshCore();
    createGuard(policy);
    createGuard(policy);
    createGuard({ ...policy, rules: [{ path: '/health', public: true }] });
    expect(storeWarnings()).toHaveLength(1);
    const [message, options] = storeWarnings()[0] as [string, { type: string; code: string }];
    expect(options).toEqual({ type: 'TokenGuardWarning', code: 'TOKEN_GUARD_MEMORY_STORE' });
    expect(message).toMatch(/per process/);
    expect(message).toMatch(/store/);
  });

  it('does not warn outside production', async () => {
    for (const env of ['development', 'test', '']) {
      vi.stubEnv('NODE_ENV', env);
      const { createGuard } = await freshCore();
      createGuard(policy);
    }
    expect(storeWarnings()).toEqual([]);
  });

  it('does not warn when the policy gives a store, even a MemoryStore chosen on purpose', async () => {
    vi.stubEnv('NODE_ENV', 'production');
    const { createGuard, MemoryStore } = await freshCore();
    createGuard({ ...policy, store: new MemoryStore() });
    expect(storeWarnings()).toEqual([]);
  });

  it('gives each guard without a store its own MemoryStore', async () => {
    const { createGuard, MemoryStore } = await freshCore();
    const a = createGuard(policy);
    const b = createGuard(policy);
    expect(a.store).toBeInstanceOf(MemoryStore);
    expect(a.store).not.toBe(b.store);
  });

  it('does not warn when the policy is refused', async () => {
    vi.stubEnv('NODE_ENV', 'production');
    const { createGuard } = await freshCore();
    expect(() => createGuard({ ...policy, rules: [{ path: 'no-slash' }] })).toThrow();
    expect(storeWarnings()).toEqual([]);
  });
});
