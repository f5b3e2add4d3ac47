// The policy compiled once at start-up into matchers, sets and the registered checks' compiled values, so
// nothing is parsed or built per request. Its shape is in policy-types.ts, its schema in policy-schema.ts.
import { createHash } from 'node:crypto';
import { parseDuration } from '../leaf/duration.js';
import { compilePathMatcher } from '../leaf/path.js';
import { ClientIpResolver } from '../leaf/ip.js';
import { bearerChallenge } from '../leaf/http.js';
import type { TokenStore } from '../leaf/store.js';
import type { ReasonCode } from '../leaf/types.js';
import { compileApiKeyFormat, type ApiKeyFormat } from '../tokens/api-key.js';
import { normalizeTyp, type JwtConfig } from '../tokens/jwt.js';
import { DEFAULT_REMOTE_KEYS } from '../tokens/jwks.js';
import { compileIntrospection, type IntrospectionConfig } from '../tokens/introspection.js';
import { compileChecks, compileRuleChecks, type CompiledChecks } from './registry.js';
import type { JwtPolicy, TokenGuardPolicy } from './policy-types.js';
import { validatePolicy } from './policy-schema.js';
import { emptyTail, literalPrefixes, ruleMethods, ruleName, trailingSlashForm, type CompiledRule } from './rule-match.js';

export type { TokenGuardPolicy, JwtPolicy, ApiKeysPolicy, RulePolicy, RateLimitPolicy } from './policy-types.js';
export { validatePolicy } from './policy-schema.js';
export { explainUnmatched, matchRule, ruleName, type CompiledRule } from './rule-match.js';

/** A policy, compiled. Internal: the guard's view of the policy. */
export interface CompiledPolicy {
  /** The issuer configurations (one, or several chosen by a token's `iss`). */
  jwt: JwtConfig[] | undefined;
  /** Accepted API keys: prefixes and the checksum secret, compiled. */
  apiKeys: ApiKeyFormat | undefined;
  /** Opaque tokens checked at the authorization server (RFC 7662). */
  introspection: IntrospectionConfig | undefined;
  /** The policy's store; `createGuard` picks the default when there is none. */
  store: TokenStore | undefined;
  storeTimeoutMs: number;
  clientIp: ClientIpResolver;
  /** The registered checks the policy uses, with its values. */
  checks: CompiledChecks;
  rules: CompiledRule[];
  unmatched: 'deny' | 'authenticate';
  mode: 'enforce' | 'report-only';
  maxTokenBytes: number;
  realm: string | undefined;
  /** RFC 9728 metadata URL named in every challenge. */
  resourceMetadata: string | undefined;
  trackUsage: boolean;
  onDecision: TokenGuardPolicy['onDecision'];
  /** Whether refused decisions' audit events carry their trace. */
  auditTrace: boolean;
  telemetry: TokenGuardPolicy['telemetry'];
  onLifecycle: TokenGuardPolicy['onLifecycle'];
  /** API key lifecycle limits (`apiKeys.maxAge`, `maxAgeWarning`, `idleTimeout`), in ms. */
  keyLifecycle: KeyLifecycleLimits;
  /** The policy's clock; undefined when none is given (the guard then reads `Date.now()`). */
  clock: (() => Date) | undefined;
  clockToleranceS: number;
  /** Let CORS preflights through (`preflight: 'pass'`). */
  preflight: boolean;
}

/** API key lifecycle limits, compiled. */
export interface KeyLifecycleLimits {
  maxAgeMs: number | undefined;
  /** How long before `maxAge` the Sunset warning starts (0 without maxAge). */
  maxAgeWarningMs: number;
  idleTimeoutMs: number | undefined;
}

/** Validates and compiles a policy. Throws PolicyError. */
export function compilePolicy(input: TokenGuardPolicy): CompiledPolicy {
  const policy = validatePolicy(input);
  // An explicit setting fixes how rules read case; without one, the request says how its router reads it.
  const caseSensitive = policy.caseSensitive ?? false;
  const realm = policy.realm;
  const raw = policy as unknown as Record<string, unknown>;
  const rawRules = (policy.rules ?? []) as unknown as Record<string, unknown>[];
  const maxTokenBytes = policy.maxTokenBytes ?? 8192;
  const jwtPolicies = policy.jwt === undefined ? [] : Array.isArray(policy.jwt) ? (policy.jwt as readonly JwtPolicy[]) : [policy.jwt as JwtPolicy];
  // One configuration keeps today's token ids; with several, each is prefixed by its configuration's name.
  const jwt = jwtPolicies.length ? jwtPolicies.map((j) => compileJwt(j, jwtPolicies.length > 1)) : undefined;
  // The widest tolerance of the issuer configurations: revocations and proofs must outlive every token.
  const clockToleranceS = (jwt ? Math.max(...jwt.map((j) => j.clockToleranceMs)) : 5000) / 1000;
  const resourceMetadata = policy.resourceMetadata;
  const base = { realm, clockToleranceS, maxTokenBytes, resourceMetadata };
  const checks = compileChecks(raw, rawRules, base);
  const mode = policy.mode ?? 'enforce';
  const rules = (policy.rules ?? []).map((r, i): CompiledRule => {
    const methods = r.methods ? Object.freeze(ruleMethods(r.methods)) : undefined;
    const name = ruleName(r);
    const match = compilePathMatcher(r.path, caseSensitive);
    // Named by the rule's name (by default what it matches), not its position: inserting a rule must not hand
    // every token's counter to another rule, and instances sharing a store must agree on the name.
    const scope = `rule:${createHash('sha256').update(name).digest('base64url').slice(0, 16)}`;
    const rawRule = rawRules[i] as Record<string, unknown>;
    // Static per rule: a report-only rule under an enforcing policy trials its own values.
    const ruleChecks = compileRuleChecks(checks, rawRule, { ...base, scope }, mode === 'enforce' && r.mode === 'report-only');
    const challenges = new Map<ReasonCode, string>();
    for (const [reason, params] of ruleChecks.challenges) challenges.set(reason, challenge(realm, params, resourceMetadata));
    return {
      name,
      path: r.path,
      methods,
      match,
      matchCased: policy.caseSensitive === undefined ? compilePathMatcher(r.path, true) : undefined,
      // With case left to the router, `match` is already case-insensitive: it explains a case-sensitive miss.
      matchAnyCase: policy.caseSensitive === true ? compilePathMatcher(r.path, false) : policy.caseSensitive === undefined ? match : undefined,
      literalPrefixes: literalPrefixes(r.path),
      public: r.public ?? false,
      trailingSlash: trailingSlashForm(r.path),
      emptyTail: r.public !== true && emptyTail(r.path),
      checks: ruleChecks,
      challenges,
      mode: r.mode,
    };
  });
  return {
    jwt,
    introspection: policy.introspection ? compileIntrospection(policy.introspection, clockToleranceS) : undefined,
    apiKeys: policy.apiKeys
      ? compileApiKeyFormat({ prefixes: policy.apiKeys.prefix, ...(policy.apiKeys.checksumSecret !== undefined && { checksumSecret: policy.apiKeys.checksumSecret }) })
      : undefined,
    store: policy.store,
    storeTimeoutMs: Math.ceil(parseDuration(policy.storeTimeout ?? '1s') as number),
    clientIp: new ClientIpResolver(policy.trustProxy),
    checks,
    rules,
    unmatched: policy.unmatched ?? 'deny',
    mode,
    maxTokenBytes,
    realm,
    resourceMetadata,
    trackUsage: policy.trackUsage ?? true,
    onDecision: policy.onDecision,
    auditTrace: policy.auditTrace === true,
    telemetry: policy.telemetry,
    onLifecycle: policy.onLifecycle,
    keyLifecycle: {
      maxAgeMs: policy.apiKeys?.maxAge === undefined ? undefined : parseDuration(policy.apiKeys.maxAge),
      maxAgeWarningMs: policy.apiKeys?.maxAge === undefined ? 0 : (parseDuration(policy.apiKeys.maxAgeWarning ?? '7d') as number),
      idleTimeoutMs: policy.apiKeys?.idleTimeout === undefined ? undefined : parseDuration(policy.apiKeys.idleTimeout),
    },
    clock: policy.clock,
    clockToleranceS,
    preflight: policy.preflight === 'pass',
  };
}

/** A Bearer challenge with optional realm, parameters and RFC 9728 `resource_metadata`. */
export const challenge = bearerChallenge;

/** One issuer configuration, compiled; `several` when the policy has more than one (token ids are then prefixed). */
function compileJwt(j: JwtPolicy, several: boolean): JwtConfig {
  const firstIssuer = typeof j.issuer === 'string' ? j.issuer : (j.issuer[0] as string);
  const name = j.name ?? createHash('sha256').update(firstIssuer).digest('base64url').slice(0, 16);
  const jwt: JwtConfig = {
    issuer: typeof j.issuer === 'string' ? j.issuer : [...j.issuer],
    audience: typeof j.audience === 'string' ? j.audience : [...j.audience],
    algorithms: [...j.algorithms],
    clockToleranceMs: parseDuration(j.clockTolerance ?? '5s') as number,
    requireExp: j.requireExp ?? true,
    cacheSize: j.cacheSize ?? 10_000,
    idPrefix: several ? `${name}:` : '',
    // Unlike a bare subject's counter owner (`sub:…`); names hold no `:`, so no two configurations share a prefix.
    ...(several && { subjectPrefix: `isub:${name}:` }),
  };
  if (j.jwksUri || j.discovery) {
    const D = DEFAULT_REMOTE_KEYS;
    if (j.jwksUri) jwt.jwksUri = j.jwksUri;
    if (j.discovery) jwt.discovery = true;
    jwt.jwks = {
      cooldownMs: parseDuration(j.jwks?.cooldown ?? D.cooldownMs) as number,
      cacheMaxAgeMs: parseDuration(j.jwks?.cacheMaxAge ?? D.cacheMaxAgeMs) as number,
      maxStaleMs: parseDuration(j.jwks?.maxStale ?? D.maxStaleMs) as number,
      // AbortSignal.timeout wants whole milliseconds.
      timeoutMs: Math.ceil(parseDuration(j.jwks?.timeout ?? D.timeoutMs) as number),
      maxBytes: j.jwks?.maxBytes ?? D.maxBytes,
      maxKeys: j.jwks?.maxKeys ?? D.maxKeys,
    };
  }
  if (j.keys) jwt.keys = [...j.keys];
  if (j.typ !== undefined) jwt.typ = (typeof j.typ === 'string' ? [j.typ] : [...j.typ]).map(normalizeTyp);
  if (j.secret !== undefined) jwt.secret = j.secret;
  if (j.maxTokenAge !== undefined) jwt.maxTokenAgeMs = parseDuration(j.maxTokenAge) as number;
  return jwt;
}
