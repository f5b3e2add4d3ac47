// The evaluation's entry: reads the request's method, path and headers once, finds its rule, and runs an
// Evaluation (evaluation.ts) over the phases, waiting only where a store or verifier answers with a promise.
import { normalizePath } from '../leaf/path.js';
import type { GuardRequest, TraceStep } from '../leaf/types.js';
import { matchRule } from './rule-match.js';
import { isThenable } from './store-calls.js';
import { Evaluation } from './evaluation.js';
import type { Engine, Outcome } from './engine.js';

// TraceStep is a leaf type (audit events carry it); re-exported here, where it was first declared.
export type { TraceStep } from '../leaf/types.js';
export { routeMode, type Engine, type Outcome } from './engine.js';

/** `s.toUpperCase()`, without the new string it allocates when `s` is upper case already (every method on the wire). */
function upperCase(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c >= 0x61 && c <= 0x7a) || c >= 0x80) return s.toUpperCase();
  }
  return s;
}

/**
 * One evaluation: its Outcome, synchronously while nothing it waits for is a promise (a cached token against a
 * synchronous store gives its Decision with no microtask), else a promise of it. Never throws, never rejects.
 * With `trace`, records every step in it. `recordsUsage`: whether an allowed request's use is recorded
 * (`trackUsage`). Default: only without a trace, so `guard.explain` records none; a decision traced for its audit
 * event passes `true` and is recorded as usual.
 */
export function pipeline(e: Engine, req: GuardRequest, nowMs: number, trace?: TraceStep[], recordsUsage: boolean = trace === undefined): Outcome | Promise<Outcome> {
  const p = e.p;
  const method = typeof req.method === 'string' ? upperCase(req.method) : '';
  const rawPath = typeof req.path === 'string' ? req.path : '';
  const path = normalizePath(rawPath);
  const headers = req.headers && typeof req.headers === 'object' ? req.headers : {};
  if (path === null || method === '') {
    const d = e.decider.decide(['request.malformed'], p.mode, undefined, {}, 'unreadable request path or method');
    return { decision: d, path: rawPath.slice(0, 256).split('?')[0] ?? '', ip: undefined, identity: undefined };
  }
  const rule = matchRule(p.rules, method, path, req.caseSensitive === true);
  const ev = new Evaluation(e, req, nowMs, trace, recordsUsage, method, path, headers, rule);
  const r = ev.start();
  return isThenable(r) ? waitFor(ev, r) : r;
}

function waitFor(ev: Evaluation, pending: PromiseLike<unknown>): Promise<Outcome> {
  return Promise.resolve(pending).then(
    (value) => next(ev, ev.step(value, false)),
    (error: unknown) => next(ev, ev.step(error, true)),
  );
}

const next = (ev: Evaluation, r: Outcome | PromiseLike<unknown>): Outcome | Promise<Outcome> => (isThenable(r) ? waitFor(ev, r) : r);
