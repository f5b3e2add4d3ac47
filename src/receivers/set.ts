// Revocation pushed by the identity provider: a receiver of Security Event Tokens (RFC 8417) delivered by push
// (RFC 8935), as the Shared Signals Framework's CAEP events send them. A verified event becomes a revocation in the
// shared store, so every guard instance on that store refuses the subject's (or the token's) next request.
// The public types, subject and event mapping, responses and transports live in set-*.ts; this file stays the
// `token-guard/set` entry point, so it keeps the receiver itself and re-exports their public part.
import { createHash, timingSafeEqual } from 'node:crypto';
import { createLocalJWKSet, decodeJwt, errors as joseErrors, jwtVerify, type JWK, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { droppedPromise } from '../leaf/callbacks.js';
import { parseDuration } from '../leaf/duration.js';
import { hasLoneSurrogate } from '../leaf/well-formed.js';
import { StoreError, UsageError } from '../leaf/errors.js';
import { noteBareIdReceiver } from '../leaf/multi-issuer-stores.js';
import { DEFAULT_REMOTE_KEYS, RemoteKeys } from '../tokens/jwks.js';
import { IdpUnavailable } from '../tokens/remote.js';
import { actionsOf, checkIssuerScope, subjectKeyOf, type SubjectMapping } from './set-events.js';
import { ACCEPTED, errorResponse, Refused, TOO_LARGE, UNAVAILABLE } from './set-responses.js';
import { defaultSubjectOf } from './set-subjects.js';
import { createFetchHandler, createNodeHandler } from './set-transport.js';
import {
  optionsSchema,
  type SecurityEventAction,
  type SecurityEventRecord,
  type SetDelivery,
  type SetReceiver,
  type SetReceiverOptions,
  type SetResponse,
} from './set-types.js';

export { CAEP_EVENTS } from './set-events.js';
export { defaultSubjectOf, type SubjectIdentifier } from './set-subjects.js';
export type { SecurityEventAction, SecurityEventRecord, SetDelivery, SetErrorCode, SetReceiver, SetReceiverOptions, SetResponse, TokenIdSource } from './set-types.js';

const SET_CONTENT_TYPE = 'application/secevent+jwt';
/** Longest jti taken: the bound the guard puts on DPoP proof and introspected token ids. */
const MAX_JTI = 256;

const sha256 = (s: string) => createHash('sha256').update(s).digest();

/**
 * Creates a push-delivery receiver (RFC 8935) for Security Event Tokens (RFC 8417). CAEP `session-revoked` and
 * `credential-change` revoke every token of the subject issued before the SET; `token-claims-change` revokes the
 * token it names (`jwt_id` subject; with `guard`, under the id that guard gives it) or else the subject's. A subject
 * naming an issuer outside `subjectIssuers` (default: the transmitter) revokes nothing. Answers 202, 400 with an
 * RFC 8935 error, 408 for a body not received within `bodyTimeout`, 413 for an oversized body, or 503 when the store fails or times out (the transmitter then
 * retries). Throws UsageError for bad options.
 *
 * Exported from `token-guard/set`.
 * @example
 * const receiver = createSetReceiver({ store, issuer: 'https://idp.example/', audience: 'https://api.example/', jwksUri: 'https://idp.example/jwks' });
 * app.post('/security-events', receiver.node);
 */
export function createSetReceiver(options: SetReceiverOptions): SetReceiver {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new UsageError(`createSetReceiver: ${issue?.path.join('.') || 'options'}: ${issue?.message ?? 'invalid'}`, { help: 'see docs/security-events.md' });
  }
  const { store, issuer } = options;
  if (options.guard === undefined && noteBareIdReceiver(store)) {
    throw new UsageError(
      'createSetReceiver: a guard with several issuers reads this store, and without `guard` a jwt_id would be revoked under its bare jti, which that guard never reads',
      {
        help: 'pass the guard: createSetReceiver({ ..., guard })',
      },
    );
  }
  const audiences = typeof options.audience === 'string' ? [options.audience] : [...options.audience];
  const algorithms = [...(options.algorithms ?? ['RS256', 'ES256', 'PS256', 'EdDSA'])];
  const lifetimeMs = parseDuration(options.tokenLifetime ?? '1d') as number;
  // As old as its revocation can matter by default: a SET the transmitter retries after a 503 is still applied, and
  // applying it late is as right as on time (its cut-off is its own iat).
  const maxAgeS = (options.maxAge === undefined ? lifetimeMs : (parseDuration(options.maxAge) as number)) / 1000;
  const toleranceS = (parseDuration(options.clockTolerance ?? '5s') as number) / 1000;
  // Kept past the guard's own leeway too: it accepts a token until exp plus that, whatever the receiver's.
  const guardToleranceS = options.guard?.clockTolerance;
  const keptToleranceS = typeof guardToleranceS === 'number' && Number.isFinite(guardToleranceS) ? Math.max(toleranceS, guardToleranceS) : toleranceS;
  const storeTimeoutMs = Math.max(1, Math.ceil(parseDuration(options.storeTimeout ?? '1s') as number));
  const maxBody = options.maxBodyBytes ?? 65_536;
  const bodyTimeoutMs = Math.max(1, Math.ceil(parseDuration(options.bodyTimeout ?? '10s') as number));
  const expectedAuth = options.authorization === undefined ? undefined : sha256(options.authorization);
  const mapping: SubjectMapping = {
    subjectOf: options.subjectOf ?? defaultSubjectOf,
    subjectIssuers: new Set(options.subjectIssuers ?? [issuer]),
    guard: options.guard,
    scope: options.subjectScope ?? 'shared',
  };
  if (mapping.scope === 'issuer') checkIssuerScope(mapping);
  // Fetched as a policy's jwt.jwksUri is, within its default limits (body size, key count, no redirects, staleness):
  // jose's remote set reads any body whole, so a transmitter's key server could make each receiver read gigabytes.
  const keys: JWTVerifyGetKey = options.jwksUri
    ? new RemoteKeys({ ...DEFAULT_REMOTE_KEYS, jwksUri: options.jwksUri }).getKey
    : createLocalJWKSet({ keys: [...(options.keys as JWK[])] });
  const clock = options.clock ?? (() => new Date());

  function audit(record: SecurityEventRecord): void {
    if (!options.onEvent) return;
    try {
      droppedPromise(options.onEvent(record));
    } catch {
      // the audit hook's own failure never changes the answer
    }
  }

  /**
   * The delivery's time, or undefined when there is none: a clock that returned a promise (dropped, its rejection
   * handled) or no valid Date. Every time check would then fail, and a 400 would make the transmitter drop the SET.
   */
  function timeOf(delivery: SetDelivery): Date | undefined {
    let now: unknown;
    try {
      now = delivery.now ?? clock();
    } catch {
      return undefined;
    }
    if (droppedPromise(now)) return undefined;
    return now instanceof Date && Number.isFinite(now.getTime()) ? now : undefined;
  }

  async function verify(jwt: string, now: Date): Promise<JWTPayload> {
    // Issuer and audience are read unverified first, only to name the right error; acceptance needs the signature.
    let claims: JWTPayload;
    try {
      claims = decodeJwt(jwt);
    } catch {
      throw new Refused('invalid_request', 'body is not a signed JWT');
    }
    if (claims.iss !== issuer) throw new Refused('invalid_issuer', 'SET is from another issuer');
    const aud = typeof claims.aud === 'string' ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud : [];
    if (!aud.some((a) => audiences.includes(a))) throw new Refused('invalid_audience', 'SET is not addressed to this receiver');
    try {
      const { payload } = await jwtVerify(jwt, keys, {
        typ: 'secevent+jwt',
        algorithms,
        issuer,
        audience: audiences,
        requiredClaims: ['iat', 'jti'],
        maxTokenAge: maxAgeS,
        clockTolerance: toleranceS,
        currentDate: now,
      });
      return payload;
    } catch (err) {
      if (
        err instanceof IdpUnavailable ||
        err instanceof joseErrors.JWKSTimeout ||
        (err instanceof joseErrors.JOSEError && err.code === 'ERR_JOSE_GENERIC') ||
        (err instanceof TypeError && err.cause !== undefined)
      ) {
        throw err; // the key server failed: 503, the transmitter retries
      }
      if (err instanceof joseErrors.JWSSignatureVerificationFailed || err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JOSEAlgNotAllowed) {
        throw new Refused('invalid_key', 'SET signature does not verify with the issuer keys');
      }
      if (err instanceof joseErrors.JWTClaimValidationFailed) throw new Refused('invalid_request', `SET claim ${err.claim}: ${err.reason}`);
      if (err instanceof joseErrors.JWTExpired) throw new Refused('invalid_request', 'SET is expired');
      throw new Refused('invalid_request', 'SET is not a valid signed JWT');
    }
  }

  /** One store call, bounded by storeTimeout: a late answer is dropped, since the transmitter's retry applies it again. */
  function call<T>(run: () => T | PromiseLike<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new StoreError(`store call timed out after ${storeTimeoutMs} ms`)), storeTimeoutMs);
      const settle = (f: () => void) => {
        clearTimeout(timer);
        f();
      };
      try {
        Promise.resolve(run()).then(
          (v) => settle(() => resolve(v)),
          (e: unknown) => settle(() => reject(e)),
        );
      } catch (e) {
        settle(() => reject(e));
      }
    });
  }

  async function receive(delivery: SetDelivery): Promise<SetResponse> {
    const now = timeOf(delivery);
    if (now === undefined) {
      // Failed, not refused: 503 makes the transmitter retry, and the SET is applied once the clock answers.
      audit({ time: new Date(), outcome: 'failed', actions: [], description: "no valid time: the clock (or the delivery's now) gave no valid Date" });
      return UNAVAILABLE();
    }
    const nowMs = now.getTime();
    let payload: JWTPayload | undefined;
    let jti: string | undefined;
    let actions: SecurityEventAction[] = [];
    try {
      if (expectedAuth !== undefined) {
        const given = sha256(typeof delivery.authorization === 'string' ? delivery.authorization : '');
        if (!timingSafeEqual(given, expectedAuth)) throw new Refused('authentication_failed', 'the transmitter is not authorized');
      }
      const type = (delivery.contentType ?? '').split(';')[0]?.trim().toLowerCase();
      if (type !== SET_CONTENT_TYPE) throw new Refused('invalid_request', `expected Content-Type ${SET_CONTENT_TYPE}`);
      const size = typeof delivery.body === 'string' ? Buffer.byteLength(delivery.body) : delivery.body.byteLength;
      if (size > maxBody) return TOO_LARGE();
      const jwt = (typeof delivery.body === 'string' ? delivery.body : Buffer.from(delivery.body).toString('utf8')).trim();
      payload = await verify(jwt, now);
      // The replay key: a null, number or empty jti would give every such SET one key, each later one a "replay".
      if (typeof payload.jti !== 'string' || payload.jti === '' || payload.jti.length > MAX_JTI)
        throw new Refused('invalid_request', `SET jti is not a non-empty string of at most ${MAX_JTI} characters`);
      // Hashed as UTF-8 for the replay key, a lone surrogate turns into U+FFFD: another SET's jti would read as a replay.
      if (hasLoneSurrogate(payload.jti)) throw new Refused('invalid_request', 'SET jti is not well-formed Unicode (it holds a lone UTF-16 surrogate)');
      jti = payload.jti;
      actions = actionsOf(payload, mapping);
      const iatMs = (payload.iat as number) * 1000;
      // Cut-off and retention come from the SET, not the arrival time, so applying it twice changes nothing:
      // revocations are applied before the jti is claimed, and a delivery that failed half-way can be retried.
      // Kept twice the tolerance past the tokens' lifetime: a guard reads a token issued up to its tolerance after the
      // cut-off as revoked, and accepts a token until its exp plus its tolerance.
      const before = iatMs;
      const expiresAt = before + lifetimeMs + 2 * keptToleranceS * 1000;
      for (const [i, a] of actions.entries()) {
        // A record id the key-id shape does not catch (an app's own ids, migrated keys): an identity provider's token
        // event never means an API key, so a jwt_id naming a stored key is ignored, where the store can tell.
        if (a.action === 'revoke_token' && typeof store.getApiKeyById === 'function') {
          const id = a.tokenId as string;
          if ((await call(() => store.getApiKeyById?.(id))) != null) {
            actions[i] = { type: a.type, action: 'ignored', detail: `jwt_id names the stored API key ${JSON.stringify(id.slice(0, 64))}, which a token event does not revoke` };
            continue;
          }
        }
        if (a.action === 'revoke_subject') {
          const key = subjectKeyOf(a, mapping);
          await call(() => store.revokeSubject(key, { now: nowMs, before, expiresAt }));
        } else if (a.action === 'revoke_token') await call(() => store.revoke(a.tokenId as string, { now: nowMs, expiresAt }));
      }
      // Claimed for as long as the SET could be accepted; hashed so the sender picks neither size nor shape of the key.
      const claimKey = `set:${createHash('sha256').update(`${issuer}\u0000${jti}`).digest('base64url')}`;
      const first: unknown = await call(() => store.claimOnce(claimKey, { now: nowMs, expiresAt: iatMs + (maxAgeS + 2 * toleranceS + 1) * 1000 }));
      // Only false means "claimed before": any other answer read as a replay would drop the SET for good.
      if (typeof first !== 'boolean') throw new StoreError('claimOnce returned an answer of the wrong shape');
      if (!first) {
        audit({ time: now, outcome: 'replayed', jti, issuer, actions: [], error: 'invalid_request', description: 'SET jti already received' });
        return errorResponse('invalid_request', 'SET jti already received');
      }
      audit({ time: now, outcome: 'applied', jti, issuer, actions });
      return ACCEPTED;
    } catch (err) {
      const base = { time: now, actions, ...(jti !== undefined && { jti }), ...(payload && { issuer }) };
      if (err instanceof Refused) {
        audit({ ...base, actions: [], outcome: 'refused', error: err.err, description: err.description });
        return errorResponse(err.err, err.description);
      }
      audit({ ...base, outcome: 'failed', description: 'store or key server failed' });
      return UNAVAILABLE();
    }
  }

  const limits = { maxBody, bodyTimeoutMs };
  return { receive, node: createNodeHandler(receive, limits), fetch: createFetchHandler(receive, limits) };
}
