// The policy compiled once at start-up into matchers, sets and the registered checks' compiled values, so
// nothing is parsed or built per request. Its shape is in policy-types.ts, its schema in policy-schema.ts.
import { createHash } from 'node:crypto';
import { parseDuration } from '../leaf/duration.js';
import { compilePathMatcher } from '../leaf/path.js';
import { ClientIpResolver } from '../leaf/ip.js';
import type { RateLimitCheck, RateLimitRule, TokenStore } from '../leaf/store.js';
import type { ReasonCode } from '../leaf/types.js';
import { compileRateLimit } from '../checks/rate-limit.js';
import { compileRisk, type CompiledRisk } from '../checks/risk.js';
import { compileDpop, type DpopConfig } from '../checks/dpop.js';
import { compileApiKeyFormat, type ApiKeyFormat } from '../tokens/api-key.js';
import { normalizeTyp, type JwtConfig } from '../tokens/jwt.js';
import { compilePhase, compileRuleChecks, type PhaseSlots } from './registry.js';
import type { JwtPolicy, TokenGuardPolicy } from './policy-types.js';
import { validatePolicy } from './policy-schema.js';
import { literalPrefixes, ruleMethods, ruleName, type CompiledRule } from './rule-match.js';

export type { TokenGuardPolicy, JwtPolicy, ApiKeysPolicy, RulePolicy, RateLimitPolicy } from './policy-types.js';
export { validatePolicy } from './policy-schema.js';
export { explainUnmatched, matchRule, ruleName, type CompiledRule } from './rule-match.js';
export type { CompiledRisk } from '../checks/risk.js';

/** A policy, compiled. Internal: the guard's view of the policy. */
export interface CompiledPolicy {
  /** The issuer configurations (one, or several chosen by a token's `iss`). */
  jwt: JwtConfig[] | undefined;
  /** Accepted API keys: prefixes and the checksum secret, compiled. */
  apiKeys: ApiKeyFormat | undefined;
  /** The policy's store; `createGuard` picks the default when there is none. */
  store: TokenStore | undefined;
  storeTimeoutMs: number;
  clientIp: ClientIpResolver;
  /** The registered checks that run before authentication, with the policy's values. */
  preAuth: PhaseSlots;
  /** The registered constraint checks, with the policy's values. */
  constraints: PhaseSlots;
  rules: CompiledRule[];
  unmatched: 'deny' | 'authenticate';
  mode: 'enforce' | 'report-only';
  rateLimit: RateLimitCheck | undefined;
  risk: CompiledRisk | undefined;
  dpop: DpopConfig | undefined;
  maxTokenBytes: number;
  realm: string | undefined;
  /** RFC 9728 metadata URL named in every challenge. */
  resourceMetadata: string | undefined;
  trackUsage: boolean;
  onDecision: TokenGuardPolicy['onDecision'];
  /** The policy's clock; undefined when none is given (the guard then reads `Date.now()`). */
  clock: (() => Date) | undefined;
  clockToleranceS: number;
  /** Let CORS preflights through (`preflight: 'pass'`). */
  preflight: boolean;
}

function rateLimitCheck(name: string, r: RateLimitRule | undefined): RateLimitCheck | undefined {
  return r ? compileRateLimit(name, r.limit, parseDuration(r.window) as number) : undefined;
}

/** Validates and compiles a policy. Throws PolicyError. */
export function compilePolicy(input: TokenGuardPolicy): CompiledPolicy {
  const policy = validatePolicy(input);
  // An explicit setting fixes how rules read case; without one, the request says how its router reads it.
  const caseSensitive = policy.caseSensitive ?? false;
  const realm = policy.realm;
  const raw = policy as unknown as Record<string, unknown>;
  const rawRules = (policy.rules ?? []) as unknown as Record<string, unknown>[];
  const preAuth = compilePhase('pre-auth', raw, rawRules, realm);
  const constraints = compilePhase('constraints', raw, rawRules, realm);
  const rules = (policy.rules ?? []).map((r, i): CompiledRule => {
    const methods = r.methods ? new Set(ruleMethods(r.methods)) : undefined;
    const name = ruleName(r);
    const match = compilePathMatcher(r.path, caseSensitive);
    // Named by the rule's name (by default what it matches), not its position: inserting a rule must not hand
    // every token's counter to another rule, and instances sharing a store must agree on the name.
    const scope = `rule:${createHash('sha256').update(name).digest('base64url').slice(0, 16)}`;
    const env = { realm, scope };
    const rawRule = rawRules[i] as Record<string, unknown>;
    const rulePreAuth = compileRuleChecks(preAuth, rawRule, env);
    const ruleConstraints = compileRuleChecks(constraints, rawRule, env);
    const challenges = new Map<ReasonCode, string>();
    for (const [reason, params] of [...rulePreAuth.challenges, ...ruleConstraints.challenges]) challenges.set(reason, challenge(realm, params, policy.resourceMetadata));
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
      preAuth: rulePreAuth,
      constraints: ruleConstraints,
      challenges,
      rateLimit: rateLimitCheck(scope, r.rateLimit),
      mode: r.mode,
    };
  });
  const jwtPolicies = policy.jwt === undefined ? [] : Array.isArray(policy.jwt) ? (policy.jwt as readonly JwtPolicy[]) : [policy.jwt as JwtPolicy];
  // One configuration keeps today's token ids; with several, each is prefixed by its configuration's name.
  const jwt = jwtPolicies.length ? jwtPolicies.map((j) => compileJwt(j, jwtPolicies.length > 1)) : undefined;
  return {
    jwt,
    apiKeys: policy.apiKeys
      ? compileApiKeyFormat({ prefixes: policy.apiKeys.prefix, ...(policy.apiKeys.checksumSecret !== undefined && { checksumSecret: policy.apiKeys.checksumSecret }) })
      : undefined,
    store: policy.store,
    storeTimeoutMs: Math.ceil(parseDuration(policy.storeTimeout ?? '1s') as number),
    clientIp: new ClientIpResolver(policy.trustProxy ?? false),
    preAuth,
    constraints,
    rules,
    unmatched: policy.unmatched ?? 'deny',
    mode: policy.mode ?? 'enforce',
    rateLimit: rateLimitCheck('policy', policy.rateLimit),
    risk: policy.risk ? compileRisk(policy.risk) : undefined,
    dpop: policy.dpop ? compileDpop(policy.dpop) : undefined,
    maxTokenBytes: policy.maxTokenBytes ?? 8192,
    realm,
    trackUsage: policy.trackUsage ?? true,
    onDecision: policy.onDecision,
    clock: policy.clock,
    // The widest tolerance of the issuer configurations: revocations and proofs must outlive every token.
    clockToleranceS: (jwt ? Math.max(...jwt.map((j) => j.clockToleranceMs)) : 5000) / 1000,
    resourceMetadata: policy.resourceMetadata,
    preflight: policy.preflight === 'pass',
  };
}

/** A Bearer challenge with optional realm, parameters and RFC 9728 `resource_metadata`. */
export function challenge(realm: string | undefined, params: string, resourceMetadata?: string): string {
  const parts: string[] = [];
  if (realm !== undefined) parts.push(`realm="${realm}"`);
  if (params) parts.push(params);
  // A URL the schema checked: no quote or backslash can end the quoted string early.
  if (resourceMetadata !== undefined) parts.push(`resource_metadata="${resourceMetadata.replace(/["\\]/g, encodeURIComponent)}"`);
  return parts.length ? `Bearer ${parts.join(', ')}` : 'Bearer';
}

const DEFAULT_JWKS = { cooldown: '30s', cacheMaxAge: '10m', maxStale: '1h', timeout: '5s', maxBytes: 262_144, maxKeys: 100 } as const;

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
  };
  if (j.jwksUri || j.discovery) {
    if (j.jwksUri) jwt.jwksUri = j.jwksUri;
    if (j.discovery) jwt.discovery = true;
    jwt.jwks = {
      cooldownMs: parseDuration(j.jwks?.cooldown ?? DEFAULT_JWKS.cooldown) as number,
      cacheMaxAgeMs: parseDuration(j.jwks?.cacheMaxAge ?? DEFAULT_JWKS.cacheMaxAge) as number,
      maxStaleMs: parseDuration(j.jwks?.maxStale ?? DEFAULT_JWKS.maxStale) as number,
      // AbortSignal.timeout wants whole milliseconds.
      timeoutMs: Math.ceil(parseDuration(j.jwks?.timeout ?? DEFAULT_JWKS.timeout) as number),
      maxBytes: j.jwks?.maxBytes ?? DEFAULT_JWKS.maxBytes,
      maxKeys: j.jwks?.maxKeys ?? DEFAULT_JWKS.maxKeys,
    };
  }
  if (j.keys) jwt.keys = [...j.keys];
  if (j.typ !== undefined) jwt.typ = (typeof j.typ === 'string' ? [j.typ] : [...j.typ]).map(normalizeTyp);
  if (j.secret !== undefined) jwt.secret = j.secret;
  if (j.maxTokenAge !== undefined) jwt.maxTokenAgeMs = parseDuration(j.maxTokenAge) as number;
  return jwt;
}
