// The scenario table: one list of requests and expected answers that every adapter must give alike.
import type { ReasonCode } from '../../src/index.js';
import { NOW } from '../helpers/tokens.js';
import { OFFICE, OUTSIDE, PROXY, SATURDAY, STRANGER, type Fixtures, type Variant } from './world.js';

/**
 * What the WWW-Authenticate header must say: an RFC 6750 `error` value, `'bare'` for a challenge
 * without an error attribute (`Bearer`), or `'none'` for no header at all.
 */
export type WwwAuthExpectation = 'invalid_request' | 'invalid_token' | 'insufficient_scope' | 'insufficient_user_authentication' | 'bare' | 'none';

/** The expected answer. A 200 echoes `auth.decision.reason` from the handler; a refusal carries it in the problem body. */
export interface Expectation {
  expectStatus: 200 | 400 | 401 | 403 | 429 | 503;
  expectReason: ReasonCode;
  expectWwwAuthError: WwwAuthExpectation;
}

/** One request and the answer every adapter must give. */
export interface ScenarioCase extends Expectation {
  name: string;
  /** Which app: default `'main'`. */
  variant?: Variant;
  method: 'GET' | 'POST' | 'DELETE' | 'OPTIONS';
  /** The request target exactly as sent (raw: dot segments and escapes are not resolved by the client). */
  path: string;
  /** Header values; an array sends the header once per value (true duplicates on the wire). */
  headers: (f: Fixtures) => Record<string, string | string[]>;
  /** Socket address of the client; undefined models a unix socket or a harness without one. */
  clientIp: string | undefined;
  /** X-Forwarded-For, as a proxy (or an impostor) would send it. */
  xff?: string;
  /** Evaluation time (the policy's clock). Default: NOW, Wednesday 2026-11-25 10:00 UTC. */
  now?: Date;
  /** Other response headers that must be present (name in lower case → pattern). */
  expectHeaders?: Record<string, RegExp>;
  /** Text the WWW-Authenticate header must contain besides its error, e.g. `scope="orders:read"`. */
  expectWwwAuthIncludes?: string;
  /**
   * The answer where the client side parses the target as a WHATWG URL before any app code runs (a
   * fetch `Request`, Fastify's `inject`): dot segments, `%2e` included, are resolved there, so the
   * guard judges the resolved path, the same one the router then routes. Raw-socket transports send
   * the target verbatim and the guard refuses it. Either way the dot segments never reach a handler.
   */
  whatwg?: Expectation;
  /** The answer where the app's router reads letter case (Fastify's default, the fetch adapter), when it differs. */
  cased?: Expectation;
  /** The answer where the guard cannot know how the router reads case (Koa): public rules in their own case only. */
  mixedCase?: Expectation;
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const none = () => ({});
/** What a browser sends before a cross-origin DELETE: no credentials, ever. */
const preflight = { origin: 'https://app.example.test', 'access-control-request-method': 'DELETE' };

const answer = (status: Expectation['expectStatus'], reason: ReasonCode, www: WwwAuthExpectation): Expectation => ({
  expectStatus: status,
  expectReason: reason,
  expectWwwAuthError: www,
});

/** Every scenario. Add one here and it runs against Express, Koa, Fastify (inject and a real server) and fetch. */
export const CASES: readonly ScenarioCase[] = [
  // --- token.missing and request.malformed -------------------------------------------------------
  { name: 'no Authorization header', method: 'GET', path: '/orders/1', headers: none, clientIp: OUTSIDE, ...answer(401, 'token.missing', 'bare') },
  {
    name: 'a Basic credential is not a token',
    method: 'GET',
    path: '/orders/1',
    headers: () => ({ authorization: 'Basic YWxpY2U6c2VjcmV0' }),
    clientIp: OUTSIDE,
    ...answer(401, 'token.missing', 'bare'),
  },
  {
    name: 'two Authorization headers',
    method: 'GET',
    path: '/orders/1',
    headers: (f) => ({ authorization: [`Bearer ${f.read}`, `Bearer ${f.admin}`] }),
    clientIp: OUTSIDE,
    ...answer(400, 'request.malformed', 'invalid_request'),
  },
  {
    name: 'two Authorization headers, the second one not Bearer',
    method: 'GET',
    path: '/orders/1',
    headers: (f) => ({ authorization: [`Bearer ${f.read}`, 'Basic YWxpY2U6c2VjcmV0'] }),
    clientIp: OUTSIDE,
    ...answer(400, 'request.malformed', 'invalid_request'),
  },
  {
    name: 'two credentials in one header',
    method: 'GET',
    path: '/orders/1',
    headers: (f) => ({ authorization: `Bearer ${f.read}, Bearer ${f.admin}` }),
    clientIp: OUTSIDE,
    ...answer(400, 'request.malformed', 'invalid_request'),
  },
  {
    name: 'a Bearer token with a DPoP proof header',
    method: 'GET',
    path: '/orders/1',
    headers: (f) => ({ ...bearer(f.read), dpop: 'eyJhbGciOiJFUzI1NiJ9.e30.sig' }),
    clientIp: OUTSIDE,
    ...answer(400, 'request.malformed', 'invalid_request'),
  },
  {
    name: 'the Bearer scheme without a token',
    method: 'GET',
    path: '/orders/1',
    headers: () => ({ authorization: 'Bearer' }),
    clientIp: OUTSIDE,
    ...answer(400, 'request.malformed', 'invalid_request'),
  },
  // RFC 9110 §11.4: exactly one SP between scheme and credentials. Each of these reaches the guard unchanged
  // through a socket, inject and fetch alike (OWS around the whole value is stripped before it: see the regression test).
  {
    name: 'a tab between the scheme and the token',
    method: 'GET',
    path: '/orders/1',
    headers: (f) => ({ authorization: `Bearer\t${f.read}` }),
    clientIp: OUTSIDE,
    ...answer(400, 'request.malformed', 'invalid_request'),
  },
  {
    name: 'two spaces between the scheme and the token',
    method: 'GET',
    path: '/orders/1',
    headers: (f) => ({ authorization: `Bearer  ${f.read}` }),
    clientIp: OUTSIDE,
    ...answer(400, 'request.malformed', 'invalid_request'),
  },
  {
    name: 'a space and a tab between the scheme and the token',
    method: 'GET',
    path: '/orders/1',
    headers: (f) => ({ authorization: `Bearer \t${f.read}` }),
    clientIp: OUTSIDE,
    ...answer(400, 'request.malformed', 'invalid_request'),
  },
  {
    name: 'a no-break space between the scheme and the token',
    method: 'GET',
    path: '/orders/1',
    headers: (f) => ({ authorization: `Bearer\u00a0${f.read}` }),
    clientIp: OUTSIDE,
    ...answer(400, 'request.malformed', 'invalid_request'),
  },
  {
    name: 'a no-break space after the token',
    method: 'GET',
    path: '/orders/1',
    headers: (f) => ({ authorization: `Bearer ${f.read}\u00a0` }),
    clientIp: OUTSIDE,
    ...answer(400, 'request.malformed', 'invalid_request'),
  },
  {
    name: 'a tab between the scheme and an API key',
    method: 'GET',
    path: '/orders/1',
    headers: (f) => ({ authorization: `Bearer\t${f.apiKey}` }),
    clientIp: OUTSIDE,
    ...answer(400, 'request.malformed', 'invalid_request'),
  },
  {
    name: 'a tab between the DPoP scheme and the token',
    method: 'GET',
    path: '/orders/1',
    headers: (f) => ({ authorization: `DPoP\t${f.read}`, dpop: 'eyJhbGciOiJFUzI1NiJ9.e30.sig' }),
    clientIp: OUTSIDE,
    ...answer(400, 'request.malformed', 'invalid_request'),
  },

  // --- risk.denied and risk-driven step-up ---------------------------------------------------------
  {
    name: 'a scanner User-Agent is refused by the risk score',
    method: 'GET',
    path: '/orders/1',
    headers: (f) => ({ ...bearer(f.read), 'user-agent': 'sqlmap/1.7.2' }),
    clientIp: OUTSIDE,
    ...answer(403, 'risk.denied', 'none'),
  },
  {
    name: 'a risky request asks for a fresh login',
    method: 'GET',
    path: '/orders/1',
    headers: (f) => ({ ...bearer(f.read), 'user-agent': 'curl/8.4.0' }),
    clientIp: OUTSIDE,
    expectWwwAuthIncludes: 'max_age="300"',
    ...answer(401, 'step_up.required', 'insufficient_user_authentication'),
  },

  // --- token.malformed, token.invalid, token.expired, token.revoked -------------------------------
  {
    name: 'a token that is not a JWS',
    method: 'GET',
    path: '/orders/1',
    headers: () => bearer('not-a-jwt'),
    clientIp: OUTSIDE,
    ...answer(401, 'token.malformed', 'invalid_token'),
  },
  {
    name: 'an API key whose checksum fails',
    method: 'GET',
    path: '/orders/1',
    headers: (f) => bearer(f.apiKeyMangled),
    clientIp: OUTSIDE,
    ...answer(401, 'token.malformed', 'invalid_token'),
  },
  {
    name: 'a token over maxTokenBytes',
    method: 'GET',
    path: '/orders/1',
    headers: (f) => bearer(f.oversized),
    clientIp: OUTSIDE,
    ...answer(401, 'token.malformed', 'invalid_token'),
  },
  {
    name: 'a JWT signed with an unknown key',
    method: 'GET',
    path: '/orders/1',
    headers: (f) => bearer(f.foreignKey),
    clientIp: OUTSIDE,
    ...answer(401, 'token.invalid', 'invalid_token'),
  },
  {
    name: 'a JWT for another audience',
    method: 'GET',
    path: '/orders/1',
    headers: (f) => bearer(f.wrongAudience),
    clientIp: OUTSIDE,
    ...answer(401, 'token.invalid', 'invalid_token'),
  },
  {
    name: 'an API key no store knows',
    method: 'GET',
    path: '/orders/1',
    headers: (f) => bearer(f.apiKeyUnknown),
    clientIp: OUTSIDE,
    ...answer(401, 'token.invalid', 'invalid_token'),
  },
  { name: 'a JWT past its exp', method: 'GET', path: '/orders/1', headers: (f) => bearer(f.expired), clientIp: OUTSIDE, ...answer(401, 'token.expired', 'invalid_token') },
  {
    name: 'a valid JWT, two hours later on the clock',
    method: 'GET',
    path: '/orders/2',
    headers: (f) => bearer(f.read),
    clientIp: OUTSIDE,
    now: new Date(NOW.getTime() + 2 * 3600_000),
    ...answer(401, 'token.expired', 'invalid_token'),
  },
  {
    name: 'a JWT before its nbf',
    method: 'GET',
    path: '/orders/1',
    headers: (f) => bearer(f.notYetValid),
    clientIp: OUTSIDE,
    ...answer(401, 'token.expired', 'invalid_token'),
  },
  {
    name: 'an API key with no uses left',
    method: 'GET',
    path: '/orders/1',
    headers: (f) => bearer(f.apiKeyUsedUp),
    clientIp: OUTSIDE,
    ...answer(401, 'token.expired', 'invalid_token'),
  },
  { name: 'a revoked JWT', method: 'GET', path: '/orders/1', headers: (f) => bearer(f.revoked), clientIp: OUTSIDE, ...answer(401, 'token.revoked', 'invalid_token') },
  { name: 'a revoked API key', method: 'GET', path: '/orders/1', headers: (f) => bearer(f.apiKeyRevoked), clientIp: OUTSIDE, ...answer(401, 'token.revoked', 'invalid_token') },

  // --- allowed requests, scopes, rules --------------------------------------------------------------
  { name: "a JWT with the rule's scope", method: 'GET', path: '/orders/1', headers: (f) => bearer(f.read), clientIp: OUTSIDE, ...answer(200, 'ok', 'none') },
  { name: "an API key with the rule's scope", method: 'GET', path: '/orders/1', headers: (f) => bearer(f.apiKey), clientIp: OUTSIDE, ...answer(200, 'ok', 'none') },
  {
    name: 'a client address is not needed where no IP rule applies',
    method: 'GET',
    path: '/orders/1',
    headers: (f) => bearer(f.read),
    clientIp: undefined,
    ...answer(200, 'ok', 'none'),
  },
  {
    name: "a JWT without the rule's scope",
    method: 'GET',
    path: '/orders/1',
    headers: (f) => bearer(f.reports),
    clientIp: OUTSIDE,
    expectWwwAuthIncludes: 'scope="orders:read"',
    ...answer(403, 'scope.insufficient', 'insufficient_scope'),
  },
  {
    name: 'a valid token on a path no rule covers',
    method: 'GET',
    path: '/nowhere',
    headers: (f) => bearer(f.read),
    clientIp: OUTSIDE,
    ...answer(403, 'rule.unmatched', 'none'),
  },
  { name: 'a public route without a token', method: 'GET', path: '/health', headers: none, clientIp: OUTSIDE, ...answer(200, 'ok', 'none') },
  { name: 'a public route ignores a garbage token', method: 'GET', path: '/health', headers: () => bearer('garbage'), clientIp: undefined, ...answer(200, 'ok', 'none') },

  // --- requireScopes on a route ----------------------------------------------------------------------
  {
    name: "requireScopes lets a token with the route's scope through",
    method: 'GET',
    path: '/things/1',
    headers: (f) => bearer(f.things),
    clientIp: OUTSIDE,
    ...answer(200, 'ok', 'none'),
  },
  {
    name: 'requireScopes refuses a token the guard let through',
    method: 'GET',
    path: '/things/1',
    headers: (f) => bearer(f.read),
    clientIp: OUTSIDE,
    expectWwwAuthIncludes: 'scope="things:read"',
    ...answer(403, 'scope.insufficient', 'insufficient_scope'),
  },
  { name: 'the guard refuses before requireScopes runs', method: 'GET', path: '/things/1', headers: none, clientIp: OUTSIDE, ...answer(401, 'token.missing', 'bare') },

  // --- IP, trustProxy and X-Forwarded-For ------------------------------------------------------------
  {
    name: 'an admin token from outside the allow-list',
    method: 'GET',
    path: '/admin/users',
    headers: (f) => bearer(f.admin),
    clientIp: OUTSIDE,
    ...answer(403, 'ip.denied', 'none'),
  },
  { name: 'an admin token from the office', method: 'GET', path: '/admin/users', headers: (f) => bearer(f.admin), clientIp: OFFICE, ...answer(200, 'ok', 'none') },
  {
    name: 'an unknown client address where an IP rule applies',
    method: 'GET',
    path: '/admin/users',
    headers: (f) => bearer(f.admin),
    clientIp: undefined,
    ...answer(403, 'ip.unknown', 'none'),
  },
  {
    name: 'X-Forwarded-For from a trusted proxy names the client',
    method: 'GET',
    path: '/admin/users',
    headers: (f) => bearer(f.admin),
    clientIp: PROXY,
    xff: OFFICE,
    ...answer(200, 'ok', 'none'),
  },
  {
    name: 'X-Forwarded-For from an untrusted peer is ignored',
    method: 'GET',
    path: '/admin/users',
    headers: (f) => bearer(f.admin),
    clientIp: STRANGER,
    xff: OFFICE,
    ...answer(403, 'ip.denied', 'none'),
  },
  {
    name: 'a forged left-most X-Forwarded-For entry is not believed',
    method: 'GET',
    path: '/admin/users',
    headers: (f) => bearer(f.admin),
    clientIp: PROXY,
    xff: `${OFFICE}, ${STRANGER}`,
    ...answer(403, 'ip.denied', 'none'),
  },
  {
    name: 'an unparsable X-Forwarded-For hop makes the client unknown',
    method: 'GET',
    path: '/admin/users',
    headers: (f) => bearer(f.admin),
    clientIp: PROXY,
    xff: 'not-an-ip',
    ...answer(403, 'ip.unknown', 'none'),
  },

  // --- hours, step-up, proof of possession, rate limit --------------------------------------------
  { name: 'reports inside office hours', method: 'GET', path: '/reports/q3', headers: (f) => bearer(f.reports), clientIp: OUTSIDE, ...answer(200, 'ok', 'none') },
  {
    name: 'reports on a Saturday',
    method: 'GET',
    path: '/reports/q3',
    headers: (f) => bearer(f.reportsSaturday),
    clientIp: OUTSIDE,
    now: SATURDAY,
    ...answer(403, 'hours.outside', 'none'),
  },
  {
    name: 'a write without recent MFA',
    method: 'POST',
    path: '/orders',
    headers: (f) => bearer(f.write),
    clientIp: OUTSIDE,
    expectWwwAuthIncludes: 'max_age="600"',
    ...answer(401, 'step_up.required', 'insufficient_user_authentication'),
  },
  { name: 'a write with MFA a minute ago', method: 'POST', path: '/orders', headers: (f) => bearer(f.writeMfa), clientIp: OUTSIDE, ...answer(200, 'ok', 'none') },
  {
    name: 'a certificate-bound token without a client certificate',
    method: 'GET',
    path: '/orders/1',
    headers: (f) => bearer(f.certBound),
    clientIp: OUTSIDE,
    ...answer(401, 'pop.invalid', 'invalid_token'),
  },
  {
    name: 'the DPoP scheme (proofs are not verified by this version)',
    method: 'GET',
    path: '/orders/1',
    headers: (f) => ({ authorization: `DPoP ${f.read}`, dpop: 'eyJhbGciOiJFUzI1NiJ9.e30.sig' }),
    clientIp: OUTSIDE,
    ...answer(401, 'pop.invalid', 'invalid_token'),
  },
  {
    name: 'a request within its rate limit carries RateLimit headers',
    method: 'GET',
    path: '/limited/x',
    headers: (f) => bearer(f.apiKey),
    clientIp: OUTSIDE,
    expectHeaders: { 'ratelimit-limit': /^1$/, 'ratelimit-remaining': /^0$/, 'ratelimit-reset': /^\d+$/ },
    ...answer(200, 'ok', 'none'),
  },
  {
    name: 'a token whose rule-level rate limit is spent',
    method: 'GET',
    path: '/limited/x',
    headers: (f) => bearer(f.limited),
    clientIp: OUTSIDE,
    expectHeaders: { 'retry-after': /^\d+$/, 'ratelimit-remaining': /^0$/ },
    ...answer(429, 'rate.limited', 'none'),
  },

  {
    name: 'a token of tenant acme on the acme route',
    method: 'GET',
    path: '/tenants/acme/orders',
    headers: (f) => bearer(f.acme),
    clientIp: OUTSIDE,
    ...answer(200, 'ok', 'none'),
  },
  {
    name: 'a token of no tenant on the acme route',
    method: 'GET',
    path: '/tenants/acme/orders',
    headers: (f) => bearer(f.read),
    clientIp: OUTSIDE,
    ...answer(403, 'claims.mismatch', 'none'),
  },

  // --- report-only -----------------------------------------------------------------------------------
  {
    name: 'a rule in report-only lets a token without its scope through',
    method: 'GET',
    path: '/beta/feature',
    headers: (f) => bearer(f.read),
    clientIp: OUTSIDE,
    ...answer(200, 'scope.insufficient', 'none'),
  },
  {
    name: 'a rule in report-only still requires a token (it trials only its own constraints)',
    method: 'GET',
    path: '/beta/feature',
    headers: none,
    clientIp: OUTSIDE,
    ...answer(401, 'token.missing', 'bare'),
  },
  {
    name: 'a report-only policy lets a request without a token through',
    variant: 'report-only',
    method: 'GET',
    path: '/orders/1',
    headers: none,
    clientIp: OUTSIDE,
    ...answer(200, 'token.missing', 'none'),
  },
  {
    name: 'a report-only policy lets an expired token through',
    variant: 'report-only',
    method: 'GET',
    path: '/orders/1',
    headers: (f) => bearer(f.expired),
    clientIp: OUTSIDE,
    ...answer(200, 'token.expired', 'none'),
  },
  {
    name: 'a report-only policy lets an admin token from outside through',
    variant: 'report-only',
    method: 'GET',
    path: '/admin/users',
    headers: (f) => bearer(f.admin),
    clientIp: OUTSIDE,
    ...answer(200, 'ip.denied', 'none'),
  },
  {
    name: "a report-only policy lets a token without the rule's scope through",
    variant: 'report-only',
    method: 'GET',
    path: '/orders/1',
    headers: (f) => bearer(f.reports),
    clientIp: OUTSIDE,
    ...answer(200, 'scope.insufficient', 'none'),
  },
  {
    name: 'an enforcing rule under a report-only policy refuses a request without a token',
    variant: 'report-only',
    method: 'GET',
    path: '/vault/keys',
    headers: none,
    clientIp: OUTSIDE,
    ...answer(401, 'token.missing', 'bare'),
  },
  {
    name: 'an enforcing rule under a report-only policy refuses a revoked token',
    variant: 'report-only',
    method: 'GET',
    path: '/vault/keys',
    headers: (f) => bearer(f.revoked),
    clientIp: OUTSIDE,
    ...answer(401, 'token.revoked', 'invalid_token'),
  },
  {
    name: 'an enforcing rule under a report-only policy refuses a token without its scope',
    variant: 'report-only',
    method: 'GET',
    path: '/vault/keys',
    headers: (f) => bearer(f.reports),
    clientIp: OUTSIDE,
    expectWwwAuthIncludes: 'scope="admin"',
    ...answer(403, 'scope.insufficient', 'insufficient_scope'),
  },
  {
    name: 'an enforcing rule under a report-only policy lets a token with its scope through',
    variant: 'report-only',
    method: 'GET',
    path: '/vault/keys',
    headers: (f) => bearer(f.admin),
    clientIp: OUTSIDE,
    ...answer(200, 'ok', 'none'),
  },

  // --- CORS preflight ---------------------------------------------------------------------------------
  {
    name: 'a CORS preflight is guarded like any request by default',
    method: 'OPTIONS',
    path: '/orders/1',
    headers: () => preflight,
    clientIp: OUTSIDE,
    ...answer(401, 'token.missing', 'bare'),
  },
  {
    name: 'preflight: pass lets a CORS preflight through without a token',
    variant: 'preflight',
    method: 'OPTIONS',
    path: '/orders/1',
    headers: () => preflight,
    clientIp: OUTSIDE,
    ...answer(200, 'ok', 'none'),
  },
  {
    name: 'preflight: pass still guards an OPTIONS request without Access-Control-Request-Method',
    variant: 'preflight',
    method: 'OPTIONS',
    path: '/orders/1',
    headers: () => ({ origin: preflight.origin }),
    clientIp: OUTSIDE,
    ...answer(401, 'token.missing', 'bare'),
  },
  {
    name: 'preflight: pass still verifies an OPTIONS request that carries a credential',
    variant: 'preflight',
    method: 'OPTIONS',
    path: '/orders/1',
    headers: () => ({ ...preflight, ...bearer('garbage') }),
    clientIp: OUTSIDE,
    ...answer(401, 'token.malformed', 'invalid_token'),
  },
  {
    name: 'preflight: pass does not open other methods',
    variant: 'preflight',
    method: 'DELETE',
    path: '/orders/1',
    headers: () => preflight,
    clientIp: OUTSIDE,
    ...answer(401, 'token.missing', 'bare'),
  },

  // --- store failures ---------------------------------------------------------------------------------
  {
    name: 'an API key while the store is down',
    variant: 'broken-store',
    method: 'GET',
    path: '/orders/1',
    headers: (f) => bearer(f.apiKey),
    clientIp: OUTSIDE,
    ...answer(503, 'store.unavailable', 'none'),
  },
  {
    name: 'a JWT while the store is down (revocation lookup fails)',
    variant: 'broken-store',
    method: 'GET',
    path: '/orders/1',
    headers: (f) => bearer(f.read),
    clientIp: OUTSIDE,
    ...answer(503, 'store.unavailable', 'none'),
  },
  {
    name: "a JWT whose issuer's keys cannot be fetched (IdP outage, not a store failure)",
    variant: 'idp-down',
    method: 'GET',
    path: '/orders/1',
    headers: (f) => bearer(f.downIssuer),
    clientIp: OUTSIDE,
    ...answer(503, 'idp.unavailable', 'none'),
  },
  {
    name: 'a JWT of the other issuer while one issuer is down',
    variant: 'idp-down',
    method: 'GET',
    path: '/orders/1',
    headers: (f) => bearer(f.read),
    clientIp: OUTSIDE,
    ...answer(200, 'ok', 'none'),
  },
  { name: 'a public route while the store is down', variant: 'broken-store', method: 'GET', path: '/health', headers: none, clientIp: OUTSIDE, ...answer(200, 'ok', 'none') },

  // --- path normalisation ----------------------------------------------------------------------------
  {
    name: 'a query string does not change the rule',
    method: 'GET',
    path: '/orders/1?next=/admin/users&x=../..',
    headers: (f) => bearer(f.read),
    clientIp: OUTSIDE,
    ...answer(200, 'ok', 'none'),
  },
  { name: 'a trailing slash does not change the rule', method: 'GET', path: '/orders/1/', headers: (f) => bearer(f.read), clientIp: OUTSIDE, ...answer(200, 'ok', 'none') },
  {
    name: 'upper case does not escape the admin rule',
    method: 'GET',
    path: '/ADMIN/users',
    headers: (f) => bearer(f.read),
    clientIp: OFFICE,
    expectWwwAuthIncludes: 'scope="admin"',
    ...answer(403, 'scope.insufficient', 'insufficient_scope'),
    // A case-sensitive router has no /ADMIN route; no rule covers it either.
    cased: answer(403, 'rule.unmatched', 'none'),
  },
  {
    name: 'upper case does not borrow the public rule where the router reads case',
    method: 'GET',
    path: '/HEALTH',
    headers: none,
    clientIp: OUTSIDE,
    ...answer(200, 'ok', 'none'),
    cased: answer(401, 'token.missing', 'bare'),
    mixedCase: answer(401, 'token.missing', 'bare'),
  },
  {
    name: 'a doubled slash does not escape the admin rule',
    method: 'GET',
    path: '//admin/users',
    headers: (f) => bearer(f.read),
    clientIp: OFFICE,
    ...answer(403, 'scope.insufficient', 'insufficient_scope'),
  },
  {
    name: 'a trailing slash does not escape the admin rule',
    method: 'GET',
    path: '/admin/users/',
    headers: (f) => bearer(f.read),
    clientIp: OFFICE,
    ...answer(403, 'scope.insufficient', 'insufficient_scope'),
  },
  {
    name: 'a dot-dot segment from orders into admin',
    method: 'GET',
    path: '/orders/../admin/users',
    headers: (f) => bearer(f.read),
    clientIp: OFFICE,
    ...answer(400, 'request.malformed', 'invalid_request'),
    whatwg: answer(403, 'scope.insufficient', 'insufficient_scope'),
  },
  {
    name: 'an encoded dot-dot segment (%2e%2e) from orders into admin',
    method: 'GET',
    path: '/orders/%2e%2e/admin/users',
    headers: (f) => bearer(f.read),
    clientIp: OFFICE,
    ...answer(400, 'request.malformed', 'invalid_request'),
    whatwg: answer(403, 'scope.insufficient', 'insufficient_scope'),
  },
  {
    name: 'an encoded slash (%2F)',
    method: 'GET',
    path: '/orders/..%2Fadmin%2Fusers',
    headers: (f) => bearer(f.read),
    clientIp: OFFICE,
    ...answer(400, 'request.malformed', 'invalid_request'),
  },
  {
    name: 'an escaped unreserved character (%61dmin)',
    method: 'GET',
    path: '/%61dmin/users',
    headers: (f) => bearer(f.read),
    clientIp: OFFICE,
    ...answer(400, 'request.malformed', 'invalid_request'),
  },
  {
    name: 'a DELETE is not a GET',
    method: 'DELETE',
    path: '/orders/1',
    headers: (f) => bearer(f.read),
    clientIp: OUTSIDE,
    expectWwwAuthIncludes: 'scope="orders:write"',
    ...answer(403, 'scope.insufficient', 'insufficient_scope'),
  },
];
