// Fixtures for the token-level tests: request builders, guard factories and a refusal matcher.
import { expect } from 'vitest';
import { createGuard, MemoryStore, type Decision, type GuardRequest, type JwtPolicy, type Guard, type ReasonCode, type TokenGuardPolicy } from '../../src/index.js';
import { AUDIENCE, ISSUER, NOW, NOW_S, jwtPolicy } from '../helpers/tokens.js';

/** A client address outside every private range, used unless a test sets its own. */
export const CLIENT_IP = '203.0.113.9';

/** A GET /orders/1 request at NOW from CLIENT_IP with the given headers. */
export function requestWith(headers: GuardRequest['headers'], overrides: Partial<GuardRequest> = {}): GuardRequest {
  return { method: 'GET', path: '/orders/1', headers, remoteAddress: CLIENT_IP, now: NOW, ...overrides };
}

/** A GET /orders/1 request at NOW carrying `Authorization: Bearer <token>`. */
export function bearer(token: string, overrides: Partial<GuardRequest> = {}): GuardRequest {
  return requestWith({ authorization: `Bearer ${token}` }, overrides);
}

/** The rule every token test routes through: reading orders needs `orders:read`. */
export const ORDERS_RULES: TokenGuardPolicy['rules'] = [{ methods: ['GET'], path: '/orders/**', scopes: ['orders:read'] }];

/** A guard accepting JWTs only (test keys, RS256 + ES256 unless overridden), frozen at NOW. */
export async function jwtGuard(jwt: Partial<JwtPolicy> = {}, policy: Partial<TokenGuardPolicy> = {}): Promise<Guard> {
  return createGuard({ jwt: await jwtPolicy(jwt), store: new MemoryStore(), clock: () => NOW, rules: ORDERS_RULES, ...policy });
}

/** A guard accepting `tg_` API keys only, on the given store, frozen at NOW. */
export function apiKeyGuard(store: MemoryStore, policy: Partial<TokenGuardPolicy> = {}): Guard {
  return createGuard({ apiKeys: { prefix: 'tg_' }, store, clock: () => NOW, rules: ORDERS_RULES, ...policy });
}

/** The `error` attribute of a decision's WWW-Authenticate challenge, or undefined when it has none. */
export function challengeError(decision: Decision): string | undefined {
  return /\berror="([^"]*)"/.exec(decision.headers['WWW-Authenticate'] ?? '')?.[1];
}

const STATUS: Partial<Record<ReasonCode, number>> = {
  'token.missing': 401,
  'request.malformed': 400,
  'token.malformed': 401,
  'token.invalid': 401,
  'token.expired': 401,
  'token.revoked': 401,
  'scope.insufficient': 403,
  'ip.denied': 403,
  'ip.unknown': 403,
  'hours.outside': 403,
  'store.unavailable': 503,
  'idp.unavailable': 503,
};

const CHALLENGE_ERROR: Partial<Record<ReasonCode, string>> = {
  'request.malformed': 'invalid_request',
  'token.malformed': 'invalid_token',
  'token.invalid': 'invalid_token',
  'token.expired': 'invalid_token',
  'token.revoked': 'invalid_token',
  'scope.insufficient': 'insufficient_scope',
};

/**
 * Asserts a refusal as DESIGN.md's reason table defines it: the reason, its status, a deny, and the
 * WWW-Authenticate `error=` attribute (none for reasons that carry none).
 */
export function expectRefused(decision: Decision, reason: ReasonCode): void {
  expect({ effect: decision.effect, reason: decision.reason, status: decision.status }).toEqual({
    effect: 'deny',
    reason,
    status: STATUS[reason],
  });
  expect(challengeError(decision)).toBe(CHALLENGE_ERROR[reason]);
  // A token that failed verification is never handed to the app; later checks (scope, IP, hours) run on a verified one.
  if (reason.startsWith('token.') || reason === 'request.malformed' || reason === 'store.unavailable' || reason === 'idp.unavailable') expect(decision.token).toBeUndefined();
}

/** Asserts the request went through with no failing check. */
export function expectAllowed(decision: Decision): void {
  expect({ effect: decision.effect, reason: decision.reason, status: decision.status, reasons: decision.reasons }).toEqual({
    effect: 'allow',
    reason: 'ok',
    status: 200,
    reasons: [],
  });
}

const b64json = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** Claims of a valid access token for alice at NOW, for hand-built tokens. */
export function validClaims(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { iss: ISSUER, aud: AUDIENCE, sub: 'alice', iat: NOW_S, exp: NOW_S + 3600, scope: 'orders:read', ...extra };
}

/**
 * Signs `header.payload` by hand with WebCrypto, bypassing jose's producer-side checks, so tests can
 * build tokens jose itself would refuse to sign (unknown `crit` extensions, `b64: false`, and so on).
 * RS256 for an RSA key, ES256 for a P-256 key.
 */
export async function signCompact(header: Record<string, unknown>, payload: Record<string, unknown> | string, key: CryptoKey): Promise<string> {
  const encodedPayload = typeof payload === 'string' ? payload : b64json(payload);
  const input = `${b64json(header)}.${encodedPayload}`;
  const params = key.algorithm.name === 'ECDSA' ? { name: 'ECDSA', hash: 'SHA-256' } : { name: key.algorithm.name };
  const signature = await globalThis.crypto.subtle.sign(params, key, new TextEncoder().encode(input));
  return `${input}.${Buffer.from(signature).toString('base64url')}`;
}
