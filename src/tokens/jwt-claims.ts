// What every JWT path shares: an issuer configuration as compiled, a verified token, a failure, and the claim rules
// read by the policy, the verifier and the checks (accepted typ values, time limits, secret lengths, scopes).
import type { JWK, JWTPayload } from 'jose';
import type { ReasonCode, TokenInfo } from '../leaf/types.js';
import type { Confirmation } from '../leaf/confirmation.js';
import type { JwtAlgorithm } from '../leaf/algorithms.js';

/** The JWT options of one issuer configuration after policy validation (durations in ms). */
export interface JwtConfig {
  issuer: string | string[];
  audience: string | string[];
  algorithms: JwtAlgorithm[];
  jwksUri?: string;
  /** Find jwks_uri in the issuer's metadata (RFC 8414 / OpenID Connect Discovery); issuer is then one string. */
  discovery?: boolean;
  jwks?: { cooldownMs: number; cacheMaxAgeMs: number; timeoutMs: number; maxStaleMs: number; maxBytes: number; maxKeys: number };
  keys?: (JWK | string)[];
  secret?: string | Uint8Array;
  clockToleranceMs: number;
  maxTokenAgeMs?: number;
  requireExp: boolean;
  /** Accepted `typ` header values, normalised by normalizeTyp; undefined means DEFAULT_TYPS or no `typ`. */
  typ?: readonly string[];
  cacheSize: number;
  /** Put before every token id this configuration verifies (`''` keeps them as they are: one issuer configuration). */
  idPrefix: string;
  /**
   * Put before a verified token's `sub` for its own subject key (`isub:<name>:`) when the policy has several issuer
   * configurations: its by-subject counters and the subject revocations of that issuer alone. Undefined with one.
   */
  subjectPrefix?: string;
  /** Told of each remote JWK Set fetch and whether it failed (telemetry). Default: none. */
  onJwksFetch?: (failed: boolean) => void;
}

/** A verified token and the claim values later checks need, computed once per token. */
export interface VerifiedJwt {
  info: TokenInfo;
  scopeSet: ReadonlySet<string>;
  /** Claim times in seconds. */
  exp?: number;
  nbf?: number;
  iat?: number;
  authTime?: number;
  amr?: readonly string[];
  acr?: string;
  /** `cnf` claim: the token is bound to a key (DPoP `jkt`) or a certificate (`x5t#S256`), or unverifiably. */
  cnf?: Confirmation;
  /** `sub` under its issuer configuration (`JwtConfig.subjectPrefix` + `sub`), when the policy has several. */
  subjectKey?: string;
  /**
   * The guard's own state for this verification (its Holder), set by the guard that made it on first use: a
   * repeated token finds it here, one read from its cache entry, instead of in a side table.
   */
  holder?: object;
}

/**
 * Access-token types accepted when `jwt.typ` is not set (RFC 8725 §3.11, RFC 9068): no `typ`, the generic
 * `JWT`, and `at+jwt`. Anything else (`dpop+jwt`, `secevent+jwt`, `logout+jwt`, …) is another kind of JWT.
 */
export const DEFAULT_TYPS: readonly string[] = ['jwt', 'at+jwt'];

/** A `typ` value compared case-insensitively and without its optional `application/` prefix (RFC 7515 §4.1.9). */
export function normalizeTyp(typ: string): string {
  const lower = typ.toLowerCase();
  return lower.startsWith('application/') && !lower.slice(12).includes('/') ? lower.slice(12) : lower;
}

/** Largest claim time, in seconds, a JS Date can hold (±8.64e15 ms): a larger exp could not even be revoked. */
export const MAX_CLAIM_TIME_S = 8.64e12;

/** A failed verification: the reason code plus operator-facing detail. */
export interface JwtFailure {
  reason: ReasonCode;
  detail: string;
}

/** Minimum shared-secret length in bytes per HMAC algorithm (RFC 7518 §3.2: at least the hash size). */
export const MIN_SECRET_BYTES: Record<string, number> = { HS256: 32, HS384: 48, HS512: 64 };

/** Scopes from `scope` (space-separated string) when present, else `scp` (array of strings); anything else is none. */
export function scopesOf(payload: JWTPayload): string[] {
  const scope = payload['scope'];
  if (scope !== undefined) return typeof scope === 'string' ? scope.split(' ').filter((s) => s !== '') : [];
  const scp = payload['scp'];
  if (Array.isArray(scp) && scp.every((s) => typeof s === 'string')) return scp.filter((s) => s !== '');
  return [];
}
