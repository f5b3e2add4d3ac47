// The store a guard uses when its policy names none. Chosen by the guard, not by policy compilation, so that compiling
// a policy never pulls in a concrete store.
import type { TokenStore } from '../leaf/store.js';
import { isProduction, warnOnce } from '../leaf/warnings.js';
import { MemoryStore } from '../stores/memory.js';

/** The store of a policy that names none: one MemoryStore per guard, with a warning where that is likely a mistake. */
export function defaultStore(): TokenStore {
  if (isProduction()) {
    warnOnce(
      'TOKEN_GUARD_MEMORY_STORE',
      'token-guard: no store given, using an in-memory store under NODE_ENV=production: revocations, rate limits and key uses are then per process. Pass `store` (e.g. RedisStore from token-guard/redis) to share them across instances, or `store: new MemoryStore()` to keep them per process on purpose.',
    );
  }
  return new MemoryStore();
}
