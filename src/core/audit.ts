// The audit hook: one event per decision, built only when `onDecision` is set, never with the raw token.
import { performance } from 'node:perf_hooks';
import type { ParsedIp } from '../leaf/ip.js';
import type { Decision, DecisionEvent, GuardRequest, TokenInfo } from '../leaf/types.js';
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
}

/** Hands one event to the hook. Its errors and rejections are swallowed: auditing never changes a decision. */
export function emitDecision(hook: NonNullable<TokenGuardPolicy['onDecision']>, decision: Decision, req: GuardRequest, f: AuditFacts): void {
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
    latencyUs: Math.round((performance.now() - f.start) * 1000),
  };
  if (decision.rule !== undefined) event.rule = decision.rule;
  if (f.identity) {
    event.tokenId = f.identity.id;
    event.kind = f.identity.kind;
    if (f.identity.subject !== undefined) event.subject = f.identity.subject;
  }
  if (f.ip) event.ip = f.ip.text;
  if (decision.detail !== undefined) event.detail = decision.detail;
  if (decision.risk) event.risk = decision.risk;
  if (f.error !== undefined) {
    const e = f.error instanceof StoreFailure ? f.error.error : f.error;
    event.error = e instanceof Error ? { name: e.name, message: e.message } : { name: 'Error', message: String(e) };
  }
  try {
    const r = hook(event);
    if (r && typeof (r as Promise<void>).catch === 'function') (r as Promise<void>).catch(() => undefined);
  } catch {
    // The audit hook must never change or break a decision.
  }
}
