// Limits before authentication: a guessed API key, and a guard that limits before authentication on a store the
// test chose (one that counts, answers late or fails: see stores.ts).
import { createGuard, issueApiKey, type Guard, type TokenGuardPolicy, type TokenStore } from '../../src/index.js';
import { basePolicy, NOW } from './tokens.js';

/** A well-formed key no store knows: a guess that passes the checksum and so costs a store lookup. */
export function guessedKey(): string {
  return issueApiKey({ prefix: 'tg_', subject: 'nobody', scopes: ['orders:read'], expiresIn: '1d', now: NOW }).key;
}

/** The guard of basePolicy on `store` with `preAuthLimit` and `trackUsage: false`; `overrides` win. */
export async function preAuthGuard(store: TokenStore, preAuthLimit: TokenGuardPolicy['preAuthLimit'], overrides: Partial<TokenGuardPolicy> = {}): Promise<Guard> {
  return createGuard(await basePolicy({ store, trackUsage: false, preAuthLimit, ...overrides }));
}
