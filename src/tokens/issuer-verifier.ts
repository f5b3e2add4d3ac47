// One issuer's JWT verification: its keys (local, or a JWK Set fetched and cached), the allow-listed algorithms, the
// signature (node:crypto, through jws.ts) and the claims. The types and limits every JWT path shares live here too;
// jwt.ts is the front that picks the issuer and caches verifications.
import { createHash, createPublicKey, createSecretKey } from 'node:crypto';
import { createLocalJWKSet, errors as joseErrors, type JWK, type JWTPayload, type JWTVerifyGetKey, type JWSHeaderParameters } from 'jose';
import { UsageError } from '../leaf/errors.js';
import type { TokenInfo } from '../leaf/types.js';
import { parseConfirmation } from '../leaf/confirmation.js';
import { RemoteKeys } from './jwks.js';
import { IdpUnavailable } from './remote.js';
import { DEFAULT_TYPS, MAX_CLAIM_TIME_S, normalizeTyp, scopesOf, type JwtConfig, type JwtFailure, type VerifiedJwt } from './jwt-claims.js';
import { jsonObject, KeyDoesNotFit, segmentBytes, signatureHolds, verifyKeyOf, type VerifyKey } from './jws.js';
import { deepFreeze } from '../leaf/freeze.js';
import { illFormedClaim } from '../leaf/well-formed.js';

/** A remembered verification, the issuer configuration that made it, and the instant (request time, ms) it stops being served. */
export interface CacheEntry {
  verified: VerifiedJwt;
  by: IssuerVerifier;
  untilMs: number;
  /**
   * The Authorization header the token first came in, when it was `Bearer <token>` (any letter case, one SP): the
   * string the cache key is a slice of, so keeping it costs nothing, and what `JwtVerifier.lookupHeader` compares.
   */
  header: string | undefined;
}

const isClaimTime = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && Math.abs(v) <= MAX_CLAIM_TIME_S;

const isHmac = (alg: string) => alg.startsWith('HS');

/** A compact JWS's three segments of base64url characters (jose refuses anything else in them). */
export const JWS_RE = /^[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/;

const malformed = (detail: string): JwtFailure => ({ reason: 'token.malformed', detail });

/**
 * A claim check's failure, read as jose's JWTClaimValidationFailed / JWTExpired were: a time claim out of a Date's
 * range makes the token broken, not early or late; a future nbf is early (token.expired).
 */
function claimFailure(payload: JWTPayload, claim: string, why: 'missing' | 'invalid' | 'check_failed', expired?: string): JwtFailure {
  if (hasTimeOutOfRange(payload)) return { reason: 'token.invalid', detail: 'a time claim is out of range' };
  if (expired !== undefined) return { reason: 'token.expired', detail: expired };
  if (claim === 'nbf' && why === 'check_failed') return { reason: 'token.expired', detail: 'nbf is in the future' };
  return { reason: 'token.invalid', detail: `claim ${claim}: ${why}` };
}

function toPublicJwk(key: JWK | string): JWK {
  if (typeof key === 'string') {
    // PEM (SPKI or certificate): converted to a JWK once so every key goes through one local JWK set.
    return createPublicKey(key).export({ format: 'jwk' }) as JWK;
  }
  if ('d' in key || 'k' in key) throw new UsageError('jwt.keys must hold public keys only (use jwt.secret for HMAC)');
  return key;
}

/** Verifies the JWTs of one issuer configuration. */
export class IssuerVerifier {
  readonly config: JwtConfig;
  private readonly asymmetric: JWTVerifyGetKey | undefined;
  /** The PEM keys alone, looked up without the token's kid (a PEM has none). */
  private readonly pemKeys: JWTVerifyGetKey | undefined;
  private readonly hmacKeys = new Map<string, VerifyKey>();
  /**
   * With local keys only: the key jose's local set chose for an `alg` and `kid`, so a later token naming them needs no
   * promise. The local set never changes and chooses by those two alone; only a choice of exactly one configured key is
   * kept, so the entries are at most the configured keys' kids times the algorithms (a made-up kid is never kept).
   */
  private readonly chosen: Map<string, VerifyKey> | undefined;
  /** Keys from a JWK Set URL, given or discovered. */
  readonly remote: RemoteKeys | undefined;
  private readonly algorithms: ReadonlySet<string>;
  private readonly issuers: readonly string[];
  private readonly audiences: readonly string[];
  private readonly typs: ReadonlySet<string>;
  /** A token without `typ` passes only when `jwt.typ` is not set. */
  private readonly untypedOk: boolean;
  private readonly toleranceS: number;
  private readonly maxAgeS: number | undefined;
  /**
   * Longest a verification is remembered: an hour, or with a remote JWKS its cacheMaxAge, so a token
   * whose signing key was withdrawn from the JWKS stops passing from the cache once the set is refetched.
   */
  readonly maxCacheMs: number = 3_600_000;

  constructor(config: JwtConfig) {
    this.config = config;
    this.toleranceS = config.clockToleranceMs / 1000;
    this.maxAgeS = config.maxTokenAgeMs === undefined ? undefined : config.maxTokenAgeMs / 1000;
    this.algorithms = new Set(config.algorithms);
    this.issuers = typeof config.issuer === 'string' ? [config.issuer] : config.issuer;
    this.audiences = typeof config.audience === 'string' ? [config.audience] : config.audience;
    this.typs = new Set(config.typ ?? DEFAULT_TYPS);
    this.untypedOk = config.typ === undefined;
    if (config.jwksUri || config.discovery) {
      const jwks = config.jwks as NonNullable<JwtConfig['jwks']>;
      this.maxCacheMs = Math.min(this.maxCacheMs, jwks.cacheMaxAgeMs);
      this.remote = new RemoteKeys({
        ...jwks,
        ...(config.jwksUri ? { jwksUri: config.jwksUri } : { discoverIssuer: config.issuer as string }),
        ...(config.onJwksFetch && { onFetch: config.onJwksFetch }),
      });
      this.asymmetric = this.remote.getKey;
    } else if (config.keys && config.keys.length > 0) {
      this.asymmetric = createLocalJWKSet({ keys: config.keys.map(toPublicJwk) });
      this.chosen = new Map();
      const pems = config.keys.filter((k): k is string => typeof k === 'string');
      if (pems.length > 0) this.pemKeys = createLocalJWKSet({ keys: pems.map(toPublicJwk) });
    }
    if (config.secret !== undefined) {
      const raw = typeof config.secret === 'string' ? new TextEncoder().encode(config.secret) : config.secret;
      // One KeyObject for every HMAC algorithm: the algorithm picks the digest, the key only holds the bytes.
      const key = createSecretKey(raw);
      for (const alg of config.algorithms.filter(isHmac)) this.hmacKeys.set(alg, { key, alg });
    }
  }

  // Keys are chosen by algorithm family, so an HS256 token is only ever checked with the HMAC secret
  // and never with an RSA public key's bytes (the classic key-confusion attack).
  private async asymmetricKey(header: JWSHeaderParameters, token: string, firstDot: number, signatureDot: number): Promise<VerifyKey | VerifyKey[]> {
    const alg = header.alg as string;
    if (!this.asymmetric) throw new joseErrors.JOSEAlgNotAllowed('no public keys configured for this algorithm');
    // What jose hands a key function: the token's segments.
    const input = { protected: token.slice(0, firstDot), payload: token.slice(firstDot + 1, signatureDot), signature: token.slice(signatureDot + 1) };
    let key: CryptoKey;
    try {
      key = (await this.asymmetric(header as Parameters<JWTVerifyGetKey>[0], input)) as CryptoKey;
    } catch (err) {
      if (err instanceof joseErrors.JWKSMultipleMatchingKeys) return this.eachKey(err, alg);
      // A key given as PEM has no kid, and jose never selects a kid-less key for a token that names one:
      // every token from an issuer that sets kid (nearly all do) would be refused. The kid only picks a
      // key; the signature still decides, so PEM keys are tried whatever kid the token names.
      if (!(err instanceof joseErrors.JWKSNoMatchingKey) || !this.pemKeys) throw err;
      const { kid: _kid, ...anyKid } = header;
      try {
        return this.fitting((await this.pemKeys(anyKid as Parameters<JWTVerifyGetKey>[0], input)) as CryptoKey, alg);
      } catch (pemErr) {
        if (pemErr instanceof joseErrors.JWKSMultipleMatchingKeys) return this.eachKey(pemErr, alg);
        throw pemErr;
      }
    }
    const fitting = this.fitting(key, alg);
    const kid = header.kid;
    if (this.chosen && (kid === undefined || typeof kid === 'string')) this.chosen.set(kid === undefined ? alg : `${alg}\u0000${kid}`, fitting);
    return fitting;
  }

  private fitting(key: CryptoKey, alg: string): VerifyKey {
    const k = verifyKeyOf(key, alg);
    if (!k) throw new KeyDoesNotFit();
    return k;
  }

  /**
   * Several configured keys fit the token (two PEM keys during a rotation, JWKs without a kid): jose
   * leaves it to the caller to try each. The first whose signature verifies wins.
   */
  private async eachKey(candidates: joseErrors.JWKSMultipleMatchingKeys, alg: string): Promise<VerifyKey[]> {
    const keys: VerifyKey[] = [];
    for await (const key of candidates) {
      const k = verifyKeyOf(key as CryptoKey, alg);
      if (k) keys.push(k);
    }
    return keys;
  }

  /**
   * Verifies a compact JWS already checked for shape (`firstDot`, `signatureDot`: its two dots), as jose's jwtVerify
   * does (header, crit, alg allow-list, key, signature, then claims), but with the signature checked by node:crypto
   * on this thread. Synchronous when the key is at hand (an HMAC secret, a local key chosen before); a promise when
   * jose's key set must choose it (first use of a kid, a remote JWK Set).
   */
  verify(token: string, nowMs: number, firstDot: number, signatureDot: number): VerifiedJwt | JwtFailure | Promise<VerifiedJwt | JwtFailure> {
    const header = jsonObject(token, 0, firstDot);
    if (header === undefined) return malformed('JWS Protected Header is invalid');
    const crit = header['crit'];
    let b64 = true;
    if (crit !== undefined) {
      // The one extension jose knows is b64 (RFC 7797); anything else marked critical must not be ignored.
      if (!Array.isArray(crit) || crit.length === 0 || crit.some((c) => typeof c !== 'string' || c === '')) {
        return malformed('"crit" (Critical) Header Parameter MUST be an array of non-empty strings when present');
      }
      for (const c of crit as string[]) {
        if (c !== 'b64') return { reason: 'token.invalid', detail: 'ERR_JOSE_NOT_SUPPORTED' };
        if (header['b64'] === undefined) return malformed('Extension Header Parameter "b64" is missing');
      }
      if (typeof header['b64'] !== 'boolean') return malformed('The "b64" (base64url-encode payload) Header Parameter must be a boolean');
      b64 = header['b64'];
    }
    const alg = header['alg'];
    if (typeof alg !== 'string' || alg === '') return malformed('JWS "alg" (Algorithm) Header Parameter missing or invalid');
    if (!this.algorithms.has(alg)) return { reason: 'token.invalid', detail: 'algorithm not allowed' };
    const jws = header as JWSHeaderParameters;
    let key: VerifyKey | VerifyKey[] | Promise<VerifyKey | VerifyKey[]> | undefined;
    if (isHmac(alg)) {
      key = this.hmacKeys.get(alg);
      if (!key) return { reason: 'token.invalid', detail: 'algorithm not allowed' };
    } else {
      const kid = jws.kid;
      if (this.chosen && (kid === undefined || typeof kid === 'string')) key = this.chosen.get(kid === undefined ? alg : `${alg}\u0000${kid}`);
      key ??= this.asymmetricKey(jws, token, firstDot, signatureDot);
    }
    if (!(key instanceof Promise)) return this.verifyWith(key, token, nowMs, jws, b64, firstDot, signatureDot);
    return key.then(
      (k) => this.verifyWith(k, token, nowMs, jws, b64, firstDot, signatureDot),
      (err: unknown) => mapJoseError(err),
    );
  }

  private verifyWith(
    key: VerifyKey | VerifyKey[],
    token: string,
    nowMs: number,
    header: JWSHeaderParameters,
    b64: boolean,
    firstDot: number,
    signatureDot: number,
  ): VerifiedJwt | JwtFailure {
    const signature = segmentBytes(token, signatureDot + 1, token.length);
    if (signature === undefined) return malformed('Failed to base64url decode the signature');
    // The signing input is the token up to its second dot, as sent: a b64: false payload is signed as its characters.
    const input = token.slice(0, signatureDot);
    const holds = Array.isArray(key) ? key.some((k) => signatureHolds(k, input, signature)) : signatureHolds(key, input, signature);
    if (!holds) return { reason: 'token.invalid', detail: 'signature verification failed' };
    if (!b64) return malformed('JWTs MUST NOT use unencoded payload');
    const payload = jsonObject(token, firstDot + 1, signatureDot) as JWTPayload | undefined;
    if (payload === undefined) return malformed('JWT Claims Set must be a top-level JSON object');
    const failed = this.checkClaims(payload, Math.floor(nowMs / 1000));
    if (failed) return failed;
    // Explicit typing: a DPoP proof, a security event or a logout token signed by the issuer's key is
    // not an access token, and must not pass for one.
    const typ = header.typ;
    if (typeof typ !== 'string' && typ !== undefined) return { reason: 'token.invalid', detail: 'typ header is not a string' };
    if (typ === undefined ? !this.untypedOk : !this.typs.has(normalizeTyp(typ))) {
      return { reason: 'token.invalid', detail: typ === undefined ? 'typ header is missing' : `typ ${JSON.stringify(typ.slice(0, 40))} is not an accepted access-token type` };
    }
    // The id and subject are store keys, where a lone surrogate would turn into U+FFFD and name another token or user.
    // Checked once, here: a cached verification was checked when it was cached.
    const illFormed = illFormedClaim(payload.jti, payload.sub);
    if (illFormed !== undefined) return { reason: 'token.invalid', detail: illFormed };
    const entry = this.toEntry(token, payload, signatureDot);
    if (!entry) return { reason: 'token.invalid', detail: 'claims have the wrong type or a time out of range' };
    // jose checks iat against the clock only under maxTokenAge; a token from the future is never valid.
    return this.checkTimes(entry, Math.floor(nowMs / 1000)) ?? entry;
  }

  /** The claims set checks of jose's jwtVerify, in its order, with the guard's issuer, audience, exp and maxTokenAge options. */
  private checkClaims(payload: JWTPayload, now: number): JwtFailure | undefined {
    if (!Object.hasOwn(payload, 'iss')) return claimFailure(payload, 'iss', 'missing');
    if (!Object.hasOwn(payload, 'aud')) return claimFailure(payload, 'aud', 'missing');
    if (this.maxAgeS !== undefined && !Object.hasOwn(payload, 'iat')) return claimFailure(payload, 'iat', 'missing');
    if (this.config.requireExp && !Object.hasOwn(payload, 'exp')) return claimFailure(payload, 'exp', 'missing');
    if (!this.issuers.includes(payload.iss as string)) return claimFailure(payload, 'iss', 'check_failed');
    const aud = payload.aud;
    if (typeof aud === 'string' ? !this.audiences.includes(aud) : !Array.isArray(aud) || !this.audiences.some((a) => aud.includes(a))) {
      return claimFailure(payload, 'aud', 'check_failed');
    }
    const tol = this.toleranceS;
    const { iat, nbf, exp } = payload;
    if (iat !== undefined && typeof iat !== 'number') return claimFailure(payload, 'iat', 'invalid');
    if (nbf !== undefined && typeof nbf !== 'number') return claimFailure(payload, 'nbf', 'invalid');
    if (nbf !== undefined && nbf > now + tol) return claimFailure(payload, 'nbf', 'check_failed');
    if (exp !== undefined && typeof exp !== 'number') return claimFailure(payload, 'exp', 'invalid');
    if (exp !== undefined && exp <= now - tol) return claimFailure(payload, 'exp', 'check_failed', '"exp" claim timestamp check failed');
    if (this.maxAgeS !== undefined) {
      const age = now - (iat as number);
      if (age - tol > this.maxAgeS) return claimFailure(payload, 'iat', 'check_failed', '"iat" claim timestamp check failed (too far in the past)');
      if (age < -tol) return claimFailure(payload, 'iat', 'check_failed');
    }
    return undefined;
  }

  checkTimes(e: VerifiedJwt, now: number): JwtFailure | undefined {
    const tol = this.toleranceS;
    if (e.exp !== undefined && e.exp <= now - tol) return { reason: 'token.expired', detail: 'exp is past' };
    if (e.nbf !== undefined && e.nbf > now + tol) return { reason: 'token.expired', detail: 'nbf is in the future' };
    if (this.maxAgeS !== undefined) {
      if (e.iat === undefined) return { reason: 'token.invalid', detail: 'iat is missing (maxTokenAge applies)' };
      if (now - e.iat - tol > this.maxAgeS) return { reason: 'token.expired', detail: 'iat is older than maxTokenAge' };
    }
    if (e.iat !== undefined && e.iat > now + tol) return { reason: 'token.invalid', detail: 'iat is in the future' };
    return undefined;
  }

  private toEntry(token: string, payload: JWTPayload, signatureDot: number): VerifiedJwt | undefined {
    const { exp, nbf, iat, sub, jti } = payload;
    const authTime = payload['auth_time'];
    const amr = payload['amr'];
    const acr = payload['acr'];
    if (sub !== undefined && typeof sub !== 'string') return undefined;
    // jose checks these are numbers, not that they are finite (JSON's 1e400 parses to Infinity) or that a
    // Date can hold them. Out of range, the token could be accepted yet never revoked.
    for (const t of [exp, nbf, iat, authTime]) if (t !== undefined && !isClaimTime(t)) return undefined;
    if (jti !== undefined && (typeof jti !== 'string' || jti === '')) return undefined;
    const scopes = scopesOf(payload);
    const info: TokenInfo = {
      // Without jti, the id is over header and payload, not the signature: a JWT re-encoded with another
      // valid signature (ECDSA malleability) must keep its id, or its revocation could be sidestepped.
      // With several issuers the id is prefixed per issuer configuration: one tenant's jti cannot name,
      // revoke or share counters with another's.
      id: this.config.idPrefix + (jti ?? 'sha256:' + createHash('sha256').update(token.slice(0, signatureDot)).digest('base64url')),
      kind: 'jwt',
      // Frozen: the same TokenInfo is handed to every request that presents this token.
      scopes: Object.freeze(scopes) as string[],
      claims: deepFreeze(payload as Record<string, unknown>),
    };
    if (sub !== undefined) info.subject = sub;
    if (exp !== undefined) info.expiresAt = new Date(exp * 1000);
    if (iat !== undefined) info.issuedAt = new Date(iat * 1000);
    const entry: VerifiedJwt = { info: Object.freeze(info), scopeSet: new Set(scopes) };
    if (exp !== undefined) entry.exp = exp;
    if (nbf !== undefined) entry.nbf = nbf;
    if (iat !== undefined) entry.iat = iat;
    if (sub !== undefined && this.config.subjectPrefix !== undefined) entry.subjectKey = this.config.subjectPrefix + sub;
    if (authTime !== undefined) entry.authTime = authTime as number;
    if (Array.isArray(amr) && amr.every((a) => typeof a === 'string')) entry.amr = amr;
    if (typeof acr === 'string') entry.acr = acr;
    const cnf = parseConfirmation(payload['cnf']);
    if (cnf !== undefined) entry.cnf = cnf;
    return entry;
  }
}

/** Whether a claims set has a time claim a JS Date cannot hold (or that is not a finite number). */
function hasTimeOutOfRange(payload: JWTPayload): boolean {
  return [payload.exp, payload.nbf, payload.iat, payload['auth_time']].some((t) => t !== undefined && !isClaimTime(t));
}

function mapJoseError(err: unknown): JwtFailure {
  // The identity provider's outage, not the token's fault nor the store's: its own reason, answered 503.
  if (err instanceof IdpUnavailable) return { reason: 'idp.unavailable', detail: err.message };
  if (err instanceof KeyDoesNotFit) return { reason: 'token.invalid', detail: 'the key does not fit the algorithm' };
  // jose reads exp: -1e400 (-Infinity) as expired and nbf: 1e400 as not yet valid; such a token is broken, not early or late.
  if ((err instanceof joseErrors.JWTExpired || err instanceof joseErrors.JWTClaimValidationFailed) && hasTimeOutOfRange(err.payload)) {
    return { reason: 'token.invalid', detail: 'a time claim is out of range' };
  }
  if (err instanceof joseErrors.JWTExpired) return { reason: 'token.expired', detail: err.message };
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf' && err.reason === 'check_failed') return { reason: 'token.expired', detail: 'nbf is in the future' };
    return { reason: 'token.invalid', detail: `claim ${err.claim}: ${err.reason}` };
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return { reason: 'token.invalid', detail: 'signature verification failed' };
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return { reason: 'token.invalid', detail: 'algorithm not allowed' };
  if (err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JWKSMultipleMatchingKeys) return { reason: 'token.invalid', detail: 'no matching key' };
  if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid) return { reason: 'idp.unavailable', detail: 'JWKS unavailable' };
  if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid) return { reason: 'token.malformed', detail: err.message };
  if (err instanceof joseErrors.JOSEError) return { reason: 'token.invalid', detail: err.code };
  // jose throws TypeError for a key that does not fit the algorithm (an HS token against an RSA key).
  return { reason: 'token.invalid', detail: err instanceof Error ? err.name : 'verification failed' };
}
