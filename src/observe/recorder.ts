// The decision recorder behind the dashboard: an onDecision hook that keeps a bounded picture of recent
// decisions in memory (a ring of events, per-second counts, bounded top lists). Never sees a token.
import { EvictionCursor } from '../leaf/bounded-map.js';
import { droppedPromise, isAsyncFunction } from '../leaf/callbacks.js';
import { UsageError } from '../leaf/errors.js';
import type { DecisionEvent, ReasonCode, TraceStep } from '../leaf/types.js';

/** Options of `decisionRecorder()`. */
export interface DecisionRecorderOptions {
  /** Most recent events kept (for recent denials, each with its trace under the policy's `auditTrace`). Default: 1000. */
  size?: number;
  /** Seconds of per-second counts kept, at most 3600. Default: 60. */
  windowS?: number;
  /** Most distinct token ids, subjects, rules and reasons counted; the least recently seen is forgotten for a new one. Default: 10 000. */
  maxKeys?: number;
  /** Time source for the window, epoch ms, synchronous (an `async` one is refused): a decision counts in the second it arrives. Default: `Date.now()`. */
  clock?: () => number;
}

/** Counts per effect. */
export interface EffectCounts {
  allow: number;
  deny: number;
  step_up: number;
}

/** One recorded denial (or step-up) as the dashboard shows it: no token, no claims, no client IP. */
export interface RecordedDenial {
  time: number;
  effect: DecisionEvent['effect'];
  status: number;
  reason: ReasonCode;
  reasons: ReasonCode[];
  mode: DecisionEvent['mode'];
  method: string;
  path: string;
  rule?: string;
  tokenId?: string;
  subject?: string;
  issuer?: string;
  kind?: DecisionEvent['kind'];
  detail?: string;
  requestId?: string;
  /** The steps that reached the refusal, when the guard's policy sets `auditTrace` (at most 64, copied). */
  trace?: TraceStep[];
}

/** What the recorder knows, as the dashboard's `data.json` serves it. */
export interface DecisionSnapshot {
  /** The time the window ends at, epoch ms. */
  now: number;
  windowS: number;
  /** Every decision recorded, by effect. */
  total: EffectCounts;
  /** Per second over the window, oldest first: `t` is the second (epoch s). */
  perSecond: (EffectCounts & { t: number })[];
  /** Decisions per second over the window, by effect. */
  rate: EffectCounts;
  /** Reasons of refusals, most frequent first: in total, and per second over the window. */
  reasons: { reason: string; count: number; perSecond: number }[];
  /** Rules by decisions, with how many of them were refusals. */
  rules: { rule: string; count: number; denied: number }[];
  /** Token ids with the most refusals (never the token itself). */
  deniedTokens: { tokenId: string; count: number; lastReason: string }[];
  /** Subjects with the most refusals: one entry per subject and issuer (two tenants' `alice` are two). */
  deniedSubjects: { subject: string; issuer?: string; count: number }[];
  /** The latest refusals, newest first. */
  recentDenials: RecordedDenial[];
  /** The latest rate-limit state per token, least headroom first. */
  rateLimits: { tokenId: string; limit: number; remaining: number; resetS: number; at: number }[];
}

/** An onDecision hook that records, and what it recorded. */
export interface DecisionRecorder {
  /** The audit hook: pass as the policy's `onDecision`, or call it from your own. */
  onDecision: (event: DecisionEvent) => void;
  /** What was recorded, with `top` entries per list (default 10) and `recent` denials (default 50). */
  snapshot(options?: { top?: number; recent?: number }): DecisionSnapshot;
  /** Forgets everything. */
  clear(): void;
}

/** Most steps kept per recorded denial: a trace is a few dozen steps; a hook fed by hand cannot grow the ring. */
const MAX_STEPS = 64;

/** A copy of an event's trace, its known fields only (the event belongs to the guard and other hooks). */
function copyTrace(trace: unknown): TraceStep[] | undefined {
  if (!Array.isArray(trace) || trace.length === 0) return undefined;
  const steps: TraceStep[] = [];
  for (const s of trace.slice(0, MAX_STEPS) as Partial<TraceStep>[]) {
    if (!s || typeof s !== 'object' || typeof s.phase !== 'string' || typeof s.step !== 'string' || typeof s.outcome !== 'string') continue;
    const step: TraceStep = { phase: s.phase, step: s.step, outcome: s.outcome };
    if (s.level !== undefined) step.level = s.level;
    if (s.reason !== undefined) step.reason = s.reason;
    if (s.detail !== undefined) step.detail = s.detail;
    steps.push(step);
  }
  return steps.length > 0 ? steps : undefined;
}

/**
 * A count per key, with at most `max` keys: the one seen least recently makes room for a new one. So a week of
 * short-lived tokens cannot fill the list and leave today's offender unnamed (a lump of "other" would hide it).
 */
class BoundedCounts<V> {
  readonly map = new Map<string, V>();
  // Every hit re-inserts its key, so deleted entries pile up at the front of the Map: a fresh `keys()` would walk them
  // all on each eviction (hundreds of µs at 100 000 keys); one cursor kept across evictions passes each once.
  private readonly leastRecent = new EvictionCursor(this.map);
  constructor(
    private readonly max: number,
    private readonly make: () => V,
  ) {}
  get(key: string): V {
    let v = this.map.get(key);
    if (v !== undefined) {
      // Map keeps insertion order: moved to the end, the first entry is always the least recently seen.
      this.map.delete(key);
    } else {
      if (this.map.size >= this.max) this.map.delete(this.leastRecent.oldest() as string);
      v = this.make();
    }
    this.map.set(key, v);
    return v;
  }
}

/** A subject's refusals, and who it is (its key in the map is the pair). */
interface SubjectCount {
  n: number;
  subject: string;
  issuer: string | undefined;
}
const newSubject = (): SubjectCount => ({ n: 0, subject: '', issuer: undefined });

interface Bucket extends EffectCounts {
  t: number;
  reasons: Map<string, number>;
}

function positiveInt(name: string, v: unknown, fallback: number, max = 1_000_000): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) throw new UsageError(`decisionRecorder: ${name} must be an integer from 1 to ${max}`);
  return v;
}

const effectOf = (e: unknown): keyof EffectCounts => (e === 'allow' || e === 'step_up' ? e : 'deny');

/** The `n` entries with the largest `by`, ties by key: a selection, not a sort of every key (there may be 10 000 per poll). */
function top<T>(entries: Map<string, T>, by: (v: T) => number, n: number): [string, T][] {
  const before = (a: [string, T], b: [string, T]): boolean => by(a[1]) > by(b[1]) || (by(a[1]) === by(b[1]) && a[0] < b[0]);
  const best: [string, T][] = [];
  for (const e of entries) {
    if (best.length === n && !before(e, best[n - 1] as [string, T])) continue;
    let lo = 0;
    let hi = best.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (before(best[mid] as [string, T], e)) lo = mid + 1;
      else hi = mid;
    }
    best.splice(lo, 0, e);
    if (best.length > n) best.pop();
  }
  return best;
}

/**
 * Records decisions for the dashboard: pass `recorder.onDecision` as the policy's `onDecision`, and the
 * recorder to `dashboardHandler({ recorder })`. Memory is bounded by `size`, `windowS` and `maxKeys`.
 *
 * Exported from `token-guard/dashboard`.
 * @example
 * const recorder = decisionRecorder();
 * app.use(tokenGuard({ ...policy, onDecision: recorder.onDecision }));
 */
export function decisionRecorder(options: DecisionRecorderOptions = {}): DecisionRecorder {
  const size = positiveInt('size', options.size, 1000);
  const windowS = positiveInt('windowS', options.windowS, 60, 3600);
  const maxKeys = positiveInt('maxKeys', options.maxKeys, 10_000);
  const clock = options.clock;
  if (clock !== undefined && typeof clock !== 'function') throw new UsageError('decisionRecorder: clock must be a function returning epoch ms');
  if (isAsyncFunction(clock)) throw new UsageError('decisionRecorder: clock must be synchronous (an async function answers with a promise, not epoch ms)');

  let ring: (RecordedDenial | undefined)[] = new Array(size);
  let next = 0;
  let buckets = new Map<number, Bucket>();
  // A clock that returns a promise anyway gives no time (the decision is not counted), and its rejection is handled.
  const nowMs = clock
    ? (): number => {
        const t = clock();
        return droppedPromise(t) ? Number.NaN : t;
      }
    : Date.now;
  let total: EffectCounts = { allow: 0, deny: 0, step_up: 0 };
  let reasons = new BoundedCounts(maxKeys, () => ({ n: 0 }));
  let rules = new BoundedCounts(maxKeys, () => ({ n: 0, denied: 0 }));
  let tokens = new BoundedCounts(maxKeys, () => ({ n: 0, last: '' }));
  let subjects = new BoundedCounts(maxKeys, newSubject);
  let limits = new BoundedCounts(maxKeys, () => ({ limit: 0, remaining: 0, resetS: 0, at: 0 }));

  // One bucket per second, by second. A new second drops those more than a window away from it either side, so at
  // most 2 × windowS + 1 are kept, and a clock stepped back (or forward) starts counting at once without wiping what
  // the other side of the step counted until it leaves the window.
  function bucketAt(t: number): Bucket {
    let b = buckets.get(t);
    if (b === undefined) {
      for (const s of buckets.keys()) if (s <= t - windowS || s > t + windowS) buckets.delete(s);
      b = { t, allow: 0, deny: 0, step_up: 0, reasons: new Map() };
      buckets.set(t, b);
    }
    return b;
  }

  function onDecision(event: DecisionEvent): void {
    if (!event || typeof event !== 'object') return;
    // The window counts decisions as they arrive; an event's own time (a request's `now`, a policy clock, a clock
    // step) is shown, never used to place it: one event stamped an hour ahead would otherwise blind the window.
    const arrived = nowMs();
    if (!Number.isFinite(arrived)) return;
    const time = event.time instanceof Date && Number.isFinite(event.time.getTime()) ? event.time.getTime() : arrived;
    const effect = effectOf(event.effect);
    total[effect]++;
    const bucket = bucketAt(Math.floor(arrived / 1000));
    bucket[effect]++;
    const refused = effect !== 'allow';
    if (refused) {
      bucket.reasons.set(event.reason, (bucket.reasons.get(event.reason) ?? 0) + 1);
      reasons.get(event.reason).n++;
    }
    if (event.rule !== undefined) {
      const r = rules.get(event.rule);
      r.n++;
      if (refused) r.denied++;
    }
    if (event.tokenId !== undefined && event.rateLimit) {
      Object.assign(limits.get(event.tokenId), event.rateLimit, { at: arrived });
    }
    if (!refused) return;
    if (event.tokenId !== undefined) {
      const t = tokens.get(event.tokenId);
      t.n++;
      t.last = event.reason;
    }
    if (event.subject !== undefined) {
      // Length-prefixed, so that no subject and issuer spelling can make two pairs one key.
      const issuer = typeof event.issuer === 'string' ? event.issuer : undefined;
      const s = subjects.get(issuer === undefined ? `-${event.subject}` : `${issuer.length}:${issuer}${event.subject}`);
      if (s.n++ === 0) {
        s.subject = event.subject;
        s.issuer = issuer;
      }
    }
    const d: RecordedDenial = {
      time,
      effect: event.effect,
      status: event.status,
      reason: event.reason,
      reasons: [...event.reasons],
      mode: event.mode,
      method: event.method,
      path: event.path,
    };
    if (event.rule !== undefined) d.rule = event.rule;
    if (event.tokenId !== undefined) d.tokenId = event.tokenId;
    if (event.subject !== undefined) d.subject = event.subject;
    if (typeof event.issuer === 'string') d.issuer = event.issuer;
    if (event.kind !== undefined) d.kind = event.kind;
    if (event.detail !== undefined) d.detail = event.detail;
    if (event.requestId !== undefined) d.requestId = event.requestId;
    const trace = copyTrace(event.trace);
    if (trace) d.trace = trace;
    ring[next] = d;
    next = (next + 1) % size;
  }

  function snapshot(opts: { top?: number; recent?: number } = {}): DecisionSnapshot {
    const n = positiveInt('top', opts.top, 10);
    const recent = positiveInt('recent', opts.recent, 50);
    const now = nowMs();
    const nowS = Math.floor(now / 1000);
    const inWindow: Bucket[] = [];
    const perSecond: DecisionSnapshot['perSecond'] = [];
    for (let t = nowS - windowS + 1; t <= nowS; t++) {
      const b = buckets.get(t);
      if (b) inWindow.push(b);
      perSecond.push({ t, allow: b?.allow ?? 0, deny: b?.deny ?? 0, step_up: b?.step_up ?? 0 });
    }
    // A counter whose reset has passed is full again: no headroom worth showing.
    for (const [tokenId, l] of limits.map) if (l.at + l.resetS * 1000 <= now) limits.map.delete(tokenId);
    const sum = (k: keyof EffectCounts) => inWindow.reduce((a, b) => a + b[k], 0);
    const windowReasons = new Map<string, number>();
    for (const b of inWindow) for (const [r, c] of b.reasons) windowReasons.set(r, (windowReasons.get(r) ?? 0) + c);
    const denials: RecordedDenial[] = [];
    for (let i = 1; i <= size && denials.length < recent; i++) {
      const d = ring[(next - i + size) % size];
      if (d) denials.push(d);
    }
    return {
      now,
      windowS,
      total: { ...total },
      perSecond,
      rate: { allow: sum('allow') / windowS, deny: sum('deny') / windowS, step_up: sum('step_up') / windowS },
      reasons: top(reasons.map, (v) => v.n, n).map(([reason, v]) => ({ reason, count: v.n, perSecond: (windowReasons.get(reason) ?? 0) / windowS })),
      rules: top(rules.map, (v) => v.n, n).map(([rule, v]) => ({ rule, count: v.n, denied: v.denied })),
      deniedTokens: top(tokens.map, (v) => v.n, n).map(([tokenId, v]) => ({ tokenId, count: v.n, lastReason: v.last })),
      deniedSubjects: top(subjects.map, (v) => v.n, n).map(([, v]) =>
        v.issuer === undefined ? { subject: v.subject, count: v.n } : { subject: v.subject, issuer: v.issuer, count: v.n },
      ),
      recentDenials: denials,
      rateLimits: top(limits.map, (v) => -v.remaining / Math.max(1, v.limit), n).map(([tokenId, v]) => ({ tokenId, ...v })),
    };
  }

  function clear(): void {
    ring = new Array(size);
    next = 0;
    buckets = new Map();
    total = { allow: 0, deny: 0, step_up: 0 };
    reasons = new BoundedCounts(maxKeys, () => ({ n: 0 }));
    rules = new BoundedCounts(maxKeys, () => ({ n: 0, denied: 0 }));
    tokens = new BoundedCounts(maxKeys, () => ({ n: 0, last: '' }));
    subjects = new BoundedCounts(maxKeys, newSubject);
    limits = new BoundedCounts(maxKeys, () => ({ limit: 0, remaining: 0, resetS: 0, at: 0 }));
  }

  return { onDecision, snapshot, clear };
}
