// The policy: its public shape, its zod schema (strict: unknown keys are errors), and its compilation
// into matchers and sets once at start-up, so nothing is parsed or built per request.
import { createHash, createPublicKey, X509Certificate, type JsonWebKey } from 'node:crypto';
import { z } from 'zod';
import type { JWK } from 'jose';
import { PolicyError, type PolicyIssue } from '../leaf/errors.js';
import { parseDuration, timerDurationSchema, type Duration } from '../leaf/duration.js';
import { checkGlob, compilePathMatcher, pathSegments, type PathMatcher } from '../leaf/path.js';
import { checkMethod, METHOD_TOKEN_RE } from '../leaf/methods.js';
import { formatPath, policyIssues } from './policy-issues.js';
import { checkCidr, ClientIpResolver } from '../leaf/ip.js';
import { IpConstraint, type IpRule } from '../checks/ip.js';
import { checkHours, DAYS, HoursConstraint, type HoursRule } from '../checks/hours.js';
import { SCOPE_TOKEN_RE, toScopeRequirement, scopeChallengeValue, type ScopeRequirement, type ScopesPolicy } from '../checks/scopes.js';
import { compileStepUp, type StepUpRequirement } from '../checks/step-up.js';
import { compileRateLimit } from '../checks/rate-limit.js';
import { RiskEngine, type RiskPolicy } from '../checks/risk.js';
import type { DpopConfig, DpopPolicy } from '../checks/dpop.js';
import { checksumSecretProblem, compileApiKeyFormat, isValidPrefix, PREFIX_RULE, type ApiKeyFormat } from '../tokens/api-key.js';
import { JWT_ALGORITHMS, MIN_SECRET_BYTES, normalizeTyp, type JwtAlgorithm, type JwtConfig } from '../tokens/jwt.js';
import type { RateLimitCheck, RateLimitRule, TokenStore } from '../leaf/store.js';
import type { DecisionEvent } from '../leaf/types.js';

/** JWT acceptance. */
export interface JwtPolicy {
  /** Accepted `iss` value(s). Required. */
  issuer: string | readonly string[];
  /** Accepted `aud` value(s): the token must name at least one. Required. */
  audience: string | readonly string[];
  /** Allow-list of JWS algorithms. Required; `none` is never accepted. */
  algorithms: readonly JwtAlgorithm[];
  /** Remote JWK Set (fetched with caching; refetched on an unknown `kid` at most once per `jwks.cooldown`). */
  jwksUri?: string;
  /**
   * Remote JWKS tuning. Default: `{ cooldown: '30s', cacheMaxAge: '10m', timeout: '5s' }`. `cooldown` and
   * `timeout` must be above zero; `cacheMaxAge: 0` refetches the set for every new token and caches none.
   */
  jwks?: { cooldown?: Duration; cacheMaxAge?: Duration; timeout?: Duration };
  /** Local public keys: JWKs or PEM strings (SPKI or certificate). */
  keys?: readonly (JWK | string)[];
  /** Shared secret for HS256/384/512 (at least 32/48/64 bytes). PEM, JWK or JWKS text is refused: that is a public key, not a secret. */
  secret?: string | Uint8Array;
  /** Leeway for exp, nbf, iat and auth_time. Default: `'5s'`. */
  clockTolerance?: Duration;
  /** Refuse tokens whose `iat` is older than this, even if `exp` is later. Default: none. */
  maxTokenAge?: Duration;
  /** Refuse tokens without `exp`. Default: `true`. */
  requireExp?: boolean;
  /**
   * Accepted `typ` header value(s), compared case-insensitively without an `application/` prefix, e.g.
   * `'at+jwt'` (RFC 9068) to refuse ID tokens too. A token without `typ` then fails. Default: no `typ`,
   * `'JWT'` or `'at+jwt'`; every other type (`dpop+jwt`, `secevent+jwt`, `logout+jwt`, …) is refused.
   */
  typ?: string | readonly string[];
  /** Most verified tokens remembered (each until its `exp`). Default: 10 000. */
  cacheSize?: number;
}

/** Per-token rate limit in a policy or rule. */
export type RateLimitPolicy = RateLimitRule;

/** One access rule. Rules are tried in order; the first whose methods and path match applies. */
export interface RulePolicy {
  /** Path glob: `*` one segment, `**` any depth (`/orders/**` also matches `/orders`). */
  path: string;
  /**
   * Methods this rule applies to, upper-case and registered (`http.METHODS`) or declared in the policy's
   * `extensionMethods`. Default: all. `GET` also covers `HEAD`.
   */
  methods?: readonly string[];
  /** No token needed. Cannot be combined with token requirements. */
  public?: boolean;
  /** Required scopes: an array (all of them) or `{ all?, any? }`. */
  scopes?: ScopesPolicy;
  /** Client addresses for this rule (on top of the policy's). */
  ip?: IpRule;
  /** Hours for this rule (on top of the policy's). */
  hours?: HoursRule;
  /** Demand recent or stronger authentication (RFC 9470). */
  stepUp?: { maxAge?: Duration; amr?: readonly string[]; acr?: readonly string[] };
  /** A rate limit for this rule, counted per token separately from the policy's. */
  rateLimit?: RateLimitPolicy;
  /**
   * Override the policy's mode for this rule: `'report-only'` trials only the rule's own constraints;
   * `'enforce'` under a report-only policy enforces everything on this rule's requests. Default: the policy's.
   */
  mode?: 'enforce' | 'report-only';
  /** The rule's name in `decision.rule`, audit events and details; unique. Default: its methods and path (`GET,HEAD /orders/**`, `* /health`). */
  name?: string;
}

/** API key acceptance. */
export interface ApiKeysPolicy {
  /**
   * The prefix of accepted keys (`'tg_'`), or several (`['sk_live_', 'sk_test_']`: live and test keys, or an
   * old and a new prefix during a migration). A token starting with one of them is read as an API key, never
   * as a JWT. A letter, then letters, digits or `_`, ending in `_`; at most 32 characters; not `eyJ…` (JWTs start so).
   */
  prefix: string | readonly string[];
  /**
   * Secret (at least 32 bytes) the keys' keyed checksum was minted with (`issueApiKey({ checksumSecret })`).
   * A key minted without it or under another secret is refused with no store lookup. Default: none (the
   * CRC32 checksum only catches typos; any well-formed key then costs a lookup).
   */
  checksumSecret?: string | Uint8Array;
}

/**
 * The policy a guard enforces. Validated once when the guard is created; an invalid policy throws
 * PolicyError naming each bad path.
 */
export interface TokenGuardPolicy {
  /** Accept JWT access tokens. */
  jwt?: JwtPolicy;
  /** Accept opaque API keys (see ApiKeysPolicy). */
  apiKeys?: ApiKeysPolicy;
  /** Where token state lives. Default: a new MemoryStore for this guard (per process: warns once under `NODE_ENV=production`). */
  store?: TokenStore;
  /** Longest a store call may take before the request fails closed (503); above zero, at most 2^31−1 ms. Default: `'1s'`. */
  storeTimeout?: Duration;
  /** CIDRs of proxies whose X-Forwarded-For is believed. Default: `false` (the socket address is the client). */
  trustProxy?: false | readonly string[];
  /** Client addresses for every request. */
  ip?: IpRule;
  /** Allowed hours for every request. */
  hours?: HoursRule;
  /** Access rules, first match wins. */
  rules?: readonly RulePolicy[];
  /**
   * HTTP methods outside the registry (`http.METHODS`) that rules may name, upper-case, e.g. `['BREW']`.
   * Anything else a rule lists that is not registered is refused as a probable typo. Default: none.
   */
  extensionMethods?: readonly string[];
  /** A request no rule matches: `'deny'` (403 `rule.unmatched` once the token is valid) or `'authenticate'` (any valid token). Default: `'deny'`. */
  unmatched?: 'deny' | 'authenticate';
  /** `'report-only'` decides and reports but lets every request through. Default: `'enforce'`. */
  mode?: 'enforce' | 'report-only';
  /** Per-token rate limit for every request. */
  rateLimit?: RateLimitPolicy;
  /**
   * Match rule paths case-sensitively. Default: as the app's router does, which the adapter reads: Fastify's
   * `routerOptions.caseSensitive` (on by default), Express's `case sensitive routing` (off by default); off
   * for Koa and for `createGuard` alone. Set it when the adapter cannot see your router (Express or
   * @koa/router `Router({ caseSensitive | sensitive: true })`, Hono, Next.js).
   */
  caseSensitive?: boolean;
  /** Longest token accepted, in bytes; longer ones are refused before parsing. Default: 8192. */
  maxTokenBytes?: number;
  /** `realm` of the WWW-Authenticate challenge. Default: none. */
  realm?: string;
  /** Accept DPoP-bound tokens with proofs (RFC 9449). Default: off (DPoP-bound tokens are refused). */
  dpop?: DpopPolicy;
  /** Risk scoring: signals summed to a score that may ask for step-up (`stepUpAt`) or deny (`denyAt`). */
  risk?: RiskPolicy;
  /** Record per-token usage (count, first and last use, recent IPs, last User-Agent) in the store. Default: `true`. */
  trackUsage?: boolean;
  /** Audit hook: one event per decision. Its errors and rejections are swallowed. */
  onDecision?: (event: DecisionEvent) => void | Promise<void>;
  /** Time source. Default: `() => new Date()`. Requests may also carry their own `now`. */
  clock?: () => Date;
  /**
   * `'pass'`: a CORS preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`, without
   * `Authorization`) goes through untouched, as an allow with no token, and is audited. Better still, mount
   * the CORS middleware before the guard so it answers preflights itself. Default: `'guard'` (preflights are
   * guarded like any request, so browsers see a 401 for them).
   */
  preflight?: 'guard' | 'pass';
}

// ---------------------------------------------------------------------------------------------
// Schema

const durationSchema = z.union([z.number(), z.string()]).superRefine((v, ctx) => {
  if (parseDuration(v) === undefined) ctx.addIssue({ code: 'custom', message: `expected a duration like '30s', '10m', '1h', '7d' or milliseconds (got ${JSON.stringify(v)})` });
});
const positiveDuration = durationSchema.superRefine((v, ctx) => {
  if (parseDuration(v) === 0) ctx.addIssue({ code: 'custom', message: 'expected a duration greater than zero' });
});
const cidrSchema = z.string().superRefine((v, ctx) => {
  const m = checkCidr(v);
  if (m) ctx.addIssue({ code: 'custom', message: m });
});
// An empty allow list could be read as "nobody" or as "no restriction", and an empty `ip` restricts
// nothing: both are refused rather than given either meaning.
const ipSchema = z
  .strictObject({
    allow: z.array(cidrSchema).min(1, "an empty allow list is ambiguous (nobody, or everybody?): list addresses, or to refuse every client write deny: ['0.0.0.0/0', '::/0']").optional(),
    deny: z.array(cidrSchema).optional(),
  })
  // `allow: []` is reported by itself above.
  .refine((v) => v.allow !== undefined || (v.deny?.length ?? 0) > 0, 'an empty ip constraint restricts nothing: list addresses in allow or deny, or remove ip');
const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected HH:MM');
const hoursSchema = z
  .strictObject({
    timezone: z.string(),
    windows: z
      .array(
        z.strictObject({
          days: z.array(z.enum(DAYS as [string, ...string[]])).min(1).optional(),
          from: hhmm,
          to: z.union([hhmm, z.literal('24:00')], { error: 'expected HH:MM' }),
        }),
      )
      .min(1, 'expected at least one window'),
  })
  .superRefine((v, ctx) => {
    for (const p of checkHours(v as HoursRule)) {
      if (p.message !== 'expected HH:MM') ctx.addIssue({ code: 'custom', message: p.message, path: p.path.split(/\.|\[|\]/).filter(Boolean).map((s) => (/^\d+$/.test(s) ? Number(s) : s)) });
    }
  });
const scopeString = z.string().regex(SCOPE_TOKEN_RE, 'expected a scope token (printable, no spaces, quotes or backslashes)');
// acr and amr values go into the step-up challenge header: same shape as scope tokens.
const stepUpSchema = z
  .strictObject({
    maxAge: durationSchema.optional(),
    amr: z.array(z.string().regex(SCOPE_TOKEN_RE, 'expected an amr value (printable, no spaces, quotes or backslashes)')).min(1).optional(),
    acr: z.array(z.string().regex(SCOPE_TOKEN_RE, 'expected an acr value (printable, no spaces, quotes or backslashes)')).min(1).optional(),
  })
  .refine((v) => v.maxAge !== undefined || v.amr !== undefined || v.acr !== undefined, 'expected at least one of maxAge, amr or acr (an empty step-up is always satisfied)');
// An empty requirement would let any valid token through: refused, never dropped. A route open to every
// valid token is written without scopes.
const EMPTY_SCOPES = 'requires no scope, so any valid token would pass: list at least one scope, or remove scopes if any valid token may call this route';
const scopesSchema = z.union([
  z.array(scopeString).min(1, `an empty scope list ${EMPTY_SCOPES}`),
  z
    .strictObject({
      all: z.array(scopeString).min(1, `an empty "all" ${EMPTY_SCOPES}`).optional(),
      any: z.array(scopeString).min(1, 'an empty "any" list names no scope a token could have: list at least one scope, or remove any').optional(),
    })
    .refine((v) => v.all !== undefined || v.any !== undefined, `an object without all or any ${EMPTY_SCOPES}`),
], { error: 'expected an array of scopes or { all?: [...], any?: [...] }' });
const rateLimitSchema = z.strictObject({ limit: z.number().int().positive(), window: positiveDuration });
const modeSchema = z.enum(['enforce', 'report-only']);
// Registered or declared: checked in validatePolicy, which sees the policy's extensionMethods.
const methodSchema = z.string();

const ruleSchema = z
  .strictObject({
    path: z.string().superRefine((v, ctx) => {
      const m = checkGlob(v);
      if (m) ctx.addIssue({ code: 'custom', message: m });
    }),
    methods: z.array(methodSchema).min(1, 'an empty list matches no request, so the rule would never apply: list methods, or remove methods to cover all').optional(),
    public: z.boolean().optional(),
    scopes: scopesSchema.optional(),
    ip: ipSchema.optional(),
    hours: hoursSchema.optional(),
    stepUp: stepUpSchema.optional(),
    rateLimit: rateLimitSchema.optional(),
    mode: modeSchema.optional(),
    name: z.string().regex(/^[^\p{Cc}]{1,128}$/u, 'expected 1 to 128 characters without control characters').optional(),
  })
  .superRefine((r, ctx) => {
    if (r.public) {
      for (const k of ['scopes', 'ip', 'hours', 'stepUp', 'rateLimit'] as const) {
        if (r[k] !== undefined) ctx.addIssue({ code: 'custom', path: [k], message: 'a public rule cannot also require a token constraint' });
      }
    }
  });

const jwkSchema = z.custom<JWK>((v) => !!v && typeof v === 'object' && typeof (v as { kty?: unknown }).kty === 'string', 'expected a JWK object');

const jwtSchema = z
  .strictObject({
    issuer: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    algorithms: z.array(z.string()).min(1, 'expected at least one algorithm').superRefine((algs, ctx) => {
      algs.forEach((a, i) => {
        if (!(JWT_ALGORITHMS as readonly string[]).includes(a)) {
          ctx.addIssue({ code: 'custom', path: [i], message: a.toLowerCase() === 'none' ? '"none" is never accepted' : `unsupported algorithm "${a}" (expected one of ${JWT_ALGORITHMS.join(', ')})` });
        }
      });
    }),
    jwksUri: z.string().url().optional(),
    // A zero cooldown would refetch the key set for every token naming an unknown kid: anyone could make
    // the guard hammer the issuer. timeout reaches AbortSignal.timeout, a timer.
    jwks: z.strictObject({ cooldown: positiveDuration.optional(), cacheMaxAge: durationSchema.optional(), timeout: timerDurationSchema.optional() }).optional(),
    keys: z.array(z.union([z.string(), jwkSchema])).min(1).optional(),
    secret: z.union([z.string(), z.instanceof(Uint8Array)]).superRefine((v, ctx) => {
      const problem = checkSecret(v);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }).optional(),
    clockTolerance: durationSchema.optional(),
    maxTokenAge: durationSchema.optional(),
    requireExp: z.boolean().optional(),
    typ: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)], { error: 'expected a typ value or a non-empty array of them' }).optional(),
    cacheSize: z.number().int().positive().optional(),
  })
  .superRefine((j, ctx) => {
    const hmac = j.algorithms.filter((a) => a.startsWith('HS'));
    const asym = j.algorithms.filter((a) => !a.startsWith('HS'));
    if (j.jwksUri && j.keys) ctx.addIssue({ code: 'custom', path: ['keys'], message: 'give either jwksUri or keys, not both' });
    if (asym.length && !j.jwksUri && !j.keys) ctx.addIssue({ code: 'custom', path: ['algorithms'], message: `${asym.join(', ')} need jwksUri or keys` });
    if (hmac.length && j.secret === undefined) ctx.addIssue({ code: 'custom', path: ['algorithms'], message: `${hmac.join(', ')} need a secret` });
    if (j.secret !== undefined) {
      if (!hmac.length) ctx.addIssue({ code: 'custom', path: ['secret'], message: 'a secret is only used with HS256/HS384/HS512 in algorithms' });
      const bytes = typeof j.secret === 'string' ? Buffer.byteLength(j.secret) : j.secret.length;
      for (const a of hmac) {
        const min = MIN_SECRET_BYTES[a] as number;
        if (bytes < min) ctx.addIssue({ code: 'custom', path: ['secret'], message: `${a} needs a secret of at least ${min} bytes (got ${bytes})` });
      }
    }
    j.keys?.forEach((k, i) => {
      const problem = checkPublicKey(k);
      if (problem) ctx.addIssue({ code: 'custom', path: ['keys', i], message: problem });
    });
    if (j.jwksUri && !isSafeJwksUri(j.jwksUri)) {
      ctx.addIssue({ code: 'custom', path: ['jwksUri'], message: 'must be https (plain http is allowed only for loopback addresses): signing keys fetched over http can be swapped in transit' });
    }
  });

/**
 * Why a shared secret is key material rather than a secret, or undefined. An RSA or EC public key (PEM,
 * JWK, JWKS or DER) used as the HMAC secret lets anyone holding the public key sign HS256 tokens: the
 * RS256→HS256 key confusion, set up by configuration.
 */
function checkSecret(secret: string | Uint8Array): string | undefined {
  const bytes = typeof secret === 'string' ? Buffer.from(secret) : Buffer.from(secret.buffer, secret.byteOffset, secret.byteLength);
  const text = typeof secret === 'string' ? secret : bytes.toString('utf8');
  const confusion = 'an HMAC secret must be random bytes known only to the issuer and this guard, never key material';
  if (text.includes('-----BEGIN')) return `is PEM text (a key or certificate): ${confusion}`;
  const trimmed = text.trim();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    let json: unknown;
    try {
      json = JSON.parse(trimmed);
    } catch {
      json = undefined;
    }
    const isJwk = (v: unknown) => !!v && typeof v === 'object' && 'kty' in v;
    if (isJwk(json) || (Array.isArray(json) && json.some(isJwk)) || (!!json && typeof json === 'object' && 'keys' in json)) {
      return `is JWK or JWK Set text: ${confusion}`;
    }
  }
  // A bare DER public key or certificate, as bytes or base64 ("MIIBIjANBg…").
  const candidates = [bytes];
  if (/^[A-Za-z0-9+/=_\s-]+$/.test(trimmed)) candidates.push(Buffer.from(trimmed, 'base64'));
  for (const der of candidates) if (der.length > 0 && der[0] === 0x30 && isDerKey(der)) return `is a DER public key or certificate: ${confusion}`;
  return undefined;
}

function isDerKey(der: Buffer): boolean {
  for (const type of ['spki', 'pkcs1'] as const) {
    try {
      createPublicKey({ key: der, format: 'der', type });
      return true;
    } catch {
      // not this encoding
    }
  }
  try {
    new X509Certificate(der);
    return true;
  } catch {
    return false;
  }
}

/** Why a configured public key is unusable, or undefined. Parsed here so a bad key fails at start-up, not as 401s. */
function checkPublicKey(k: JWK | string): string | undefined {
  if (typeof k === 'string') {
    if (!k.includes('-----BEGIN')) return 'expected a PEM public key or certificate';
    if (/PRIVATE KEY/.test(k)) return 'a private key was given: give the public key';
  } else if ('d' in k || 'k' in k) {
    return 'only public JWKs belong in keys (symmetric secrets go in secret)';
  }
  try {
    const key = typeof k === 'string' ? createPublicKey(k) : createPublicKey({ key: k as JsonWebKey, format: 'jwk' });
    if (key.type !== 'public') return 'expected a public key';
    const bits = key.asymmetricKeyDetails?.modulusLength;
    // RFC 7518 §3.3: RSA signing keys are at least 2048 bits.
    if (bits !== undefined && bits < 2048) return `RSA key of ${bits} bits: at least 2048 are required`;
  } catch (err) {
    return `not a usable public key (${err instanceof Error ? err.message : String(err)})`;
  }
  return undefined;
}

function isSafeJwksUri(uri: string): boolean {
  const url = new URL(uri);
  if (url.protocol === 'https:') return true;
  return url.protocol === 'http:' && (url.hostname === 'localhost' || url.hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(url.hostname));
}

const storeSchema = z.custom<TokenStore>((s) => {
  if (!s || typeof s !== 'object') return false;
  const o = s as Record<string, unknown>;
  return ['getApiKey', 'revoke', 'revokeSubject', 'getRevocation', 'consume', 'useApiKey', 'recordUsage', 'getUsage', 'claimOnce'].every((m) => typeof o[m] === 'function');
}, 'expected a TokenStore (getApiKey, revoke, revokeSubject, getRevocation, consume, useApiKey, recordUsage, getUsage, claimOnce)');

const fn = (what: string) => z.custom<(...args: never[]) => unknown>((v) => typeof v === 'function', `expected a function (${what})`);

const DPOP_ALGORITHMS = JWT_ALGORITHMS.filter((a) => !a.startsWith('HS'));
const dpopSchema = z.strictObject({
  algorithms: z.array(z.enum(DPOP_ALGORITHMS as [string, ...string[]], { error: `expected one of ${DPOP_ALGORITHMS.join(', ')}` })).min(1).optional(),
  maxAge: positiveDuration.optional(),
  required: z.boolean().optional(),
  maxClaimsPerKey: z.number().int().min(1).max(1_000_000).optional(),
  origins: z
    .array(z.string().refine((o) => { try { return new URL(o).origin === o; } catch { return false; } }, 'expected an origin such as "https://api.example.com" (scheme and host, no path)'))
    .min(1)
    .optional(),
});

const points = z.number().finite().min(0, 'expected points ≥ 0');
const riskSchema = z
  .strictObject({
    newIp: points.optional(),
    userAgentChange: points.optional(),
    offHours: z.strictObject({ score: points, hours: hoursSchema }).optional(),
    velocity: z
      .strictObject({ score: points, factor: z.number().min(1).optional(), minPerMinute: z.number().int().min(1).optional(), minHistory: z.number().int().min(1).optional() })
      .optional(),
    custom: z.record(z.string().regex(/^[A-Za-z][\w.-]*$/, 'expected a signal name'), fn('(context) => number')).optional(),
    stepUpAt: points.optional(),
    stepUp: stepUpSchema.optional(),
    denyAt: points.optional(),
  })
  .superRefine((r, ctx) => {
    if (r.stepUpAt !== undefined && r.denyAt !== undefined && r.stepUpAt >= r.denyAt) {
      ctx.addIssue({ code: 'custom', path: ['stepUpAt'], message: 'must be lower than denyAt (a score that denies cannot be stepped up)' });
    }
  });

const apiKeysSchema = z.strictObject({
  prefix: z.union([z.string(), z.array(z.string())], { error: 'expected a prefix or a list of prefixes' }).superRefine((prefix, ctx) => {
    const list = typeof prefix === 'string' ? [prefix] : prefix;
    if (list.length === 0) ctx.addIssue({ code: 'custom', message: 'expected at least one prefix' });
    list.forEach((x, i) => {
      const path = typeof prefix === 'string' ? [] : [i];
      if (!isValidPrefix(x)) ctx.addIssue({ code: 'custom', path, message: `${PREFIX_RULE} (got ${JSON.stringify(x)})` });
      else if (list.indexOf(x) !== i) ctx.addIssue({ code: 'custom', path, message: `duplicate prefix ${JSON.stringify(x)}` });
    });
  }),
  checksumSecret: z
    .union([z.string(), z.instanceof(Uint8Array)], { error: 'expected a string or a Uint8Array of at least 32 bytes' })
    .superRefine((secret, ctx) => {
      const problem = checksumSecretProblem(secret);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .optional(),
});

const policySchema = z
  .strictObject({
    jwt: jwtSchema.optional(),
    apiKeys: apiKeysSchema.optional(),
    store: storeSchema.optional(),
    storeTimeout: timerDurationSchema.optional(),
    trustProxy: z.union([z.literal(false), z.array(cidrSchema)], { error: 'expected false or a list of proxy CIDRs' }).optional(),
    ip: ipSchema.optional(),
    hours: hoursSchema.optional(),
    rules: z.array(ruleSchema).optional(),
    extensionMethods: z.array(z.string().regex(METHOD_TOKEN_RE, 'expected a method name (an RFC 9110 token)').refine((m) => m === m.toUpperCase(), 'expected an upper-case method name')).min(1).optional(),
    unmatched: z.enum(['deny', 'authenticate']).optional(),
    mode: modeSchema.optional(),
    rateLimit: rateLimitSchema.optional(),
    caseSensitive: z.boolean().optional(),
    maxTokenBytes: z.number().int().min(64).max(1_048_576).optional(),
    realm: z.string().regex(/^[\x20\x21\x23-\x5B\x5D-\x7E]*$/, 'expected printable characters without quotes or backslashes').optional(),
    trackUsage: z.boolean().optional(),
    risk: riskSchema.optional(),
    dpop: dpopSchema.optional(),
    onDecision: fn('event) => void').optional(),
    clock: fn('() => Date').optional(),
    preflight: z.enum(['guard', 'pass']).optional(),
  })
  .superRefine((p, ctx) => {
    if (!p.jwt && !p.apiKeys) ctx.addIssue({ code: 'custom', path: [], message: 'accept at least one token kind: give jwt, apiKeys or both' });
    // One secret, one purpose: an HMAC key shared with JWT verification would tie the two together.
    const bytes = (v: unknown) => (typeof v === 'string' ? Buffer.from(v, 'utf8') : v instanceof Uint8Array ? Buffer.from(v) : undefined);
    const keySecret = bytes(p.apiKeys?.checksumSecret);
    const jwtSecret = bytes(p.jwt?.secret);
    if (keySecret && jwtSecret && keySecret.equals(jwtSecret)) {
      ctx.addIssue({ code: 'custom', path: ['apiKeys', 'checksumSecret'], message: 'must not be jwt.secret: give API keys their own secret' });
    }
    if (p.dpop && !p.jwt) ctx.addIssue({ code: 'custom', path: ['dpop'], message: 'DPoP binds JWTs: give jwt too' });
    if (p.dpop && !p.dpop.origins) {
      ctx.addIssue({ code: 'custom', path: ['dpop', 'origins'], message: 'required: the origins proofs may name in htu (the Host header is the client\'s to choose)' });
    }
    // Names identify rules in decisions, audit events and rate-limit counters: two rules never share one.
    const named = new Map<string, number>();
    p.rules?.forEach((r, i) => {
      const name = ruleName(r);
      const j = named.get(name);
      if (j === undefined) named.set(name, i);
      else if (r.name === undefined && p.rules?.[j]?.name === undefined) ctx.addIssue({ code: 'custom', path: ['rules', i, 'path'], message: `same methods and path as rules[${j}] ("${name}"), so it never matches: remove it or merge the two` });
      else ctx.addIssue({ code: 'custom', path: ['rules', i, 'name'], message: `rule name "${name}" is already taken by rules[${j}]: names must be unique` });
    });
    if (p.trackUsage === false && p.risk && (p.risk.newIp !== undefined || p.risk.userAgentChange !== undefined || p.risk.velocity !== undefined)) {
      ctx.addIssue({ code: 'custom', path: ['risk'], message: 'newIp, userAgentChange and velocity read the usage that trackUsage: false turns off' });
    }
  });

/** Rule methods that are neither registered nor declared in `extensionMethods` (see checkMethod). */
function methodIssues(policy: Record<string, unknown>): PolicyIssue[] {
  const declared = Array.isArray(policy['extensionMethods']) ? policy['extensionMethods'].filter((m): m is string => typeof m === 'string') : [];
  const extensions = new Set(declared);
  const issues: PolicyIssue[] = [];
  const rules = policy['rules'];
  if (!Array.isArray(rules)) return issues;
  rules.forEach((rule: unknown, i) => {
    const methods = rule && typeof rule === 'object' ? (rule as { methods?: unknown }).methods : undefined;
    if (!Array.isArray(methods)) return;
    methods.forEach((m: unknown, j) => {
      const problem = typeof m === 'string' ? checkMethod(m, extensions) : undefined;
      if (problem) issues.push({ path: formatPath(['rules', i, 'methods', j]), message: problem });
    });
  });
  return issues;
}

/** Validates a policy; throws PolicyError listing every problem with its path and, where there is one, its fix. */
export function validatePolicy(policy: unknown): TokenGuardPolicy {
  if (!policy || typeof policy !== 'object') throw new PolicyError([{ path: '', message: 'expected a policy object' }]);
  const result = policySchema.safeParse(policy);
  // Run apart from zod: an object-level refinement would be skipped whenever another key has a problem.
  const issues = methodIssues(policy as Record<string, unknown>);
  if (result.success && !issues.length) return policy as TokenGuardPolicy;
  throw new PolicyError([...(result.success ? [] : policyIssues(policySchema, policy, result.error.issues)), ...issues]);
}

// ---------------------------------------------------------------------------------------------
// Compiled form

/** A rule, compiled. */
export interface CompiledRule {
  /** `rules[].name`, or its methods and path: what decisions and audit events call it. */
  name: string;
  /** The path glob as written. */
  path: string;
  methods: ReadonlySet<string> | undefined;
  match: PathMatcher;
  /** The case-sensitive matcher for requests whose router reads case, when the policy leaves case to the router. */
  matchCased: PathMatcher | undefined;
  /** Under `caseSensitive`, the same glob matched case-insensitively: only to explain a `rule.unmatched`. */
  matchAnyCase: PathMatcher | undefined;
  /** The glob's leading literal segments as prefixes (`/api`, `/api/orders` for `/api/orders/**`): only to explain a `rule.unmatched`. */
  literalPrefixes: readonly string[];
  public: boolean;
  scopes: ScopeRequirement | undefined;
  /** WWW-Authenticate value for insufficient scope, built once. */
  scopeChallenge: string | undefined;
  ip: IpConstraint | undefined;
  hours: HoursConstraint | undefined;
  stepUp: StepUpRequirement | undefined;
  rateLimit: RateLimitCheck | undefined;
  mode: 'enforce' | 'report-only' | undefined;
}

/** Risk scoring, compiled. */
export interface CompiledRisk {
  engine: RiskEngine;
  stepUpAt: number | undefined;
  denyAt: number | undefined;
  /** What satisfies a risk step-up. */
  stepUp: StepUpRequirement;
}

/** A policy, compiled. Internal: the guard's view of the policy. */
export interface CompiledPolicy {
  jwt: JwtConfig | undefined;
  /** Accepted API keys: prefixes and the checksum secret, compiled. */
  apiKeys: ApiKeyFormat | undefined;
  /** The policy's store; `createGuard` picks the default when there is none. */
  store: TokenStore | undefined;
  storeTimeoutMs: number;
  clientIp: ClientIpResolver;
  ip: IpConstraint | undefined;
  hours: HoursConstraint | undefined;
  rules: CompiledRule[];
  unmatched: 'deny' | 'authenticate';
  mode: 'enforce' | 'report-only';
  rateLimit: RateLimitCheck | undefined;
  risk: CompiledRisk | undefined;
  dpop: DpopConfig | undefined;
  maxTokenBytes: number;
  realm: string | undefined;
  trackUsage: boolean;
  onDecision: TokenGuardPolicy['onDecision'];
  clock: () => Date;
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
  const rules = (policy.rules ?? []).map((r): CompiledRule => {
    const methods = r.methods ? new Set(ruleMethods(r.methods)) : undefined;
    const name = ruleName(r);
    const match = compilePathMatcher(r.path, caseSensitive);
    const scopes = r.scopes ? toScopeRequirement(r.scopes) : undefined;
    const hasScopes = !!scopes && scopes.all.length + scopes.any.length > 0;
    const stepUp = r.stepUp
      ? compileStepUp({
          ...(r.stepUp.maxAge !== undefined && { maxAgeMs: parseDuration(r.stepUp.maxAge) as number }),
          ...(r.stepUp.amr && { amr: r.stepUp.amr }),
          ...(r.stepUp.acr && { acr: r.stepUp.acr }),
        })
      : undefined;
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
      scopes: hasScopes ? scopes : undefined,
      scopeChallenge: hasScopes ? challenge(realm, `error="insufficient_scope", scope="${scopeChallengeValue(scopes as ScopeRequirement)}"`) : undefined,
      ip: r.ip ? new IpConstraint(r.ip) : undefined,
      hours: r.hours ? new HoursConstraint(r.hours) : undefined,
      stepUp,
      // Named by the rule's name (by default what it matches), not its position: inserting a rule must not hand
      // every token's counter to another rule, and instances sharing a store must agree on the name.
      rateLimit: rateLimitCheck(`rule:${createHash('sha256').update(name).digest('base64url').slice(0, 16)}`, r.rateLimit),
      mode: r.mode,
    };
  });
  let jwt: JwtConfig | undefined;
  if (policy.jwt) {
    const j = policy.jwt;
    jwt = {
      issuer: typeof j.issuer === 'string' ? j.issuer : [...j.issuer],
      audience: typeof j.audience === 'string' ? j.audience : [...j.audience],
      algorithms: [...j.algorithms],
      clockToleranceMs: parseDuration(j.clockTolerance ?? '5s') as number,
      requireExp: j.requireExp ?? true,
      cacheSize: j.cacheSize ?? 10_000,
    };
    if (j.jwksUri) {
      jwt.jwksUri = j.jwksUri;
      jwt.jwks = {
        cooldownMs: parseDuration(j.jwks?.cooldown ?? '30s') as number,
        cacheMaxAgeMs: parseDuration(j.jwks?.cacheMaxAge ?? '10m') as number,
        // jose wants whole milliseconds.
        timeoutMs: Math.ceil(parseDuration(j.jwks?.timeout ?? '5s') as number),
      };
    }
    if (j.keys) jwt.keys = [...j.keys];
    if (j.typ !== undefined) jwt.typ = (typeof j.typ === 'string' ? [j.typ] : [...j.typ]).map(normalizeTyp);
    if (j.secret !== undefined) jwt.secret = j.secret;
    if (j.maxTokenAge !== undefined) jwt.maxTokenAgeMs = parseDuration(j.maxTokenAge) as number;
  }
  return {
    jwt,
    apiKeys: policy.apiKeys
      ? compileApiKeyFormat({ prefixes: policy.apiKeys.prefix, ...(policy.apiKeys.checksumSecret !== undefined && { checksumSecret: policy.apiKeys.checksumSecret }) })
      : undefined,
    store: policy.store,
    storeTimeoutMs: Math.ceil(parseDuration(policy.storeTimeout ?? '1s') as number),
    clientIp: new ClientIpResolver(policy.trustProxy ?? false),
    ip: policy.ip ? new IpConstraint(policy.ip) : undefined,
    hours: policy.hours ? new HoursConstraint(policy.hours) : undefined,
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
    clock: policy.clock ?? (() => new Date()),
    clockToleranceS: (jwt?.clockToleranceMs ?? 5000) / 1000,
    preflight: policy.preflight === 'pass',
  };
}

function compileDpop(d: DpopPolicy): DpopConfig {
  const algorithms = [...(d.algorithms ?? ['ES256', 'RS256', 'PS256', 'EdDSA'])];
  return {
    algorithms,
    maxAgeS: (parseDuration(d.maxAge ?? '60s') as number) / 1000,
    required: d.required ?? false,
    maxClaimsPerKey: d.maxClaimsPerKey ?? 1000,
    origins: new Set(d.origins),
    challenge: `DPoP algs="${algorithms.join(' ')}"`,
  };
}

function compileRisk(r: RiskPolicy): CompiledRisk {
  const su = r.stepUp ?? { maxAge: '5m' };
  return {
    engine: new RiskEngine(r),
    stepUpAt: r.stepUpAt,
    denyAt: r.denyAt,
    stepUp: compileStepUp({
      ...(su.maxAge !== undefined && { maxAgeMs: parseDuration(su.maxAge) as number }),
      ...(su.amr && { amr: su.amr }),
      ...(su.acr && { acr: su.acr }),
    }),
  };
}

/** A Bearer challenge with optional realm and parameters. */
export function challenge(realm: string | undefined, params: string): string {
  const parts: string[] = [];
  if (realm !== undefined) parts.push(`realm="${realm}"`);
  if (params) parts.push(params);
  return parts.length ? `Bearer ${parts.join(', ')}` : 'Bearer';
}

/** A rule's methods as matched: upper case, each once, and HEAD right after GET (routers answer HEAD with the GET handler, so a GET rule must guard HEAD too, or HEAD walks past it). */
function ruleMethods(methods: readonly string[]): string[] {
  const out: string[] = [];
  const upper = methods.map((m) => m.toUpperCase());
  for (const m of upper) {
    if (out.includes(m)) continue;
    out.push(m);
    if (m === 'GET' && !upper.includes('HEAD')) out.push('HEAD');
  }
  return out;
}

/**
 * A rule's name: its own `name`, else its methods and path (`GET,HEAD /orders/**`, `* /health`). One function
 * names a rule everywhere: decisions, audit events, details and its rate-limit counter.
 */
export function ruleName(r: { name?: string | undefined; methods?: readonly string[] | undefined; path: string }): string {
  return r.name ?? `${r.methods ? ruleMethods(r.methods).join(',') : '*'} ${r.path}`;
}

/** `/api/v1/orders/**` → `['/api', '/api/v1']`: the literal prefixes a mount could have put in front of a path. */
function literalPrefixes(glob: string): string[] {
  const segments = glob.split('/').filter(Boolean);
  const literal = segments.findIndex((seg) => seg.includes('*'));
  // The last literal segment is left out: it must match the path itself, or `/orders/**` would "match" any path
  // under the prefix `/orders`.
  const run = literal === -1 ? segments : segments.slice(0, literal);
  return run.slice(0, -1).map((_, i) => `/${run.slice(0, i + 1).join('/')}`);
}

/** The longest path shown in a detail: paths come from clients, details go to logs. */
const SHOWN_PATH = 200;
const shown = (path: string) => (path.length > SHOWN_PATH ? `${path.slice(0, SHOWN_PATH)}…` : path);

/**
 * The detail of `rule.unmatched`: the method and normalised path the rules were tried on, and, when a rule
 * would have matched under another letter case, without or with a mount prefix, or for another method, which
 * one. Runs only when no rule matched, so the hot path never pays for it.
 */
export function explainUnmatched(rules: readonly CompiledRule[], method: string, path: string, caseSensitive = false): string {
  const tried = `no rule matches ${method} ${shown(path)}`;
  if (rules.length === 0) return `${tried} (the policy has no rules)`;
  const hint = unmatchedHint(rules, method, path, caseSensitive);
  return hint ? `${tried}; ${hint}` : tried;
}

function unmatchedHint(rules: readonly CompiledRule[], method: string, path: string, caseSensitive: boolean): string | undefined {
  const methodFits = (r: CompiledRule) => !r.methods || r.methods.has(method);
  const segmentsOf = (p: string) => {
    let segs: string[] | undefined;
    return () => (segs ??= pathSegments(p));
  };
  const segments = segmentsOf(path);
  for (const r of rules) {
    if (r.matchAnyCase && methodFits(r) && r.matchAnyCase(path, segments)) {
      // With case left to the router, `matchAnyCase` is `match`: a hint only when this request's router reads case.
      const leftToRouter = r.matchAnyCase === r.match;
      if (leftToRouter && !caseSensitive) continue;
      return `rule "${r.name}" would match in another letter case (${leftToRouter ? "the app's router reads case" : 'caseSensitive is on'})`;
    }
  }
  // Rules written relative to a mount point (`app.use('/api', guard)` with a rule `/orders/**`): the guard sees
  // the full path, `/api/orders/1`. A few leading segments are enough to catch a mount prefix.
  for (let cut = path.indexOf('/', 1), n = 0; cut > 0 && n < 4; cut = path.indexOf('/', cut + 1), n++) {
    const rest = path.slice(cut);
    const r = matchRule(rules, method, rest, caseSensitive);
    if (r) return `rule "${r.name}" would match ${shown(rest)}: rules match the full path, mount prefix (${shown(path.slice(0, cut))}) included, so write the rule's path with it`;
  }
  // The reverse: a rule with the prefix, and a path that arrived without it (a GuardRequest built from a mount-relative path).
  for (const r of rules) {
    if (!methodFits(r)) continue;
    for (const prefix of r.literalPrefixes) {
      const full = path === '/' ? prefix : prefix + path;
      if (r.match(full, segmentsOf(full))) return `rule "${r.name}" would match ${shown(full)}: the guard was given the path without the mount prefix ${prefix} (pass the full request path)`;
    }
  }
  for (const r of rules) {
    if (!methodFits(r) && r.match(path, segments)) return `rule "${r.name}" matches the path, but not the method ${method}`;
  }
  return undefined;
}

/** Finds the first rule matching a method and normalised path (read case-sensitively when the router does). */
export function matchRule(rules: readonly CompiledRule[], method: string, path: string, caseSensitive = false): CompiledRule | undefined {
  let segments: string[] | undefined;
  const lazySegments = () => (segments ??= pathSegments(path));
  for (const r of rules) {
    if (r.methods && !r.methods.has(method)) continue;
    if ((caseSensitive ? (r.matchCased ?? r.match) : r.match)(path, lazySegments)) return r;
  }
  return undefined;
}
