// Public types of the framework-neutral core: the request the guard reads and the Decision it returns.

/** A value or a promise of it: store methods may answer synchronously or asynchronously. */
export type Awaitable<T> = T | Promise<T>;

// Declared here rather than imported from jose: jose is ESM-only, and CommonJS declarations (.d.cts) that import its
// types fail to compile under `moduleResolution: node16` (TS1479). It lists the members of jose's own JWK, so a jose
// key fits as it is, and it is a type alias, not an interface, so that it stays assignable to index-signature types
// such as Node's `JsonWebKey`. test/package/declarations.test.ts keeps the built declarations free of jose.
/** A JSON Web Key (RFC 7517): a key from `exportJWK` or from `keyObject.export({ format: 'jwk' })` fits as it is. */
export type Jwk = {
  kty?: string;
  alg?: string;
  key_ops?: string[];
  ext?: boolean;
  use?: string;
  x5c?: string[];
  x5t?: string;
  'x5t#S256'?: string;
  x5u?: string;
  kid?: string;
  crv?: string;
  d?: string;
  dp?: string;
  dq?: string;
  e?: string;
  k?: string;
  n?: string;
  p?: string;
  q?: string;
  qi?: string;
  x?: string;
  y?: string;
  pub?: string;
  priv?: string;
  oth?: Array<{ d?: string; r?: string; t?: string }>;
};

/**
 * Why a request was allowed or refused. `area.problem`, stable across releases. Derived from the reason
 * table (leaf/reasons.ts and the checks' own rows); see the README's reason-code table for the HTTP answer.
 */
export type ReasonCode = keyof TokenGuardReasonCodes & string;

/** The HTTP statuses a Decision can carry. */
export type DecisionStatus = 200 | 400 | 401 | 403 | 429 | 503;

/** What the guard reads from a request. Adapters build it; tests may build it by hand. */
export interface GuardRequest {
  /** HTTP method, any case. */
  method: string;
  /** The request target as received (path plus optional query string). Rules match the whole path, not a mount-relative one. */
  path: string;
  /** Header names in lower case. A header sent twice is an array (Node's `headersDistinct`). */
  headers: Record<string, string | string[] | undefined>;
  /** The socket's peer address; undefined (unix socket, some test harnesses) makes the client IP unknown. */
  remoteAddress: string | undefined;
  /** Evaluation time. Default: the guard's `clock()`. */
  now?: Date;
  /** The verified TLS client certificate, for mTLS-bound tokens (RFC 8705). */
  peerCertificate?: { fingerprint256?: string } | undefined;
  /**
   * Whether the app's router tells paths apart by letter case; adapters set it from the framework's own
   * setting so rules read a path as the router does. `'mixed'`: the app's routers disagree, or the adapter cannot
   * see them all; each rule is then read the strict way for its kind (restricting rules case-insensitively,
   * public rules case-sensitively), so no spelling reaches a route under a laxer rule than its own.
   * The policy's `caseSensitive`, when given, wins. Default: `false`.
   */
  caseSensitive?: boolean | 'mixed' | undefined;
  /**
   * Whether the app's router reads `/x/` as `/x` (Fastify `ignoreTrailingSlash`, Express without `strict routing`).
   * When not, `/x/` may be a route of its own, so a path with a trailing slash never matches a public rule written
   * without one (`/files` does not make `/files/` public); restricting rules cover both. Default: `false`.
   */
  ignoreTrailingSlash?: boolean | undefined;
  /**
   * The framework's own request (Express `req`, Koa `ctx`, Fastify `request`, the fetch `Request`), set by the
   * adapters: handed to `onDecision` as its second argument, and its `id` (Fastify's `request.id`, pino-http's
   * `req.id`) becomes the event's `requestId`. Never read by any check.
   */
  context?: unknown;
}

/** The verified token, as the app sees it on `req.auth.token`. */
export interface TokenInfo {
  /**
   * `jti`, or the SHA-256 of the signed JWT header and payload; for API keys the record id; for an introspected
   * opaque token its `jti`, else `sha256:` and the token's SHA-256. With several JWT issuer configurations,
   * prefixed by the configuration's name (`acme:<jti>`), so tenants' ids never collide.
   */
  id: string;
  /** `opaque`: a token the authorization server vouched for by introspection (RFC 7662). */
  kind: 'jwt' | 'api_key' | 'opaque';
  subject?: string;
  scopes: string[];
  expiresAt?: Date;
  issuedAt?: Date;
  /** JWT claims (the verified payload); for an opaque token, the introspection answer without `active`. */
  claims?: Record<string, unknown>;
  /** API key record metadata, when the record has any. */
  metadata?: Record<string, string | number | boolean>;
}

/** One risk signal's contribution. */
export interface RiskSignalScore {
  name: string;
  score: number;
}

/** The outcome of `guard.evaluate(request)`. */
export interface Decision {
  effect: 'allow' | 'deny' | 'step_up';
  status: DecisionStatus;
  /** The first failing check, or 'ok'. */
  reason: ReasonCode;
  /** Every failing check, in check order (what report-only reports). Empty when allowed. */
  reasons: ReasonCode[];
  /** `enforce`: a deny is answered. `report-only`: the decision is reported and the request goes through. */
  mode: 'enforce' | 'report-only';
  /** Name of the matched rule (`rules[].name`, by default its methods and path: `GET,HEAD /orders/**`); absent when no rule matched. */
  rule?: string;
  /** The verified token; absent when no valid token was presented. */
  token?: TokenInfo;
  /** Response headers to send: WWW-Authenticate, Retry-After, RateLimit-*. */
  headers: Record<string, string>;
  /** Operator-facing detail (never sent to the client), e.g. "no uses left". */
  detail?: string;
  risk?: { score: number; signals: RiskSignalScore[] };
}

/** One step of an evaluation, as `guard.explain` reports it (and a refused decision's audit event, under `auditTrace`). Names token ids and subjects, never a token. */
export interface TraceStep {
  /** The phase: `'rule'`, `'pre-auth'`, `'authenticate'`, `'bind'`, `'revoke'`, `'constraints'`, `'risk'`, `'quota'`, `'commit'`, `'decide'`. */
  phase: string;
  /** The check (`'ip'`, `'scopes'`, …) or engine step (`'token'`, `'revocation'`, …). */
  step: string;
  /** Whose value the check applied: the policy's, the matched rule's, or the API key record's. */
  level?: 'policy' | 'rule' | 'key';
  /** `pass`; `fail` (refuses); `reported` (a trialled rule's refusal, reported only); `skipped`; `info`. */
  outcome: 'pass' | 'fail' | 'reported' | 'skipped' | 'info';
  reason?: ReasonCode;
  detail?: string;
}

/** What an adapter puts on the request (`req.auth`, `ctx.state.auth`, `request.auth`). */
export interface AuthResult {
  token: TokenInfo | undefined;
  decision: Decision;
}

/** One audit event per decision. The raw token never appears in it. */
export interface DecisionEvent {
  time: Date;
  effect: Decision['effect'];
  status: DecisionStatus;
  reason: ReasonCode;
  reasons: ReasonCode[];
  mode: Decision['mode'];
  /** Whether the request was let through (allowed, or report-only). */
  passed: boolean;
  tokenId?: string;
  subject?: string;
  /** The token's `iss` (a JWT's, an introspected token's), so that two issuers' same `sub` stay two subjects. */
  issuer?: string;
  kind?: TokenInfo['kind'];
  /** Client IP as resolved (after trustProxy), when known. */
  ip?: string;
  method: string;
  /** The normalised path the rules were matched against (no query string). */
  path: string;
  /** Name of the matched rule, as in `decision.rule`. */
  rule?: string;
  /** Where the decision came from: the guard itself, or a per-route `requireScopes`. */
  source: 'guard' | 'requireScopes';
  /** Evaluation time in microseconds. */
  latencyUs: number;
  detail?: string;
  /** Set for store failures: the error's name and message (never a token). */
  error?: { name: string; message: string };
  risk?: Decision['risk'];
  /**
   * The request's id, to join the event to the app's own log line: the framework's `id` (Fastify `request.id`,
   * pino-http `req.id`), else the `X-Request-Id` header, else the trace id of a W3C `traceparent` header.
   */
  requestId?: string;
  /** The request's tightest rate-limit counter after it was counted (what the `RateLimit-*` headers say), when one was. */
  rateLimit?: { limit: number; remaining: number; resetS: number };
  /**
   * How a refused (or step-up) decision was reached, as `guard.explain` would list it: only under the policy's
   * `auditTrace: true`, only for decisions that are not `allow`, and only from the guard itself (not `requireScopes`).
   */
  trace?: TraceStep[];
}
