// The `authShape` adapter option: puts the verified token where the library an app migrates from put it
// (express-oauth2-jwt-bearer, express-jwt, @fastify/jwt, koa-jwt), so that moving over is a configuration
// change. The guard's own result stays where requireScopes reads it; a shape is only a second view of it.
import type { IncomingHttpHeaders } from 'node:http';
import type { AuthResult, TokenInfo } from '../leaf/types.js';
import { usageError } from './usage-error.js';

/** The claims of a verified token: a JWT's payload; for an API key `sub`, `scope` and the record's metadata. */
export type TokenClaims = Record<string, unknown> & { sub?: string; scope?: string };

/** `req.auth` as express-oauth2-jwt-bearer sets it: the JWT's payload, its protected header and the raw token. */
export interface PayloadAuth {
  payload: TokenClaims;
  header: Record<string, unknown>;
  token: string;
}

/** Splits `authShape` off a policy object (where adapters accept their options too) and validates it once. */
export function takeAuthShape<S extends string, I>(input: I, optionShape: unknown, allowed: readonly S[]): { input: I; shape: S | undefined } {
  let shape = optionShape;
  let rest = input;
  // A guard from createGuard (a function-bearing object) carries no adapter options; a policy object may.
  if (input && typeof input === 'object' && 'authShape' in input) {
    const { authShape, ...policy } = input as Record<string, unknown>;
    shape ??= authShape;
    rest = policy as I;
  }
  if (shape === undefined || shape === 'native') return { input: rest, shape: undefined };
  if (typeof shape !== 'string' || !(allowed as readonly string[]).includes(shape)) {
    const names = ['native', ...allowed].map((s) => `'${s}'`).join(', ');
    throw usageError('adapter.options_invalid', `tokenGuard: authShape must be one of ${names} (got ${JSON.stringify(shape)})`);
  }
  return { input: rest, shape: shape as S };
}

/** The token's claims as the libraries it replaces expose them, or undefined when no valid token was presented. */
export function claimsOf(token: TokenInfo | undefined): TokenClaims | undefined {
  if (!token) return undefined;
  if (token.claims) return token.claims;
  // An API key has no payload: give it the fields handlers of a JWT library read (`sub`, `scope`).
  return { ...token.metadata, sub: token.subject, scope: token.scopes.join(' ') };
}

/** The credential after `Bearer `/`DPoP ` (the guard has already refused every other form when a token passed). */
function rawToken(headers: IncomingHttpHeaders): string {
  const value = headers.authorization ?? '';
  return value.slice(value.indexOf(' ') + 1);
}

/** A JWT's protected header (decoded, already verified by the guard); empty for an API key. */
function jwtHeader(token: string): Record<string, unknown> {
  const dot = token.indexOf('.');
  if (dot <= 0) return {};
  try {
    const header: unknown = JSON.parse(Buffer.from(token.slice(0, dot), 'base64url').toString('utf8'));
    return header && typeof header === 'object' ? (header as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** express-oauth2-jwt-bearer's `req.auth`, or undefined when no valid token was presented. */
export function payloadAuthOf(auth: AuthResult, headers: IncomingHttpHeaders): PayloadAuth | undefined {
  const payload = claimsOf(auth.token);
  if (!payload) return undefined;
  const token = rawToken(headers);
  return { payload, header: auth.token?.kind === 'jwt' ? jwtHeader(token) : {}, token };
}
