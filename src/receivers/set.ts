// Revocation pushed by the identity provider: a receiver of Security Event Tokens (RFC 8417) delivered by push
// (RFC 8935), as the Shared Signals Framework's CAEP events send them. A verified event becomes a revocation in the
// shared store, so every guard instance on that store refuses the subject's (or the token's) next request.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, errors as joseErrors, jwtVerify, type JWK, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { z } from 'zod';
import { durationSchema, parseDuration, positiveDurationSchema, type Duration } from '../leaf/duration.js';
import { UsageError } from '../leaf/errors.js';
import { JWT_ALGORITHMS } from '../leaf/algorithms.js';
import type { TokenStore } from '../leaf/store.js';

/** CAEP event types this receiver acts on. */
export const CAEP_EVENTS = {
  sessionRevoked: 'https://schemas.openid.net/secevent/caep/event-type/session-revoked',
  credentialChange: 'https://schemas.openid.net/secevent/caep/event-type/credential-change',
  tokenClaimsChange: 'https://schemas.openid.net/secevent/caep/event-type/token-claims-change',
} as const;

/** RFC 8935 §2.4 error codes. */
export type SetErrorCode = 'invalid_request' | 'invalid_key' | 'invalid_issuer' | 'invalid_audience' | 'authentication_failed';

/** A subject identifier (RFC 9493) as an event names it: `iss_sub`, `opaque`, `jwt_id`, `email`, `complex`, … */
export interface SubjectIdentifier {
  format: string;
  [member: string]: unknown;
}

/** What the receiver did with one event of a SET. */
export interface SecurityEventAction {
  /** The event type URI. */
  type: string;
  /** `revoke_subject`: every token of `subject` issued before the SET; `revoke_token`: the token `tokenId`; `ignored`: nothing (see `detail`). */
  action: 'revoke_subject' | 'revoke_token' | 'ignored';
  subject?: string;
  tokenId?: string;
  detail?: string;
}

/** One audit record per SET received: never the SET itself. */
export interface SecurityEventRecord {
  time: Date;
  /** `applied`: verified and acted on; `replayed`: a jti seen before (nothing done); `refused`: not verified (see `error`); `failed`: the store failed (503, the transmitter retries). */
  outcome: 'applied' | 'replayed' | 'refused' | 'failed';
  jti?: string;
  issuer?: string;
  actions: SecurityEventAction[];
  error?: SetErrorCode;
  description?: string;
}

/** Options of `createSetReceiver`. */
export interface SetReceiverOptions {
  /** The store the guards share: revocations are written here. */
  store: TokenStore;
  /** The transmitter's issuer identifier (the SET's `iss`). */
  issuer: string;
  /** This receiver's audience value(s): the SET's `aud` must name one. */
  audience: string | readonly string[];
  /** The transmitter's JWK Set URL (https, or http on loopback). Give this or `keys`. */
  jwksUri?: string;
  /** The transmitter's public keys. Give this or `jwksUri`. */
  keys?: readonly JWK[];
  /** Accepted signing algorithms (asymmetric). Default: `['RS256', 'ES256', 'PS256', 'EdDSA']`. */
  algorithms?: readonly string[];
  /** Oldest SET accepted, by its `iat`; its jti is remembered that long. Default: `'1h'`. */
  maxAge?: Duration;
  /** The longest an access token lives: revocations are kept that long after the SET. Default: `'1d'`. */
  tokenLifetime?: Duration;
  /** Leeway for `iat`. Default: `'5s'`. */
  clockTolerance?: Duration;
  /** Largest body read, in bytes; a larger one is answered 413 unread. Default: 65 536. */
  maxBodyBytes?: number;
  /** The exact `Authorization` header value the transmitter sends (the stream's `authorization_header`). Default: none required. */
  authorization?: string;
  /**
   * Maps a subject identifier to the subject of the tokens (`sub`). Default: `iss_sub` → `sub`, `opaque` → `id`,
   * `complex` → its `user`; anything else (email, phone number…) is not mapped and the event is ignored (audited).
   */
  subjectOf?: (subject: SubjectIdentifier, eventType: string) => string | undefined;
  /** Audit hook: one record per SET received, applied or not. Its errors are swallowed. */
  onEvent?: (record: SecurityEventRecord) => void | Promise<void>;
  /** Time source. Default: `() => new Date()`. */
  clock?: () => Date;
}

/** What one delivery is answered with. */
export interface SetResponse {
  status: 202 | 400 | 405 | 413 | 503;
  headers: Record<string, string>;
  /** `''` or the RFC 8935 error object as JSON. */
  body: string;
}

/** One push delivery, framework-neutral. */
export interface SetDelivery {
  body: string | Uint8Array;
  contentType?: string | undefined;
  authorization?: string | undefined;
  now?: Date;
}

/** A SET receiver: `receive` for any framework, `node` and `fetch` ready to mount. */
export interface SetReceiver {
  /** Handles one delivery (body already read). Never throws. */
  receive(delivery: SetDelivery): Promise<SetResponse>;
  /** A Node `(req, res)` handler (http.createServer, Express, Koa's `ctx.req/res`, Fastify's `raw`). Reads `req.body` if a body parser already did. */
  node(req: IncomingMessage & { body?: unknown }, res: ServerResponse): void;
  /** A fetch handler (`Request` → `Response`): Hono, Next.js route handlers, Bun, Deno. */
  fetch(request: Request): Promise<Response>;
}

const ASYMMETRIC = JWT_ALGORITHMS.filter((a) => !a.startsWith('HS'));
const SET_CONTENT_TYPE = 'application/secevent+jwt';

function isLoopbackOrHttps(uri: string): boolean {
  try {
    const url = new URL(uri);
    if (url.protocol === 'https:') return true;
    return url.protocol === 'http:' && (url.hostname === 'localhost' || url.hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(url.hostname));
  } catch {
    return false;
  }
}

const optionsSchema = z
  .strictObject({
    store: z.custom<TokenStore>(
      (s) => !!s && typeof s === 'object' && ['revoke', 'revokeSubject', 'claimOnce'].every((m) => typeof (s as Record<string, unknown>)[m] === 'function'),
      'expected a TokenStore',
    ),
    issuer: z.string().min(1),
    audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    jwksUri: z.string().refine(isLoopbackOrHttps, 'expected an https URL (http only on loopback)').optional(),
    keys: z
      .array(z.custom<JWK>((v) => !!v && typeof v === 'object' && typeof (v as { kty?: unknown }).kty === 'string' && !('d' in v) && !('k' in v), 'expected a public JWK'))
      .min(1)
      .optional(),
    algorithms: z
      .array(z.enum(ASYMMETRIC as [string, ...string[]]))
      .min(1)
      .optional(),
    maxAge: positiveDurationSchema.optional(),
    tokenLifetime: positiveDurationSchema.optional(),
    clockTolerance: durationSchema.optional(),
    maxBodyBytes: z.number().int().min(1024).max(10_485_760).optional(),
    authorization: z.string().min(1).optional(),
    subjectOf: z.custom<NonNullable<SetReceiverOptions['subjectOf']>>((v) => typeof v === 'function').optional(),
    onEvent: z.custom<NonNullable<SetReceiverOptions['onEvent']>>((v) => typeof v === 'function').optional(),
    clock: z.custom<() => Date>((v) => typeof v === 'function').optional(),
  })
  .superRefine((o, ctx) => {
    if ((o.jwksUri === undefined) === (o.keys === undefined)) ctx.addIssue({ code: 'custom', path: ['jwksUri'], message: 'give either jwksUri or keys' });
  });

/** The subject of the tokens an identifier names, by the default mapping. */
export function defaultSubjectOf(s: SubjectIdentifier): string | undefined {
  if (s.format === 'iss_sub' && typeof s['sub'] === 'string') return s['sub'];
  if (s.format === 'opaque' && typeof s['id'] === 'string') return s['id'];
  if (s.format === 'complex' && isSubject(s['user'])) return defaultSubjectOf(s['user']);
  return undefined;
}

function isSubject(v: unknown): v is SubjectIdentifier {
  return !!v && typeof v === 'object' && !Array.isArray(v) && typeof (v as { format?: unknown }).format === 'string';
}

class Refused extends Error {
  constructor(
    readonly err: SetErrorCode,
    readonly description: string,
  ) {
    super(description);
  }
}

const sha256 = (s: string) => createHash('sha256').update(s).digest();

function errorResponse(err: SetErrorCode, description: string): SetResponse {
  return { status: 400, headers: { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' }, body: JSON.stringify({ err, description }) };
}

const ACCEPTED: SetResponse = { status: 202, headers: {}, body: '' };
const TOO_LARGE = (): SetResponse => ({ ...errorResponse('invalid_request', 'SET too large'), status: 413 });
const UNAVAILABLE = (): SetResponse => ({ status: 503, headers: { 'Retry-After': '5', 'Cache-Control': 'no-store' }, body: '' });

/**
 * Creates a push-delivery receiver (RFC 8935) for Security Event Tokens (RFC 8417). CAEP `session-revoked` and
 * `credential-change` revoke every token of the subject issued before the SET; `token-claims-change` revokes the
 * token it names (`jwt_id` subject) or else the subject's. Answers 202, 400 with an RFC 8935 error, 413 for an
 * oversized body, or 503 when the store fails (the transmitter then retries). Throws UsageError for bad options.
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
  const audiences = typeof options.audience === 'string' ? [options.audience] : [...options.audience];
  const algorithms = [...(options.algorithms ?? ['RS256', 'ES256', 'PS256', 'EdDSA'])];
  const maxAgeS = (parseDuration(options.maxAge ?? '1h') as number) / 1000;
  const lifetimeMs = parseDuration(options.tokenLifetime ?? '1d') as number;
  const toleranceS = (parseDuration(options.clockTolerance ?? '5s') as number) / 1000;
  const maxBody = options.maxBodyBytes ?? 65_536;
  const expectedAuth = options.authorization === undefined ? undefined : sha256(options.authorization);
  const subjectOf = options.subjectOf ?? defaultSubjectOf;
  const keys: JWTVerifyGetKey = options.jwksUri ? createRemoteJWKSet(new URL(options.jwksUri)) : createLocalJWKSet({ keys: [...(options.keys as JWK[])] });
  const clock = options.clock ?? (() => new Date());

  function audit(record: SecurityEventRecord): void {
    if (!options.onEvent) return;
    try {
      const r = options.onEvent(record);
      if (r && typeof r.then === 'function') r.then(undefined, () => undefined);
    } catch {
      // the audit hook's own failure never changes the answer
    }
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

  /** The actions a verified SET asks for. */
  function actionsOf(payload: JWTPayload): SecurityEventAction[] {
    const events = payload['events'];
    if (!events || typeof events !== 'object' || Array.isArray(events) || Object.keys(events).length === 0) {
      throw new Refused('invalid_request', 'SET has no events');
    }
    const topSubject = payload['sub_id'];
    const out: SecurityEventAction[] = [];
    for (const [type, raw] of Object.entries(events as Record<string, unknown>)) {
      if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new Refused('invalid_request', 'an event is not an object');
      const event = raw as Record<string, unknown>;
      const known = type === CAEP_EVENTS.sessionRevoked || type === CAEP_EVENTS.credentialChange || type === CAEP_EVENTS.tokenClaimsChange;
      if (!known) {
        out.push({ type, action: 'ignored', detail: 'event type not acted on' });
        continue;
      }
      const subject = isSubject(event['subject']) ? event['subject'] : isSubject(topSubject) ? topSubject : undefined;
      if (!subject) throw new Refused('invalid_request', 'event has no subject identifier');
      if (type === CAEP_EVENTS.credentialChange && event['change_type'] === 'create') {
        out.push({ type, action: 'ignored', detail: 'a credential was created, none changed' });
        continue;
      }
      if (type === CAEP_EVENTS.tokenClaimsChange && subject.format === 'jwt_id' && typeof subject['jti'] === 'string' && subject['jti'] !== '') {
        out.push({ type, action: 'revoke_token', tokenId: subject['jti'] });
        continue;
      }
      let sub: string | undefined;
      try {
        sub = subjectOf(subject, type);
      } catch {
        sub = undefined;
      }
      if (typeof sub !== 'string' || sub === '')
        out.push({ type, action: 'ignored', detail: `subject format ${JSON.stringify(String(subject.format).slice(0, 32))} not mapped to a token subject` });
      else out.push({ type, action: 'revoke_subject', subject: sub });
    }
    return out;
  }

  async function receive(delivery: SetDelivery): Promise<SetResponse> {
    const now = delivery.now ?? clock();
    const nowMs = now.getTime();
    let payload: JWTPayload | undefined;
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
      actions = actionsOf(payload);
      const jti = payload.jti as string;
      const iatMs = (payload.iat as number) * 1000;
      // Cut-off and retention come from the SET, not the arrival time, so applying it twice changes nothing:
      // revocations are applied before the jti is claimed, and a delivery that failed half-way can be retried.
      const before = iatMs;
      const expiresAt = before + lifetimeMs;
      for (const a of actions) {
        if (a.action === 'revoke_subject') await store.revokeSubject(a.subject as string, { now: nowMs, before, expiresAt });
        else if (a.action === 'revoke_token') await store.revoke(a.tokenId as string, { now: nowMs, expiresAt });
      }
      // Claimed for as long as the SET could be accepted; hashed so the sender picks neither size nor shape of the key.
      const first = await store.claimOnce(`set:${createHash('sha256').update(`${issuer}\u0000${jti}`).digest('base64url')}`, {
        now: nowMs,
        expiresAt: iatMs + (maxAgeS + 2 * toleranceS + 1) * 1000,
      });
      if (first !== true) {
        audit({ time: now, outcome: 'replayed', jti, issuer, actions: [], error: 'invalid_request', description: 'SET jti already received' });
        return errorResponse('invalid_request', 'SET jti already received');
      }
      audit({ time: now, outcome: 'applied', jti, issuer, actions });
      return ACCEPTED;
    } catch (err) {
      const base = { time: now, actions, ...(typeof payload?.jti === 'string' && { jti: payload.jti }), ...(payload && { issuer }) };
      if (err instanceof Refused) {
        audit({ ...base, actions: [], outcome: 'refused', error: err.err, description: err.description });
        return errorResponse(err.err, err.description);
      }
      audit({ ...base, outcome: 'failed', description: 'store or key server failed' });
      return UNAVAILABLE();
    }
  }

  function send(res: ServerResponse, r: SetResponse, close = false): void {
    const headers = close ? { ...r.headers, Connection: 'close' } : r.headers;
    res.writeHead(r.status, headers);
    res.end(r.body);
  }

  function node(req: IncomingMessage & { body?: unknown }, res: ServerResponse): void {
    if (req.method !== 'POST') {
      send(res, { status: 405, headers: { Allow: 'POST' }, body: '' });
      return;
    }
    const header = (name: string) => {
      const v = req.headers[name];
      return Array.isArray(v) ? v[0] : v;
    };
    const deliver = (body: string | Uint8Array) => {
      receive({ body, contentType: header('content-type'), authorization: header('authorization') }).then(
        (r) => send(res, r),
        () => send(res, UNAVAILABLE()),
      );
    };
    // A body parser got there first (express.text({ type: 'application/secevent+jwt' })): use what it read.
    if (typeof req.body === 'string' || req.body instanceof Uint8Array) {
      deliver(req.body);
      return;
    }
    const declared = Number(header('content-length'));
    if (Number.isFinite(declared) && declared > maxBody) {
      // Not read: answered at once, and the connection closed so the rest of the body is never taken in.
      send(res, TOO_LARGE(), true);
      res.once('finish', () => req.destroy());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > maxBody) {
        done = true;
        send(res, TOO_LARGE(), true);
        res.once('finish', () => req.destroy());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      deliver(Buffer.concat(chunks));
    });
    req.on('error', () => {
      done = true;
    });
  }

  async function fetchHandler(request: Request): Promise<Response> {
    const toResponse = (r: SetResponse) => new Response(r.body === '' ? null : r.body, { status: r.status, headers: r.headers });
    if (request.method !== 'POST') return toResponse({ status: 405, headers: { Allow: 'POST' }, body: '' });
    const declared = Number(request.headers.get('content-length'));
    if (Number.isFinite(declared) && declared > maxBody) {
      await request.body?.cancel().catch(() => undefined);
      return toResponse(TOO_LARGE());
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    if (request.body) {
      const reader = request.body.getReader();
      for (;;) {
        let step: ReadableStreamReadResult<Uint8Array>;
        try {
          step = await reader.read();
        } catch {
          return toResponse(errorResponse('invalid_request', 'body could not be read'));
        }
        if (step.done) break;
        size += step.value.byteLength;
        if (size > maxBody) {
          await reader.cancel().catch(() => undefined);
          return toResponse(TOO_LARGE());
        }
        chunks.push(step.value);
      }
    }
    const r = await receive({
      body: Buffer.concat(chunks),
      contentType: request.headers.get('content-type') ?? undefined,
      authorization: request.headers.get('authorization') ?? undefined,
    });
    return toResponse(r);
  }

  return { receive, node, fetch: fetchHandler };
}
