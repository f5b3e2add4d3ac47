// OpenTelemetry for the guard, published as `token-guard/otel`: a span per decision and the guard's metrics,
// through @opentelemetry/api (an optional peer). Only this entry point imports it: a policy without
// `telemetry: otel()` never loads it and measures nothing.
import {
  context,
  metrics,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Counter,
  type Histogram,
  type Meter,
  type MeterProvider,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import { droppedPromise, isAsyncFunction } from '../leaf/callbacks.js';
import { UsageError } from '../leaf/errors.js';
import type { TokenStore } from '../leaf/store.js';
import type { DecisionTiming, GuardTelemetry } from '../leaf/telemetry.js';
import type { DecisionEvent } from '../leaf/types.js';

/** The instrumentation scope name spans and metrics are reported under. */
export const INSTRUMENTATION_NAME = 'token-guard';

/** Options of `otel()`. */
export interface OtelOptions {
  /** Where spans go. Default: the global tracer provider (`trace.getTracerProvider()`). */
  tracerProvider?: TracerProvider;
  /** Where metrics go. Default: the global meter provider (`metrics.getMeterProvider()`). */
  meterProvider?: MeterProvider;
  /** Record a span per decision. Default: `true`. */
  spans?: boolean;
  /** Record metrics. Default: `true`. */
  metrics?: boolean;
  /**
   * Put the token id (`jti`, derived id or API key record id; never the token) on spans. Default: `true`.
   * Never on metrics: one series per token would grow without bound.
   */
  tokenId?: boolean;
  /** Put the subject (`sub`, a key record's subject) and its issuer on spans: it usually names a person. Default: `false`. */
  subject?: boolean;
  /**
   * More span attributes from the event (a tenant claim, say): yours to keep free of personal data. Synchronous: an
   * `async` function is refused by `otel()`; a throw or a returned promise drops them and sets
   * `token_guard.span_attributes_failed`. Default: none.
   */
  spanAttributes?: (event: DecisionEvent) => Attributes;
}

/** Counters a store may expose through `stats()` (RedisStore does), read when metrics are collected. */
interface StoreStats {
  nearCacheHits?: unknown;
  nearCacheMisses?: unknown;
  invalidations?: unknown;
}

/** The span and metric attribute names, stable: dashboards and alerts are built on them. */
const A = {
  effect: 'token_guard.effect',
  reason: 'token_guard.reason',
  reasons: 'token_guard.reasons',
  rule: 'token_guard.rule',
  mode: 'token_guard.mode',
  status: 'token_guard.status',
  source: 'token_guard.source',
  passed: 'token_guard.passed',
  kind: 'token_guard.token.kind',
  tokenId: 'token_guard.token.id',
  subject: 'token_guard.token.subject',
  issuer: 'token_guard.token.issuer',
  cacheHit: 'token_guard.cache_hit',
  requestId: 'token_guard.request_id',
  spanAttributesFailed: 'token_guard.span_attributes_failed',
  method: 'token_guard.store.method',
} as const;

interface Instruments {
  decisions: Counter;
  decisionDuration: Histogram;
  storeDuration: Histogram;
  storeFailures: Counter;
  cacheHits: Counter;
  cacheMisses: Counter;
  jwksFetches: Counter;
  jwksFailures: Counter;
  meter: Meter;
}

function instruments(meter: Meter): Instruments {
  return {
    meter,
    decisions: meter.createCounter('token_guard.decisions', { description: 'Decisions, by effect, reason, rule, mode and token kind' }),
    decisionDuration: meter.createHistogram('token_guard.decision.duration', { description: 'Time to decide one request', unit: 's' }),
    storeDuration: meter.createHistogram('token_guard.store.duration', { description: 'Store calls on the request path, by method', unit: 's' }),
    storeFailures: meter.createCounter('token_guard.store.failures', { description: 'Store calls that threw, rejected or timed out, by method' }),
    cacheHits: meter.createCounter('token_guard.token_cache.hits', { description: 'JWT decisions whose verification came from the token cache' }),
    cacheMisses: meter.createCounter('token_guard.token_cache.misses', { description: 'JWT decisions that had to verify the signature' }),
    jwksFetches: meter.createCounter('token_guard.jwks.fetches', { description: 'Remote JWKS fetches (first load and refreshes)' }),
    jwksFailures: meter.createCounter('token_guard.jwks.failures', { description: 'Remote JWKS fetches that failed' }),
  };
}

/** The stores whose `stats()` the near-cache counters sum, per meter (several guards may share one sink). */
function observeStores(meter: Meter, stores: Set<TokenStore>): void {
  const hits = meter.createObservableCounter('token_guard.store.near_cache.hits', { description: 'Revocation lookups answered from the store near-cache' });
  const misses = meter.createObservableCounter('token_guard.store.near_cache.misses', { description: 'Revocation lookups that went to the shared store' });
  const invalidations = meter.createObservableCounter('token_guard.store.near_cache.invalidations', { description: 'Near-cache invalidation messages received' });
  meter.addBatchObservableCallback(
    (result) => {
      let h = 0;
      let m = 0;
      let i = 0;
      for (const store of stores) {
        const s = readStats(store);
        if (!s) continue;
        h += num(s.nearCacheHits);
        m += num(s.nearCacheMisses);
        i += num(s.invalidations);
      }
      result.observe(hits, h);
      result.observe(misses, m);
      result.observe(invalidations, i);
    },
    [hits, misses, invalidations],
  );
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0);

function readStats(store: TokenStore): StoreStats | undefined {
  const stats = (store as { stats?: unknown }).stats;
  if (typeof stats !== 'function') return undefined;
  try {
    const s: unknown = stats.call(store);
    return s && typeof s === 'object' ? (s as StoreStats) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A telemetry sink for `createGuard({ ..., telemetry: otel() })` (or any adapter's policy): a span per decision
 * (`token-guard decision`, child of the active span, e.g. the HTTP server span) with effect, reason, rule, mode,
 * token kind and cache hit; and the metrics `token_guard.decisions`, `token_guard.decision.duration`,
 * `token_guard.store.duration`, `token_guard.store.failures`, `token_guard.token_cache.{hits,misses}`,
 * `token_guard.jwks.{fetches,failures}` and, for stores with `stats()` (RedisStore),
 * `token_guard.store.near_cache.{hits,misses,invalidations}`. Never records the token; the subject only when asked.
 *
 * Exported from `token-guard/otel`; needs `@opentelemetry/api` installed.
 * @example
 * import { otel } from 'token-guard/otel';
 * app.use(tokenGuard({ ...policy, telemetry: otel() }));
 */
export function otel(options: OtelOptions = {}): GuardTelemetry {
  if (!options || typeof options !== 'object') throw new UsageError('otel(options): expected an options object');
  const spanAttributes = options.spanAttributes;
  if (spanAttributes !== undefined && typeof spanAttributes !== 'function') throw new UsageError('otel(options): spanAttributes must be a function');
  // Its answer is needed before the span starts: an async one would never add anything, only risk an unhandled rejection.
  if (isAsyncFunction(spanAttributes))
    throw new UsageError('otel(options): spanAttributes must be synchronous (an async function answers with a promise, too late for the span)');
  const tracer: Tracer | undefined = options.spans === false ? undefined : (options.tracerProvider ?? trace.getTracerProvider()).getTracer(INSTRUMENTATION_NAME);
  const m: Instruments | undefined = options.metrics === false ? undefined : instruments((options.meterProvider ?? metrics.getMeterProvider()).getMeter(INSTRUMENTATION_NAME));
  const withTokenId = options.tokenId !== false;
  const withSubject = options.subject === true;
  const stores = new Set<TokenStore>();
  let observing = false;

  function span(event: DecisionEvent, timing: DecisionTiming): void {
    if (!tracer) return;
    const attributes: Attributes = {
      [A.effect]: event.effect,
      [A.reason]: event.reason,
      [A.mode]: event.mode,
      [A.status]: event.status,
      [A.source]: event.source,
      [A.passed]: event.passed,
    };
    if (event.reasons.length > 1) attributes[A.reasons] = event.reasons;
    if (event.rule !== undefined) attributes[A.rule] = event.rule;
    if (event.kind !== undefined) attributes[A.kind] = event.kind;
    if (timing.cacheHit !== undefined) attributes[A.cacheHit] = timing.cacheHit;
    if (event.requestId !== undefined) attributes[A.requestId] = event.requestId;
    if (withTokenId && event.tokenId !== undefined) attributes[A.tokenId] = event.tokenId;
    if (withSubject && event.subject !== undefined) attributes[A.subject] = event.subject;
    if (withSubject && event.issuer !== undefined) attributes[A.issuer] = event.issuer;
    if (spanAttributes) {
      // The user's function must cost neither the span nor the metrics after it: a throw drops its attributes only,
      // and so does a promise (a plain function can still return one), with its rejection handled.
      try {
        const extra = spanAttributes(event);
        if (droppedPromise(extra)) attributes[A.spanAttributesFailed] = true;
        else Object.assign(attributes, extra);
      } catch {
        attributes[A.spanAttributesFailed] = true;
      }
    }
    // Recorded when the decision is known, with its real start: one span, no bookkeeping on the way.
    const s = tracer.startSpan('token-guard decision', { kind: SpanKind.INTERNAL, startTime: timing.startMs, attributes }, context.active());
    if (event.error) s.setStatus({ code: SpanStatusCode.ERROR, message: `${event.error.name}: ${event.error.message}` });
    s.end(timing.startMs + timing.durationMs);
  }

  return {
    decision(event, timing) {
      span(event, timing);
      if (!m) return;
      const attributes: Attributes = { [A.effect]: event.effect, [A.reason]: event.reason, [A.mode]: event.mode, [A.source]: event.source };
      if (event.rule !== undefined) attributes[A.rule] = event.rule;
      if (event.kind !== undefined) attributes[A.kind] = event.kind;
      m.decisions.add(1, attributes);
      m.decisionDuration.record(timing.durationMs / 1000, { [A.effect]: event.effect });
      if (timing.cacheHit === true) m.cacheHits.add(1);
      else if (timing.cacheHit === false) m.cacheMisses.add(1);
    },
    storeCall(method, durationMs, failed) {
      if (!m) return;
      m.storeDuration.record(durationMs / 1000, { [A.method]: method });
      if (failed) m.storeFailures.add(1, { [A.method]: method });
    },
    jwksFetch(failed) {
      if (!m) return;
      m.jwksFetches.add(1);
      if (failed) m.jwksFailures.add(1);
    },
    attach({ store }) {
      if (!m || readStats(store) === undefined) return;
      stores.add(store);
      if (!observing) {
        observing = true;
        observeStores(m.meter, stores);
      }
    },
  };
}
