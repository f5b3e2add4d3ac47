// What an evaluation runs against (the Engine), what it ends with (the Outcome), and the small steps around the
// phases that do not depend on where an evaluation stands: the CORS preflight test, decorators, usage records.
import type { ParsedIp } from '../leaf/ip.js';
import { userAgentOf } from '../leaf/http.js';
import type { TokenStore, UsageEvent } from '../leaf/store.js';
import type { Decision, GuardRequest, TokenInfo } from '../leaf/types.js';
import type { CheckContext, CheckStore } from '../checks/check.js';
import type { JwtVerifier, VerifiedJwt } from '../tokens/jwt.js';
import type { IntrospectedToken, Introspector } from '../tokens/introspection.js';
import type { CompiledPolicy } from './policy.js';
import type { CompiledRule } from './rule-match.js';
import type { CheckSlot } from './registry.js';
import type { Decider } from './decision.js';
import type { Holder, KeyAuthenticator } from './key-records.js';
import { isThenable, type Invoke } from './store-calls.js';

/** What one evaluation ended with, for the audit hook. */
export interface Outcome {
  decision: Decision;
  path: string;
  ip: ParsedIp | null | undefined;
  identity: TokenInfo | undefined;
  error?: unknown;
}

/** What the pipeline runs against: the compiled policy and the guard's parts. */
export interface Engine {
  p: CompiledPolicy;
  store: TokenStore;
  invoke: Invoke;
  /** The store as the checks call it (answers checked). */
  checkStore: CheckStore;
  jwt: JwtVerifier | undefined;
  /** Opaque tokens checked at the authorization server (RFC 7662), when the policy has `introspection`. */
  introspector: Introspector | undefined;
  keys: KeyAuthenticator | undefined;
  decider: Decider;
  /** The scopes each verified TokenInfo was granted, for requireScopes. */
  scopeSets: WeakMap<TokenInfo, ReadonlySet<string>>;
  /** The Holder of a verified JWT or an introspected token (one per cached verification). */
  jwtHolder(v: VerifiedJwt | IntrospectedToken): Holder;
  /** The slots with a `prefetch`, `commit` or `decorate` hook and a policy-level value, found once. */
  prefetchers: readonly CheckSlot[];
  committers: readonly CheckSlot[];
  decorators: readonly CheckSlot[];
  /** Whether the pipeline's memoised path may run at all: no prefetch or decorate hook to call (see pipeline.ts). */
  memoPath: boolean;
}

const hasValue = (v: string | string[] | undefined): boolean => typeof v === 'string' && v !== '';

/** A CORS preflight (Fetch standard §4.8): what a browser sends before a cross-origin call, never with credentials. */
export function isCorsPreflight(headers: GuardRequest['headers']): boolean {
  return headers['authorization'] === undefined && hasValue(headers['origin']) && hasValue(headers['access-control-request-method']);
}

/** The mode a request is under: its rule's `mode: 'enforce'` wins over a report-only policy; otherwise the policy's. */
export const routeMode = (p: CompiledPolicy, rule: CompiledRule | undefined): Decision['mode'] => (rule?.mode === 'enforce' ? 'enforce' : p.mode);

/** Lets the checks with a `decorate` hook adjust a finished Decision (none before the request was read). */
export function decorate(e: Engine, ctx: CheckContext | undefined, d: Decision): Decision {
  if (ctx) for (const slot of e.decorators) slot.check.decorate?.(ctx, slot.policy, d);
  return d;
}

/** Records one use of a token. Bookkeeping: losing one record must not fail a request that was allowed. */
export function recordUsage(store: TokenStore, tokenId: string, nowMs: number, ip: ParsedIp | null | undefined, headers: GuardRequest['headers']): void {
  try {
    // Every field in the literal: one added later gives each event a separate property store (an allocation per request).
    const use: UsageEvent = { at: nowMs, ip: ip ? ip.text : undefined, userAgent: userAgentOf(headers) };
    const r = store.recordUsage(tokenId, use);
    if (isThenable(r)) r.then(undefined, () => undefined);
  } catch {
    // see above
  }
}
