// Process warnings for set-ups that work but are likely mistakes: each code is emitted at most once per
// process, so a warning about a guard built per request (or per test) cannot flood the log.

/** Codes of the warnings token-guard emits through `process.emitWarning`. */
export type TokenGuardWarningCode =
  | 'TOKEN_GUARD_MEMORY_STORE'
  | 'TOKEN_GUARD_INTROSPECTION_ISSUER'
  | 'TOKEN_GUARD_NOT_MOUNTED'
  | 'TOKEN_GUARD_POSTGRES_CONNECT_TIMEOUT'
  | 'TOKEN_GUARD_MIXED_CASE_ROUTING'
  | 'TOKEN_GUARD_REDIS_DURABILITY'
  | 'TOKEN_GUARD_REDIS_DURABILITY_REFUSED'
  | 'TOKEN_GUARD_REDIS_DURABILITY_UNVERIFIED'
  | 'TOKEN_GUARD_REDIS_SUBSCRIBER'
  | 'TOKEN_GUARD_SET_SCOPE_SHARED'
  | 'TOKEN_GUARD_SET_WITHOUT_GUARD'
  | 'TOKEN_GUARD_XFF_IGNORED';

const emitted = new Set<TokenGuardWarningCode>();

/** Emits a `TokenGuardWarning` with `code`, once per process; a no-op where `process.emitWarning` is missing (edge runtimes). */
export function warnOnce(code: TokenGuardWarningCode, message: string): void {
  if (emitted.has(code)) return;
  emitted.add(code);
  const proc = (globalThis as { process?: { emitWarning?: (message: string, options: { type: string; code: string }) => void } }).process;
  if (typeof proc?.emitWarning === 'function') proc.emitWarning(message, { type: 'TokenGuardWarning', code });
}

/** Whether the process says it runs in production (`NODE_ENV=production`). */
export function isProduction(): boolean {
  const proc = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  return proc?.env?.['NODE_ENV'] === 'production';
}
