// The guard's telemetry contract: what the engine reports when a policy gives `telemetry` (token-guard/otel
// implements it). Types only; nothing here loads a tracing or metrics library.
import type { TokenStore } from './store.js';
import type { DecisionEvent } from './types.js';

/** What a telemetry sink learns about one decision besides its audit event. */
export interface DecisionTiming {
  /** When the evaluation started, epoch milliseconds with sub-millisecond precision (`performance.timeOrigin + performance.now()`). */
  startMs: number;
  /** How long it took, in milliseconds. */
  durationMs: number;
  /** For a JWT: whether its verification came from the guard's token cache. Unset for API keys and requests without a token. */
  cacheHit?: boolean;
}

/**
 * A sink for the guard's telemetry: spans and metrics (see `otel()` from `token-guard/otel`), or your own.
 * Every method is called synchronously on the request path and must not throw (a throw is swallowed).
 *
 * Exported (as a type) from `token-guard`.
 */
export interface GuardTelemetry {
  /** One call per decision, with the audit event (never the raw token) and its timing. */
  decision(event: DecisionEvent, timing: DecisionTiming): void;
  /** One call per store call on the request path: the method, its duration, and whether it failed (threw, rejected, timed out). */
  storeCall?(method: string, durationMs: number, failed: boolean): void;
  /** One call per remote JWKS fetch (the first load and every refresh), and whether it failed. */
  jwksFetch?(failed: boolean): void;
  /** Called once when a guard is created with this sink, with the guard's store (to read e.g. `RedisStore.stats()`). */
  attach?(guard: { store: TokenStore }): void;
}
