// The policy's public shape. The keys each check owns (ip, hours, scopes, stepUp, …) come from the check
// registry: a check's slice type lives in its own file and joins these interfaces through CheckPolicySlices.
import type { Duration } from '../leaf/duration.js';
import type { RateLimitRule, TokenStore } from '../leaf/store.js';
import type { DecisionEvent, Jwk } from '../leaf/types.js';
import type { GuardTelemetry } from '../leaf/telemetry.js';
import type { LifecycleEvent } from '../leaf/lifecycle.js';
import type { IntrospectionPolicy } from '../tokens/introspection.js';
import type { JwtAlgorithm } from '../tokens/jwt.js';
import type { CheckPolicySlices, CheckRuleSlices } from './registry.js';

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
   * Find the JWK Set in the issuer's metadata: `/.well-known/oauth-authorization-server` (RFC 8414), then
   * `/.well-known/openid-configuration` (OpenID Connect Discovery). The metadata's `issuer` must equal
   * `issuer` exactly, which must then be one https (or loopback http) URL. Cached and refreshed like the
   * JWK Set. Default: `false`.
   */
  discovery?: boolean;
  /**
   * Remote JWKS (and metadata) tuning. Default: `{ cooldown: '30s', cacheMaxAge: '10m', maxStale: '1h',
   * timeout: '5s', maxBytes: 262144, maxKeys: 100 }`. `cooldown` and `timeout` must be above zero;
   * `cacheMaxAge: 0` refetches the set for every new token and caches none. While refetches fail, the last
   * good set keeps verifying until `cacheMaxAge + maxStale` after it was fetched (then 503 `idp.unavailable`).
   */
  jwks?: { cooldown?: Duration; cacheMaxAge?: Duration; maxStale?: Duration; timeout?: Duration; maxBytes?: number; maxKeys?: number };
  /** Local public keys: JWKs or PEM strings (SPKI or certificate). */
  keys?: readonly (Jwk | string)[];
  /** Shared secret for HS256/384/512 (at least 32/48/64 bytes). PEM, JWK or JWKS text is refused: that is a public key, not a secret. */
  secret?: string | Uint8Array;
  /**
   * Leeway for exp, nbf, iat and auth_time, for clocks that differ a little. At most `'5m'`: it stretches every
   * expiry by as much (to cap a token's age, use `maxTokenAge`). Default: `'5s'`.
   */
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
  /**
   * With several issuer configurations: the prefix of this one's token ids (`<name>:<jti>`), so that tenants'
   * `jti`s never collide in revocations, counters and usage. Letters, digits, `.`, `_`, `-`; unique. Default:
   * the first 16 characters of the base64url SHA-256 of its (first) issuer. Unused with one configuration.
   */
  name?: string;
}

/** A rate limit in a policy or rule: per token, or with `by: 'subject'` per verified subject. */
export type RateLimitPolicy = RateLimitRule;

/** One access rule. Rules are tried in order; the first whose methods and path match applies. */
export interface RulePolicy extends CheckRuleSlices {
  /** Path glob: `*` one segment, `**` any depth (`/orders/**` also matches `/orders`). */
  path: string;
  /**
   * Methods this rule applies to, upper-case and registered (`http.METHODS`) or declared in the policy's
   * `extensionMethods`. Default: all. `GET` also covers `HEAD`.
   */
  methods?: readonly string[];
  /** No token needed. Cannot be combined with token requirements. */
  public?: boolean;
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
  /**
   * Keys older than this (since `createdAt`) are refused with `token.expired`, whatever their own expiry; during
   * `maxAgeWarning` before that, answers carry a `Sunset` header. Default: none.
   */
  maxAge?: Duration;
  /** How long before `maxAge` answers carry the `Sunset` warning. Default: `'7d'` (or all of `maxAge` if shorter). */
  maxAgeWarning?: Duration;
  /**
   * Keys unused for this long (since their last recorded use, or their creation) are retired on their next use:
   * revoked with reason `idle`, refused, and reported as `key.retired`. Needs `trackUsage`. Default: none.
   */
  idleTimeout?: Duration;
}

/**
 * The policy a guard enforces. Validated once when the guard is created; an invalid policy throws
 * PolicyError naming each bad path.
 */
export interface TokenGuardPolicy extends CheckPolicySlices {
  /**
   * Accept JWT access tokens: one issuer configuration, or a list (multi-tenant) chosen by each token's
   * `iss`. With several, token ids are `<name>:<jti>` (see JwtPolicy.name).
   */
  jwt?: JwtPolicy | readonly JwtPolicy[];
  /** Accept opaque API keys (see ApiKeysPolicy). */
  apiKeys?: ApiKeysPolicy;
  /**
   * Accept opaque access tokens by asking the authorization server (RFC 7662 introspection): every token that is
   * not an API key, and not JWT-shaped when `jwt` is given too. See docs/introspection.md.
   */
  introspection?: IntrospectionPolicy;
  /** Where token state lives. Default: a new MemoryStore for this guard (per process: warns once under `NODE_ENV=production`). */
  store?: TokenStore;
  /** Longest a store call may take before the request fails closed (503); above zero, at most 2^31−1 ms. Default: `'1s'`. */
  storeTimeout?: Duration;
  /**
   * Which X-Forwarded-For entries are believed. A list of CIDRs: the proxies at those addresses; the header is walked
   * right to left past them and the first other address is the client. Ranges that take in public addresses
   * wholesale (IPv4 wider than /8, IPv6 wider than /7, `0.0.0.0/0`, `::/0`) are refused: every client would be a
   * trusted proxy. `{ hops: n }` (1 to 10), for proxies whose addresses are not known (a hosting platform's load
   * balancer): the client is the entry n from the right (n = 1: the last, which the one proxy appended); with fewer
   * entries the client is unknown. Then the app must be reachable only through those proxies.
   * Default: `false` (the socket address is the client).
   * @example
   * trustProxy: ['10.0.0.0/8']   // your own proxies' network
   * trustProxy: { hops: 1 }      // one load balancer whose address you do not know
   */
  trustProxy?: false | readonly string[] | { readonly hops: number };
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
  /**
   * Match rule paths case-sensitively. Default: as the app's router does, which the adapter reads: Fastify's
   * `routerOptions.caseSensitive` (on by default), Express's `case sensitive routing` (off by default); off
   * for `createGuard` alone. Where routers disagree or cannot be seen (Express Routers or sub-apps with their own
   * setting, Koa), restricting rules match any case and public rules only their own. Set it to read case one way
   * everywhere, or when the adapter cannot see your router (Hono, Next.js).
   */
  caseSensitive?: boolean;
  /** Longest token accepted, in bytes; longer ones are refused before parsing. Default: 8192. */
  maxTokenBytes?: number;
  /** `realm` of the WWW-Authenticate challenge. Default: none. */
  realm?: string;
  /**
   * URL of this API's protected resource metadata (RFC 9728), e.g.
   * `'https://api.example.com/.well-known/oauth-protected-resource'`: sent as `resource_metadata="…"` in every
   * WWW-Authenticate challenge so clients can find the authorization servers. Serve the document with
   * `protectedResourceMetadata`. https (or loopback http). Default: none.
   */
  resourceMetadata?: string;
  /** Record per-token usage (count, first and last use, recent IPs, last User-Agent) in the store. Default: `true`. */
  trackUsage?: boolean;
  /**
   * Audit hook: one event per decision. The second argument is the framework's own request (Express `req`,
   * Koa `ctx`, Fastify `request`, the fetch `Request`; undefined for `createGuard` alone), e.g. to log the
   * decision with `req.log` on the request's own logger. Its errors and rejections are swallowed.
   */
  onDecision?: (event: DecisionEvent, request?: unknown) => void | Promise<void>;
  /**
   * Put on the audit event of every decision that is not an allow the steps that reached it (`event.trace`,
   * what `guard.explain` lists, without re-running the request): the check that refused, its level and detail.
   * Steps name token ids and subjects, never a token. Costs a small array per audited decision; nothing when off
   * or when neither `onDecision` nor `telemetry` is set. Default: `false`.
   */
  auditTrace?: boolean;
  /**
   * Spans and metrics per decision, store call and JWKS fetch: `otel()` from `token-guard/otel`, or your own
   * GuardTelemetry. Default: none (nothing is measured, and no tracing library is loaded).
   */
  telemetry?: GuardTelemetry;
  /**
   * Lifecycle hook: one event per change the guard makes or sees (`token.revoked`, `subject.revoked`, `key.revoked`
   * from `guard.revoke*`; `key.retired`, `key.expired` from requests). Also appended to the store when it keeps
   * events. Its errors and rejections are swallowed.
   */
  onLifecycle?: (event: LifecycleEvent) => void | Promise<void>;
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
