// Opaque access tokens checked at the authorization server's introspection endpoint (RFC 7662), optionally with
// signed JWT answers (RFC 9701). The client authenticates by secret or by a signed assertion (RFC 7523); answers
// are cached by token hash, bounded and never past the token's own expiry; the endpoint failing fails closed.
import { createHash, createPrivateKey, randomUUID, type KeyObject } from 'node:crypto';
import { createLocalJWKSet, createRemoteJWKSet, errors as joseErrors, importJWK, jwtVerify, SignJWT, type JWK, type JWTVerifyGetKey } from 'jose';
import { LRUCache } from 'lru-cache';
import { z } from 'zod';
import { durationSchema, parseDuration, positiveDurationSchema, timerDurationSchema, type Duration } from '../leaf/duration.js';
import { parseConfirmation } from '../leaf/confirmation.js';
import { JWT_ALGORITHMS } from '../leaf/algorithms.js';
import type { ReasonCode, TokenInfo } from '../leaf/types.js';
import type { VerifiedJwt } from './jwt.js';

/** Signed client authentication (`private_key_jwt`, RFC 7523 §2.2) for the introspection request. */
export interface PrivateKeyJwtPolicy {
  /** The client's private key: a private JWK, or a private key in PEM (PKCS#8, PKCS#1 or SEC1), checked when the policy is read. */
  key: JWK | string;
  /** Signing algorithm, asymmetric (e.g. `'ES256'`, `'RS256'`, `'EdDSA'`). */
  alg: string;
  /** `kid` header of the assertion. Default: the JWK's `kid`, if any. */
  kid?: string;
  /** `aud` of the assertion. Default: the introspection endpoint; many servers want their issuer identifier instead. */
  audience?: string;
}

/** Signed introspection answers (RFC 9701): verified with the authorization server's keys. */
export interface IntrospectionJwtPolicy {
  /** The authorization server's issuer identifier: the answer's `iss`. */
  issuer: string;
  /** Accepted signing algorithms. */
  algorithms: readonly string[];
  /** The server's JWK Set URL (https, or http on loopback), or `keys`. */
  jwksUri?: string;
  /** The server's public keys, or `jwksUri`. */
  keys?: readonly JWK[];
  /** Oldest answer accepted, by its `iat`: a signed answer replayed later is refused. Default: `'60s'`. */
  maxAge?: Duration;
}

/** Token introspection (RFC 7662) for tokens that are neither JWT-shaped nor API keys. */
export interface IntrospectionPolicy {
  /** The introspection endpoint (https, or http on loopback addresses). */
  endpoint: string;
  /** This resource server's client id at the authorization server. */
  clientId: string;
  /** Client secret, sent as `client_secret_basic`. Give this or `privateKeyJwt`. */
  clientSecret?: string;
  /** Client authentication by signed assertion (`private_key_jwt`). Give this or `clientSecret`. */
  privateKeyJwt?: PrivateKeyJwtPolicy;
  /** Accepted `aud` value(s) of an active token; a token naming none of them is refused. Default: not checked. */
  audience?: string | readonly string[];
  /** Accepted `iss` of an active token. Default: not checked. */
  issuer?: string;
  /**
   * Longest an answer is remembered (never past the token's `exp`); a token revoked at the server can pass
   * until then. `0` asks the server on every request. Default: `'60s'`.
   */
  cacheMaxAge?: Duration;
  /** Most answers remembered. Default: 10 000. */
  cacheSize?: number;
  /** Longest the server may take to answer before the request fails closed (503). Default: `'5s'`. */
  timeout?: Duration;
  /** Most introspection requests under way at once; beyond it new tokens are answered 503. Default: 100. */
  maxInFlight?: number;
  /** Ask for and accept only signed answers (`application/token-introspection+jwt`, RFC 9701). */
  jwtResponse?: IntrospectionJwtPolicy;
}

/** An active token as the server described it: the same facts a verified JWT gives the checks. */
export type IntrospectedToken = VerifiedJwt;

/** Why an introspection refuses the token (`token.*`) or could not be made (`idp.unavailable`, a 503). */
export interface IntrospectionFailure {
  reason: ReasonCode;
  detail: string;
}

type Answer = IntrospectedToken | IntrospectionFailure;

/** The reason used when the authorization server cannot answer (fail closed). */
export const INTROSPECTION_UNAVAILABLE: ReasonCode = 'idp.unavailable';

const MAX_ANSWER_BYTES = 65_536;
const MAX_CLAIM_TIME_S = 8.64e12;
const isClaimTime = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && Math.abs(v) <= MAX_CLAIM_TIME_S;
const ASYMMETRIC = JWT_ALGORITHMS.filter((a) => !a.startsWith('HS'));

/** Whether a token looks like a JWS or JWE (base64url segments separated by dots): those are never introspected when JWTs are accepted. */
export function isJwtShaped(token: string): boolean {
  const parts = token.split('.');
  return (parts.length === 3 || parts.length === 5) && parts.every((p, i) => /^[A-Za-z0-9_-]*$/.test(p) && (i > 0 || p.length > 0));
}

/** The id of an opaque token without `jti`: its SHA-256, so the raw token is never a key, an id or a log value. */
export function opaqueTokenHash(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

function isLoopbackOrHttps(uri: string): boolean {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return false;
  }
  if (url.protocol === 'https:') return true;
  return url.protocol === 'http:' && (url.hostname === 'localhost' || url.hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(url.hostname));
}

const safeUrl = z
  .string()
  .refine(isLoopbackOrHttps, 'expected an https URL (plain http is allowed only for loopback addresses): tokens and answers sent over http can be read and swapped in transit');

/** Whether `pem` is a private key node:crypto reads (PKCS#8, PKCS#1 or SEC1 PEM): parsed once, when the policy is read. */
function isPrivatePem(pem: string): boolean {
  try {
    return createPrivateKey(pem).type === 'private';
  } catch {
    return false;
  }
}

const privateJwkOrPem = z.custom<JWK | string>(
  (v) =>
    (typeof v === 'string' && isPrivatePem(v)) ||
    (!!v && typeof v === 'object' && typeof (v as { kty?: unknown }).kty === 'string' && typeof (v as { d?: unknown }).d === 'string'),
  'expected a private JWK (with "d") or a private key in PEM (PKCS#8, PKCS#1 or SEC1)',
);

const asymmetricAlg = z.enum(ASYMMETRIC as [string, ...string[]], { error: `expected one of ${ASYMMETRIC.join(', ')}` });

/** The policy's `introspection`. */
export const introspectionSchema = z
  .strictObject({
    endpoint: safeUrl,
    clientId: z.string().min(1),
    clientSecret: z.string().min(1).optional(),
    privateKeyJwt: z.strictObject({ key: privateJwkOrPem, alg: asymmetricAlg, kid: z.string().min(1).optional(), audience: z.string().min(1).optional() }).optional(),
    audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
    issuer: z.string().min(1).optional(),
    cacheMaxAge: durationSchema.optional(),
    cacheSize: z.number().int().positive().max(10_000_000).optional(),
    timeout: timerDurationSchema.optional(),
    maxInFlight: z.number().int().positive().max(100_000).optional(),
    jwtResponse: z
      .strictObject({
        issuer: z.string().min(1),
        algorithms: z.array(asymmetricAlg).min(1),
        jwksUri: safeUrl.optional(),
        keys: z
          .array(z.custom<JWK>((v) => !!v && typeof v === 'object' && typeof (v as { kty?: unknown }).kty === 'string' && !('d' in v) && !('k' in v), 'expected a public JWK'))
          .min(1)
          .optional(),
        maxAge: positiveDurationSchema.optional(),
      })
      .superRefine((j, ctx) => {
        if ((j.jwksUri === undefined) === (j.keys === undefined)) ctx.addIssue({ code: 'custom', message: 'give either jwksUri or keys' });
      })
      .optional(),
  })
  .superRefine((p, ctx) => {
    if ((p.clientSecret === undefined) === (p.privateKeyJwt === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'give either clientSecret (client_secret_basic) or privateKeyJwt (private_key_jwt)' });
    }
  });

/** Introspection settings after validation. */
export interface IntrospectionConfig {
  endpoint: string;
  clientId: string;
  clientSecret?: string;
  privateKeyJwt?: PrivateKeyJwtPolicy;
  audience?: readonly string[];
  issuer?: string;
  cacheMaxAgeMs: number;
  cacheSize: number;
  timeoutMs: number;
  maxInFlight: number;
  jwtResponse?: { issuer: string; algorithms: string[]; jwksUri?: string; keys?: JWK[]; maxAgeS: number };
  clockToleranceS: number;
}

/** Compiles a validated `introspection` policy. */
export function compileIntrospection(p: IntrospectionPolicy, clockToleranceS: number): IntrospectionConfig {
  const c: IntrospectionConfig = {
    endpoint: p.endpoint,
    clientId: p.clientId,
    cacheMaxAgeMs: parseDuration(p.cacheMaxAge ?? '60s') as number,
    cacheSize: p.cacheSize ?? 10_000,
    timeoutMs: Math.ceil(parseDuration(p.timeout ?? '5s') as number),
    maxInFlight: p.maxInFlight ?? 100,
    clockToleranceS,
  };
  if (p.clientSecret !== undefined) c.clientSecret = p.clientSecret;
  if (p.privateKeyJwt !== undefined) c.privateKeyJwt = p.privateKeyJwt;
  if (p.audience !== undefined) c.audience = typeof p.audience === 'string' ? [p.audience] : [...p.audience];
  if (p.issuer !== undefined) c.issuer = p.issuer;
  const j = p.jwtResponse;
  if (j) {
    c.jwtResponse = { issuer: j.issuer, algorithms: [...j.algorithms], maxAgeS: (parseDuration(j.maxAge ?? '60s') as number) / 1000 };
    if (j.jwksUri !== undefined) c.jwtResponse.jwksUri = j.jwksUri;
    if (j.keys !== undefined) c.jwtResponse.keys = [...j.keys];
  }
  return c;
}

/** application/x-www-form-urlencoded, as RFC 6749 §2.3.1 wants client_id and secret encoded before Basic. */
const formEncode = (s: string): string => encodeURIComponent(s).replace(/%20/g, '+');

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

const unavailable = (detail: string): IntrospectionFailure => ({ reason: INTROSPECTION_UNAVAILABLE, detail });

/** A remembered answer and the instant (request time, ms) it stops being served. */
interface CacheEntry {
  answer: Answer;
  untilMs: number;
}

/** Reads a response body, refusing more than `max` bytes (a server's answer is not trusted to be small). */
async function readCapped(res: Response, max: number): Promise<string | undefined> {
  const length = Number(res.headers.get('content-length'));
  if (Number.isFinite(length) && length > max) {
    await res.body?.cancel().catch(() => undefined);
    return undefined;
  }
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => undefined);
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Introspects opaque tokens for one policy: cached, coalesced, fail-closed. */
export class Introspector {
  private readonly cache: LRUCache<string, CacheEntry>;
  /** Requests under way by token hash: concurrent first sightings of one token ask the server once. */
  private readonly inFlight = new Map<string, Promise<Answer>>();
  private signingKey: Promise<CryptoKey | KeyObject> | undefined;
  private readonly answerKeys: JWTVerifyGetKey | undefined;
  private readonly basic: string | undefined;

  constructor(private readonly config: IntrospectionConfig) {
    this.cache = new LRUCache({ max: config.cacheSize });
    if (config.clientSecret !== undefined) {
      this.basic = `Basic ${Buffer.from(`${formEncode(config.clientId)}:${formEncode(config.clientSecret)}`).toString('base64')}`;
    }
    const j = config.jwtResponse;
    if (j?.jwksUri) this.answerKeys = createRemoteJWKSet(new URL(j.jwksUri), { timeoutDuration: config.timeoutMs });
    else if (j?.keys) this.answerKeys = createLocalJWKSet({ keys: j.keys });
  }

  /** Forgets every cached answer. */
  clearCache(): void {
    this.cache.clear();
  }

  /** The cached answer for a token, re-checked against `nowMs`, or undefined. Synchronous, so a repeated token costs no promise. */
  lookup(token: string, nowMs: number, hash = opaqueTokenHash(token)): Answer | undefined {
    const hit = this.cache.get(hash);
    if (!hit) return undefined;
    if (nowMs >= hit.untilMs) {
      this.cache.delete(hash);
      return undefined;
    }
    return this.checkTimes(hit.answer, nowMs);
  }

  /** Introspects a token at time `nowMs`. Never throws. */
  introspect(token: string, nowMs: number): Promise<Answer> {
    const hash = opaqueTokenHash(token);
    const cached = this.lookup(token, nowMs, hash);
    if (cached) return Promise.resolve(cached);
    let pending = this.inFlight.get(hash);
    if (!pending) {
      if (this.inFlight.size >= this.config.maxInFlight) return Promise.resolve(unavailable('too many introspection requests under way'));
      pending = this.ask(token, hash, nowMs).finally(() => this.inFlight.delete(hash));
      this.inFlight.set(hash, pending);
    }
    // The answer is shared; its time checks are each request's own.
    return pending.then((a) => this.checkTimes(a, nowMs));
  }

  private checkTimes(a: Answer, nowMs: number): Answer {
    if ('reason' in a) return a;
    const now = Math.floor(nowMs / 1000);
    const tol = this.config.clockToleranceS;
    if (a.exp !== undefined && a.exp <= now - tol) return { reason: 'token.expired', detail: 'exp is past' };
    if (a.nbf !== undefined && a.nbf > now + tol) return { reason: 'token.expired', detail: 'nbf is in the future' };
    if (a.iat !== undefined && a.iat > now + tol) return { reason: 'token.invalid', detail: 'iat is in the future' };
    return a;
  }

  private async ask(token: string, hash: string, nowMs: number): Promise<Answer> {
    let answer: Answer;
    try {
      answer = await this.request(token, hash, nowMs);
    } catch (err) {
      // Network failure, timeout, an unreadable key: the server could not answer, never "token invalid".
      return unavailable(err instanceof Error && err.name === 'TimeoutError' ? 'introspection timed out' : 'introspection request failed');
    }
    if (!('reason' in answer && answer.reason === INTROSPECTION_UNAVAILABLE) && this.config.cacheMaxAgeMs > 0) {
      const exp = 'reason' in answer ? undefined : answer.exp;
      const ttl = Math.floor(Math.min(this.config.cacheMaxAgeMs, exp === undefined ? Infinity : exp * 1000 - nowMs));
      // lru-cache reads ttl 0 as "forever": an answer with no time left is not remembered at all.
      if (ttl >= 1) this.cache.set(hash, { answer, untilMs: nowMs + ttl }, { ttl });
    }
    return answer;
  }

  private async clientAuthentication(nowMs: number): Promise<{ headers: Record<string, string>; params: Record<string, string> }> {
    if (this.basic !== undefined) return { headers: { authorization: this.basic }, params: {} };
    const pk = this.config.privateKeyJwt as PrivateKeyJwtPolicy;
    this.signingKey ??= (typeof pk.key === 'string' ? Promise.resolve(pk.key).then(createPrivateKey) : (importJWK(pk.key, pk.alg) as Promise<CryptoKey>)).catch(
      (err: unknown) => {
        this.signingKey = undefined;
        throw err;
      },
    );
    const key = await this.signingKey;
    const kid = pk.kid ?? (typeof pk.key === 'object' ? pk.key.kid : undefined);
    const iat = Math.floor(nowMs / 1000);
    const assertion = await new SignJWT({})
      .setProtectedHeader(kid === undefined ? { alg: pk.alg } : { alg: pk.alg, kid })
      .setIssuer(this.config.clientId)
      .setSubject(this.config.clientId)
      .setAudience(pk.audience ?? this.config.endpoint)
      .setJti(randomUUID())
      .setIssuedAt(iat)
      .setExpirationTime(iat + 60)
      .sign(key);
    return {
      headers: {},
      params: { client_id: this.config.clientId, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion },
    };
  }

  private async request(token: string, hash: string, nowMs: number): Promise<Answer> {
    const auth = await this.clientAuthentication(nowMs);
    const signed = this.config.jwtResponse !== undefined;
    const res = await fetch(this.config.endpoint, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        accept: signed ? 'application/token-introspection+jwt' : 'application/json',
        ...auth.headers,
      },
      body: new URLSearchParams({ token, token_type_hint: 'access_token', ...auth.params }).toString(),
      signal: AbortSignal.timeout(this.config.timeoutMs),
      // A redirect would resend the token (and the client's credentials) somewhere else.
      redirect: 'error',
    });
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => undefined);
      return unavailable(`introspection endpoint answered ${res.status}`);
    }
    const text = await readCapped(res, MAX_ANSWER_BYTES);
    if (text === undefined) return unavailable('introspection answer too large');
    const type = (res.headers.get('content-type') ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
    let body: unknown;
    if (signed) {
      // A plain JSON answer where a signed one was asked for could come from anyone on the path: refused.
      if (type !== 'application/token-introspection+jwt') return unavailable('introspection answer is not signed');
      const verified = await this.verifyAnswer(text.trim(), nowMs);
      if ('reason' in verified) return verified;
      body = verified.claims;
    } else {
      if (type !== 'application/json' && !type.endsWith('+json')) return unavailable('introspection answer is not JSON');
      try {
        body = JSON.parse(text);
      } catch {
        return unavailable('introspection answer is not JSON');
      }
    }
    return this.toAnswer(body, hash);
  }

  private async verifyAnswer(jwt: string, nowMs: number): Promise<{ claims: unknown } | IntrospectionFailure> {
    const j = this.config.jwtResponse as NonNullable<IntrospectionConfig['jwtResponse']>;
    try {
      const { payload } = await jwtVerify(jwt, this.answerKeys as JWTVerifyGetKey, {
        typ: 'token-introspection+jwt',
        algorithms: j.algorithms,
        issuer: j.issuer,
        // RFC 9701 §5: the answer is addressed to this resource server, by its client id.
        audience: this.config.clientId,
        requiredClaims: ['iat'],
        maxTokenAge: j.maxAgeS,
        clockTolerance: this.config.clockToleranceS,
        currentDate: new Date(nowMs),
      });
      return { claims: payload['token_introspection'] };
    } catch (err) {
      // An answer that is forged, for someone else or replayed is the server's (or the path's) fault, not the token's.
      return unavailable(`signed introspection answer refused: ${err instanceof joseErrors.JOSEError ? err.code : 'unreadable'}`);
    }
  }

  private toAnswer(body: unknown, hash: string): Answer {
    if (!body || typeof body !== 'object' || Array.isArray(body)) return unavailable('introspection answer is not an object');
    const r = body as Record<string, unknown>;
    if (typeof r['active'] !== 'boolean') return unavailable('introspection answer has no boolean "active"');
    if (r['active'] !== true) return { reason: 'token.invalid', detail: 'token is not active' };
    const { exp, nbf, iat, sub, jti, scope, aud, iss } = r;
    const tokenType = r['token_type'];
    const authTime = r['auth_time'];
    for (const t of [exp, nbf, iat, authTime])
      if (t !== undefined && !isClaimTime(t)) return { reason: 'token.invalid', detail: 'a time in the introspection answer is out of range' };
    if (sub !== undefined && typeof sub !== 'string') return { reason: 'token.invalid', detail: 'sub is not a string' };
    if (jti !== undefined && (typeof jti !== 'string' || jti === '' || jti.length > 256)) return { reason: 'token.invalid', detail: 'jti is not a usable string' };
    if (scope !== undefined && typeof scope !== 'string') return { reason: 'token.invalid', detail: 'scope is not a string' };
    // A refresh token is active too; it is not an access token and must not pass for one.
    if (typeof tokenType === 'string' && tokenType.toLowerCase().replace(/_/g, '') === 'refreshtoken') return { reason: 'token.invalid', detail: 'token is a refresh token' };
    const audiences = this.config.audience;
    if (audiences) {
      const named = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : [];
      if (!named.some((a) => audiences.includes(a))) return { reason: 'token.invalid', detail: 'token is not for this audience' };
    }
    if (this.config.issuer !== undefined && iss !== this.config.issuer) return { reason: 'token.invalid', detail: 'token is from another issuer' };
    const scopes = typeof scope === 'string' ? scope.split(' ').filter((s) => s !== '') : [];
    const { active: _active, ...claims } = r;
    const info: TokenInfo = {
      id: typeof jti === 'string' ? jti : `sha256:${hash}`,
      kind: 'opaque',
      scopes: Object.freeze(scopes) as string[],
      claims: deepFreeze(claims),
    };
    if (typeof sub === 'string') info.subject = sub;
    if (exp !== undefined) info.expiresAt = new Date((exp as number) * 1000);
    if (iat !== undefined) info.issuedAt = new Date((iat as number) * 1000);
    const t: IntrospectedToken = { info: Object.freeze(info), scopeSet: new Set(scopes) };
    if (exp !== undefined) t.exp = exp as number;
    if (nbf !== undefined) t.nbf = nbf as number;
    if (iat !== undefined) t.iat = iat as number;
    if (authTime !== undefined) t.authTime = authTime as number;
    const amr = r['amr'];
    if (Array.isArray(amr) && amr.every((a) => typeof a === 'string')) t.amr = amr;
    if (typeof r['acr'] === 'string') t.acr = r['acr'];
    const cnf = parseConfirmation(r['cnf']);
    if (cnf !== undefined) t.cnf = cnf;
    return t;
  }
}
