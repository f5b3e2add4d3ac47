// Opaque access tokens checked at the authorization server's introspection endpoint (RFC 7662), optionally with
// signed JWT answers (RFC 9701). The client authenticates by secret or by a signed assertion (RFC 7523); answers
// are cached by token hash, bounded and never past the token's own expiry; the endpoint failing fails closed.
// The policy (introspection-policy.ts) and the reading of answers (introspection-answer.ts) are their own files;
// this one keeps the Introspector and re-exports the rest, so src/core and callers import from here as before.
import { createHash, createPrivateKey, randomUUID, type KeyObject } from 'node:crypto';
import { createLocalJWKSet, errors as joseErrors, importJWK, jwtVerify, SignJWT, type JWTVerifyGetKey } from 'jose';
import { LRUCache } from 'lru-cache';
import { type Answer, INTROSPECTION_UNAVAILABLE, type IntrospectionFailure, readCapped, toAnswer, unavailable } from './introspection-answer.js';
import type { IntrospectionConfig, PrivateKeyJwtPolicy } from './introspection-policy.js';
import { DEFAULT_REMOTE_KEYS, RemoteKeys } from './jwks.js';
import { IdpUnavailable } from './remote.js';

export { INTROSPECTION_UNAVAILABLE, type IntrospectedToken, type IntrospectionFailure } from './introspection-answer.js';
export {
  compileIntrospection,
  type IntrospectionConfig,
  type IntrospectionJwtPolicy,
  type IntrospectionPolicy,
  introspectionSchema,
  type PrivateKeyJwtPolicy,
} from './introspection-policy.js';

const MAX_ANSWER_BYTES = 65_536;

/** Whether a token looks like a JWS or JWE (base64url segments separated by dots): those are never introspected when JWTs are accepted. */
export function isJwtShaped(token: string): boolean {
  const parts = token.split('.');
  return (parts.length === 3 || parts.length === 5) && parts.every((p, i) => /^[A-Za-z0-9_-]*$/.test(p) && (i > 0 || p.length > 0));
}

/** The id of an opaque token without `jti`: its SHA-256, so the raw token is never a key, an id or a log value. */
export function opaqueTokenHash(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

/** application/x-www-form-urlencoded, as RFC 6749 §2.3.1 wants client_id and secret encoded before Basic. */
const formEncode = (s: string): string => encodeURIComponent(s).replace(/%20/g, '+');

/** A remembered answer and the instant (request time, ms) it stops being served. */
interface CacheEntry {
  answer: Answer;
  untilMs: number;
}

/** Introspects opaque tokens for one policy: cached, coalesced, fail-closed. */
export class Introspector {
  private readonly cache: LRUCache<string, CacheEntry>;
  /** Requests under way by token hash: concurrent first sightings of one token ask the server once. */
  private readonly inFlight = new Map<string, Promise<Answer>>();
  private signingKey: Promise<CryptoKey | KeyObject> | undefined;
  private readonly answerKeys: JWTVerifyGetKey | undefined;
  private readonly basic: string | undefined;

  /**
   * `subjectKeyOf` gives a subject's key under its issuer's configuration (the guard's, with several issuers): an
   * answer naming such an issuer reads and counts that issuer's subject revocations and limits, as its JWTs do.
   */
  constructor(
    private readonly config: IntrospectionConfig,
    private readonly subjectKeyOf?: (sub: string, iss: string) => string | undefined,
  ) {
    this.cache = new LRUCache({ max: config.cacheSize });
    if (config.clientSecret !== undefined) {
      this.basic = `Basic ${Buffer.from(`${formEncode(config.clientId)}:${formEncode(config.clientSecret)}`).toString('base64')}`;
    }
    const j = config.jwtResponse;
    // The authorization server's keys for signed answers: bounded as the JWT path's are, within the introspection timeout.
    if (j?.jwksUri) this.answerKeys = new RemoteKeys({ ...DEFAULT_REMOTE_KEYS, jwksUri: j.jwksUri, timeoutMs: config.timeoutMs }).getKey;
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
    const answer = toAnswer(body, hash, this.config);
    if (this.subjectKeyOf === undefined || 'reason' in answer) return answer;
    const { subject, claims } = answer.info;
    const iss = claims?.['iss'];
    const key = subject === undefined || typeof iss !== 'string' ? undefined : this.subjectKeyOf(subject, iss);
    if (key !== undefined && key !== subject) answer.subjectKey = key;
    return answer;
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
      if (err instanceof IdpUnavailable) return unavailable(`signed introspection answer unverifiable: ${err.message}`);
      return unavailable(`signed introspection answer refused: ${err instanceof joseErrors.JOSEError ? err.code : 'unreadable'}`);
    }
  }
}
