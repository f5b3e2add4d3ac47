// Decision → HTTP answer, shared by every adapter so that all frameworks answer alike.
import { flatCopy } from './bounded-map.js';
import { AccessDeniedError } from './errors.js';
import { REASONS } from './reasons.js';
import type { Decision, ReasonCode } from './types.js';

/** Content type of refusal bodies (RFC 9457). */
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** An RFC 9457 problem body: only what a client needs, nothing that helps an attacker. */
export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  reason: ReasonCode;
}

/** The `type` URI of a reason's problem body. */
export function problemType(reason: ReasonCode): string {
  return `urn:token-guard:problem:${reason}`;
}

// Bodies depend on the reason alone: serialised once per reason, on first use (checks register their
// own reasons after this module loads).
const BODIES = new Map<ReasonCode, string>();
function bodyOf(reason: ReasonCode): string {
  let body = BODIES.get(reason);
  if (body === undefined) {
    const info = REASONS[reason];
    const problem: ProblemDetails = { type: problemType(reason), title: info.title, status: info.status, reason };
    body = JSON.stringify(problem);
    BODIES.set(reason, body);
  }
  return body;
}

/** Whether the request goes through: allowed, or refused in report-only mode. */
export function passes(decision: Decision): boolean {
  return decision.effect === 'allow' || decision.mode === 'report-only';
}

/**
 * Headers to set on a response that goes through. An allow sends all of the decision's headers
 * (RateLimit-*); a report-only refusal sends only RateLimit-*: a challenge or Retry-After on a 200 would
 * tell clients to retry or re-authenticate a request that just succeeded.
 */
export function passHeaders(decision: Decision): Record<string, string> {
  if (decision.effect === 'allow') return decision.headers;
  const out: Record<string, string> = {};
  for (const name in decision.headers) if (name.startsWith('RateLimit-')) out[name] = decision.headers[name] as string;
  return out;
}

/** A ready HTTP answer for a refusal. */
export interface DenialResponse {
  status: number;
  headers: Record<string, string>;
  /** JSON text of the problem body. */
  body: string;
}

/** The answer to send for a decision, or undefined when the request goes through. */
export function denialResponse(decision: Decision): DenialResponse | undefined {
  if (passes(decision)) return undefined;
  return {
    status: decision.status,
    headers: { ...decision.headers, 'Content-Type': PROBLEM_CONTENT_TYPE, 'Cache-Control': 'no-store' },
    body: bodyOf(decision.reason),
  };
}

/** The problem body object of a reason (for apps formatting errors themselves). */
export function problemDetails(reason: ReasonCode): ProblemDetails {
  return JSON.parse(bodyOf(reason)) as ProblemDetails;
}

/** The error handed to a framework's error path with `errors: 'throw'`. */
export function decisionError(decision: Decision): AccessDeniedError {
  return new AccessDeniedError(decision.reason, REASONS[decision.reason].title, {
    status: decision.status,
    headers: { ...decision.headers },
  });
}

/** A Bearer challenge (RFC 6750 §3) with an optional realm, parameters and RFC 9728 `resource_metadata` URL. */
export function bearerChallenge(realm: string | undefined, params: string, resourceMetadata?: string): string {
  const parts: string[] = [];
  if (realm !== undefined) parts.push(`realm="${realm}"`);
  if (params) parts.push(params);
  // A URL the policy schema checked; quotes and backslashes are escaped all the same, so none ends the string early.
  if (resourceMetadata !== undefined) parts.push(`resource_metadata="${resourceMetadata.replace(/["\\]/g, encodeURIComponent)}"`);
  return parts.length ? `Bearer ${parts.join(', ')}` : 'Bearer';
}

/** The longest User-Agent kept. */
const MAX_USER_AGENT = 256;

/** The User-Agent, bounded: it is stored per token, and a client chooses its length. */
export function userAgentOf(headers: Readonly<Record<string, string | string[] | undefined>>): string | undefined {
  const ua = headers['user-agent'];
  const value = Array.isArray(ua) ? ua[0] : ua;
  if (typeof value !== 'string') return undefined;
  // Cut, it is copied: a slice would keep the whole header alive in every usage record (kilobytes a token).
  return value.length <= MAX_USER_AGENT ? value : flatCopy(value.slice(0, MAX_USER_AGENT));
}
