// The evaluation's entry: reads the request's method, path and headers once, finds its rule, and runs an
// Evaluation (evaluation.ts) over the phases, waiting only where a store or verifier answers with a promise.
import { normalizePath } from '../leaf/path.js';
import type { GuardRequest, TraceStep } from '../leaf/types.js';
import { bearerCandidate, readToken, type TokenSlot } from '../tokens/extract.js';
import { ruleForRequest, type CompiledRule } from './rule-match.js';
import { isThenable, readRevocation } from './store-calls.js';
import { Evaluation } from './evaluation.js';
import { NO_REASONS } from './decision.js';
import { passedBefore, type Holder } from './key-records.js';
import { recordRequestUsage, routeMode, type Engine, type Outcome } from './engine.js';

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
  // Read as the request's routers read it: the memo below keys on the rule found here, so `/files/` and `/files` under
  // different rules never share a cached pass.
  const rule = ruleForRequest(p.rules, method, path, req, rawPath);
  if (trace === undefined && e.memoPath && rule?.checks.memoPath === true) {
    const o = memoised(e, req, nowMs, recordsUsage, method, path, headers, rule);
    if (o !== undefined) return o;
  }
  const ev = new Evaluation(e, req, nowMs, trace, recordsUsage, method, path, headers, rule);
  const r = ev.start();
  return isThenable(r) ? waitFor(ev, r) : r;
}

/** For `readToken`: only a cached token goes on here, and a cached token passed the syntax check before. */
const cachedOnly = (): boolean => true;

/** Read into by `memoised` and copied out at once (it never waits in between): no slot is allocated per request. */
const slot: TokenSlot = { rawToken: undefined, scheme: undefined };

/**
 * A JWT that passed this rule's checks before, in the same scheme (Check.memo), on a rule with no pre-auth check and
 * a policy with no prefetch or decorate hook: what can change between two of its requests is its time (the cache
 * lookup checks it), its revocation and its usage record, and that is all that runs here, with no Evaluation. Any
 * other request is left to the Evaluation (undefined); so is every answer but "not revoked", from where it stands
 * (`Evaluation.revocationAnswered`), so the store is asked once. `memo.fuzz.test.ts` holds the two paths to one answer.
 */
function memoised(
  e: Engine,
  req: GuardRequest,
  nowMs: number,
  recordsUsage: boolean,
  method: string,
  path: string,
  headers: GuardRequest['headers'],
  rule: CompiledRule,
): Outcome | Promise<Outcome> | undefined {
  const p = e.p;
  const jwt = e.jwt;
  if (jwt === undefined || (p.preflight && method === 'OPTIONS')) return undefined;
  // Only the Evaluation's JWT branch fills this cache, so a token it routes elsewhere (an API key by its prefix, an
  // opaque token to introspection) is never found here; and a JWT's holder has no key notices to send.
  // First by the whole header: one equal to the one a token was verified in reads as that token in the Bearer scheme.
  const header = bearerCandidate(headers);
  let v = header === undefined ? undefined : jwt.lookupHeader(header, nowMs);
  let token: string | undefined;
  let scheme: TokenSlot['scheme'] = 'bearer';
  if (v === undefined) {
    // readToken writes the slot whenever it finds a token (its only success), so nothing stale is read.
    if (readToken(slot, headers, p.maxTokenBytes, cachedOnly) !== undefined) return undefined;
    token = slot.rawToken as string;
    scheme = slot.scheme;
    v = jwt.lookup(token, nowMs);
  }
  const holder = v === undefined || 'reason' in v ? undefined : (v.holder as Holder | undefined);
  if (holder === undefined || !passedBefore(holder, rule, scheme)) return undefined;
  let ip: Outcome['ip'];
  let answer: unknown;
  let failed = false;
  try {
    ip = p.clientIp.resolve(req.remoteAddress, headers['x-forwarded-for']);
    answer = readRevocation(e.invoke, holder.info.id, holder.info.subject, holder.subjectKey, nowMs);
  } catch (err) {
    if (ip === undefined) return undefined;
    answer = err;
    failed = true;
  }
  if (failed || (answer !== undefined && answer !== null)) {
    const ev = new Evaluation(e, req, nowMs, undefined, recordsUsage, method, path, headers, rule);
    // Found by its header, the token is what follows `Bearer `.
    const r = ev.revocationAnswered(holder, token ?? (header as string).slice(7), scheme, ip ?? null, answer, failed);
    return isThenable(r) ? waitFor(ev, r) : r;
  }
  const decision = e.decider.decide(NO_REASONS, routeMode(p, rule), rule, {});
  decision.token = holder.info;
  if (p.trackUsage && recordsUsage) recordRequestUsage(e, req, holder, nowMs, ip, headers);
  return { decision, path, ip, identity: holder.info };
}

function waitFor(ev: Evaluation, pending: PromiseLike<unknown>): Promise<Outcome> {
  return Promise.resolve(pending).then(
    (value) => next(ev, ev.step(value, false)),
    (error: unknown) => next(ev, ev.step(error, true)),
  );
}

const next = (ev: Evaluation, r: Outcome | PromiseLike<unknown>): Outcome | Promise<Outcome> => (isThenable(r) ? waitFor(ev, r) : r);
