// The audit hook: one event per decision, built only when `onDecision` or `telemetry` is set, never with the raw token.
import { performance } from 'node:perf_hooks';
import { droppedPromise } from '../leaf/callbacks.js';
import type { ParsedIp } from '../leaf/ip.js';
import type { DecisionTiming, GuardTelemetry } from '../leaf/telemetry.js';
import type { Decision, DecisionEvent, GuardRequest, TokenInfo, TraceStep } from '../leaf/types.js';
import type { TokenGuardPolicy } from './policy-types.js';
import { StoreFailure } from './store-calls.js';

/** What one audit event is made of, besides the decision. */
export interface AuditFacts {
  path: string;
  ip: ParsedIp | null | undefined;
  identity: TokenInfo | undefined;
  /** `performance.now()` at the start of the evaluation. */
  start: number;
  /** Evaluation time, epoch ms. */
  nowMs: number;
  /** The request's own `now`, when it gave one (handed to the hook as is). */
  now: Date | undefined;
  source: DecisionEvent['source'];
  error?: unknown;
  /** For telemetry: whether a JWT's verification came from the token cache. */
  cacheHit?: boolean | undefined;
  /** The steps that reached a refused decision (policy `auditTrace`); undefined otherwise. */
  trace?: TraceStep[] | undefined;
}

// A request id is client-chosen when it comes from a header: only short visible ASCII is kept (no log injection).
const REQUEST_ID_RE = /^[\x21-\x7e]{1,128}$/;
// W3C Trace Context: version-traceid-parentid-flags; an all-zero trace id is invalid.
const TRACEPARENT_RE = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}/;

function idValue(v: unknown): string | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return typeof v === 'string' && REQUEST_ID_RE.test(v) ? v : undefined;
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? (v.length === 1 ? v[0] : undefined) : v;
}

/**
 * The request id of an audit event: the framework's own (`request.id` in Fastify, `req.id` set by pino-http,
 * `ctx.req.id` under Koa), else `X-Request-Id`, else the trace id of `traceparent`. Read only when auditing.
 */
export function requestIdOf(req: GuardRequest): string | undefined {
  const c = req.context;
  if (c && typeof c === 'object') {
    const own = idValue((c as { id?: unknown }).id) ?? idValue((c as { req?: { id?: unknown } }).req?.id);
    if (own !== undefined) return own;
  }
  const headers = req.headers && typeof req.headers === 'object' ? req.headers : {};
  const header = idValue(headerValue(headers['x-request-id']));
  if (header !== undefined) return header;
  const traceparent = headerValue(headers['traceparent']);
  const m = typeof traceparent === 'string' ? TRACEPARENT_RE.exec(traceparent) : null;
  return m && m[1] !== '00000000000000000000000000000000' ? m[1] : undefined;
}

/**
 * Hands one event to the hook (with the framework's request as second argument) and to the telemetry sink.
 * Their errors and rejections are swallowed: auditing never changes a decision.
 */
export function emitDecision(hook: TokenGuardPolicy['onDecision'], telemetry: GuardTelemetry | undefined, decision: Decision, req: GuardRequest, f: AuditFacts): void {
  const end = performance.now();
  const event: DecisionEvent = {
    time: f.now ?? new Date(f.nowMs),
    effect: decision.effect,
    status: decision.status,
    reason: decision.reason,
    reasons: decision.reasons,
    mode: decision.mode,
    passed: decision.effect === 'allow' || decision.mode === 'report-only',
    method: typeof req.method === 'string' ? req.method.toUpperCase() : '',
    path: f.path,
    source: f.source,
    latencyUs: Math.round((end - f.start) * 1000),
  };
  const requestId = requestIdOf(req);
  if (requestId !== undefined) event.requestId = requestId;
  if (decision.rule !== undefined) event.rule = decision.rule;
  if (f.identity) {
    event.tokenId = f.identity.id;
    event.kind = f.identity.kind;
    if (f.identity.subject !== undefined) event.subject = f.identity.subject;
    const iss = f.identity.claims?.['iss'];
    if (typeof iss === 'string') event.issuer = iss;
  }
  if (f.ip) event.ip = f.ip.text;
  if (decision.detail !== undefined) event.detail = decision.detail;
  if (decision.risk) event.risk = decision.risk;
  const limit = decision.headers['RateLimit-Limit'];
  if (limit !== undefined) {
    event.rateLimit = { limit: Number(limit), remaining: Number(decision.headers['RateLimit-Remaining'] ?? 0), resetS: Number(decision.headers['RateLimit-Reset'] ?? 0) };
  }
  if (f.trace !== undefined && f.trace.length > 0) event.trace = f.trace;
  if (f.error !== undefined) {
    const e = f.error instanceof StoreFailure ? f.error.error : f.error;
    event.error = e instanceof Error ? { name: e.name, message: e.message } : { name: 'Error', message: String(e) };
  }
  if (telemetry) {
    try {
      const timing: DecisionTiming = { startMs: performance.timeOrigin + f.start, durationMs: end - f.start };
      if (f.cacheHit !== undefined) timing.cacheHit = f.cacheHit;
      // `decision()` returns void, which an `async` sink satisfies too: its rejection (a metrics backend that is down)
      // must not go unhandled, which ends the process under Node's default.
      droppedPromise(telemetry.decision(event, timing));
    } catch {
      // Telemetry must never change or break a decision.
    }
  }
  if (!hook) return;
  try {
    droppedPromise(hook(event, req.context));
  } catch {
    // The audit hook must never change or break a decision.
  }
}
