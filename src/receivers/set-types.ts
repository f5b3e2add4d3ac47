// The public vocabulary of token-guard/set (options, records, responses) and the schema that checks the options:
// one file so the interface and its validation change together, apart from the receiver's logic.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { ASYMMETRIC } from '../leaf/algorithms.js';
import { isAsyncFunction } from '../leaf/callbacks.js';
import { positiveDurationSchema, timerDurationSchema, type Duration } from '../leaf/duration.js';
import type { TokenStore } from '../leaf/store.js';
import type { Jwk } from '../leaf/types.js';
import { isLoopbackOrHttps } from '../leaf/urls.js';
import { clockToleranceSchema } from '../tokens/clock-tolerance.js';
import type { SubjectIdentifier } from './set-subjects.js';

/** RFC 8935 §2.4 error codes. */
export type SetErrorCode = 'invalid_request' | 'invalid_key' | 'invalid_issuer' | 'invalid_audience' | 'authentication_failed';

/** What the receiver did with one event of a SET. */
export interface SecurityEventAction {
  /** The event type URI. */
  type: string;
  /** `revoke_subject`: every token of `subject` issued before the SET; `revoke_token`: the token `tokenId`; `ignored`: nothing (see `detail`). */
  action: 'revoke_subject' | 'revoke_token' | 'ignored';
  subject?: string;
  /** With `subjectScope: 'issuer'`: the issuer whose `subject` alone is revoked (the guard's `subjectIdOf`). */
  issuer?: string;
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
  keys?: readonly Jwk[];
  /** Accepted signing algorithms (asymmetric). Default: `['RS256', 'ES256', 'PS256', 'EdDSA']`. */
  algorithms?: readonly string[];
  /**
   * Oldest SET accepted, by its `iat`; its jti is remembered that long. Default: `tokenLifetime`, so a SET the
   * transmitter retries after a 503 is applied for as long as its revocation can matter. A shorter value refuses
   * (400) a late retry, and its revocation is lost.
   */
  maxAge?: Duration;
  /** The longest an access token lives: revocations are kept that long (plus twice `clockTolerance`) after the SET's `iat`. Default: `'1d'`. */
  tokenLifetime?: Duration;
  /**
   * Leeway for `iat`, and the guards' leeway: revocations are kept twice this much (or twice `guard`'s
   * `clockTolerance`, when larger) longer, since a guard accepts a token until its `exp` plus its own tolerance.
   * Give at least the largest of the guards' sharing the store. At most `'5m'`. Default: `'5s'`.
   */
  clockTolerance?: Duration;
  /** Longest a store call may take before the delivery fails (503, the transmitter retries); above zero, at most 2^31−1 ms. Default: `'1s'`. */
  storeTimeout?: Duration;
  /** Largest body read, in bytes; a larger one is answered 413 unread. Default: 65 536. */
  maxBodyBytes?: number;
  /**
   * Longest the `node` and `fetch` handlers wait for the whole body, from the request's arrival: a slower one is
   * answered 408 and the connection closed, so a client trickling bytes holds neither a socket nor `maxBodyBytes`
   * of memory for long. Above zero, at most 2^31−1 ms. Default: `'10s'`.
   */
  bodyTimeout?: Duration;
  /** The exact `Authorization` header value the transmitter sends (the stream's `authorization_header`). Default: none required. */
  authorization?: string;
  /**
   * Maps a subject identifier to the subject of the tokens (`sub`). Default: `iss_sub` → `sub`, `opaque` → `id`,
   * `complex` → its `user`; anything else (email, phone number…) is not mapped and the event is ignored (audited).
   * Synchronous: an `async` one is refused at creation; a throw or a returned promise leaves the event unmapped.
   */
  subjectOf?: (subject: SubjectIdentifier, eventType: string) => string | undefined;
  /**
   * The issuers whose subjects (the `iss` of an `iss_sub` or `jwt_id` subject) this transmitter may name: a subject of
   * any other issuer revokes nothing (audited as `ignored`). For a transmitter that speaks for other issuers, such as
   * an SSF service beside the token issuer. Default: `[issuer]`.
   */
  subjectIssuers?: readonly string[];
  /**
   * Whose tokens a subject revocation refuses. `'shared'` (default): every token of that `sub`, whatever its issuer
   * (API keys' too). `'issuer'`: only the tokens of the subject's issuer (`guard.subjectIdOf`), so one tenant's
   * transmitter cannot log out another tenant's user of the same `sub`; needs `guard`, and every `subjectIssuers`
   * entry must be an issuer the guard accepts. A subject naming no `iss` is each `subjectIssuers` issuer's.
   */
  subjectScope?: 'shared' | 'issuer';
  /**
   * The guard whose tokens a `jwt_id` subject names (a `Guard` from `createGuard` fits): its `tokenIdOf` gives the id
   * to revoke, `<name>:<jti>` when the guard has several issuers. Needed with several issuers. Default: the bare `jti`.
   */
  guard?: TokenIdSource;
  /** Audit hook: one record per SET received, applied or not. Its errors are swallowed. */
  onEvent?: (record: SecurityEventRecord) => void | Promise<void>;
  /** Time source, synchronous (an `async` one is refused); no valid Date answers the delivery 503. Default: `() => new Date()`. */
  clock?: () => Date;
}

/** What the receiver needs of a guard: the id it gives a JWT. A `Guard` (from `createGuard`) is one. */
export interface TokenIdSource {
  /** The id of a JWT with this `jti` from `issuer`, or undefined when no issuer configuration accepts that `iss`. */
  tokenIdOf(jti: string, issuer: string): string | undefined;
  /** The key revoking `sub` of `issuer` alone, or undefined when no configuration accepts that `iss`: needed by `subjectScope: 'issuer'`. */
  subjectIdOf?(sub: string, issuer: string): string | undefined;
  /** The guard's leeway for token times, in seconds (a `Guard` has it): revocations are kept past it too. */
  readonly clockTolerance?: number;
}

/** What one delivery is answered with. */
export interface SetResponse {
  /** 408: the body did not arrive within `bodyTimeout`. 500: a body parser in front read the body and handed none on (the app's set-up, not the SET, is at fault). */
  status: 202 | 400 | 405 | 408 | 413 | 500 | 503;
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
  /**
   * A Node `(req, res)` handler (http.createServer, Express, Koa's `ctx.req/res`, Fastify's `raw`). Reads `req.body` if
   * a body parser already did; answers 500 at once when one read the stream but left no string or buffer there.
   */
  node(req: IncomingMessage & { body?: unknown }, res: ServerResponse): void;
  /** A fetch handler (`Request` → `Response`): Hono, Next.js route handlers, Bun, Deno. */
  fetch(request: Request): Promise<Response>;
}

/** The schema `createSetReceiver` checks its options with (mirrors SetReceiverOptions). */
export const optionsSchema = z
  .strictObject({
    store: z.custom<TokenStore>(
      (s) => !!s && typeof s === 'object' && ['revoke', 'revokeSubject', 'claimOnce'].every((m) => typeof (s as Record<string, unknown>)[m] === 'function'),
      'expected a TokenStore',
    ),
    issuer: z.string().min(1),
    audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    jwksUri: z.string().refine(isLoopbackOrHttps, 'expected an https URL (http only on loopback)').optional(),
    keys: z
      .array(z.custom<Jwk>((v) => !!v && typeof v === 'object' && typeof (v as { kty?: unknown }).kty === 'string' && !('d' in v) && !('k' in v), 'expected a public JWK'))
      .min(1)
      .optional(),
    algorithms: z
      .array(z.enum(ASYMMETRIC as [string, ...string[]]))
      .min(1)
      .optional(),
    maxAge: positiveDurationSchema.optional(),
    tokenLifetime: positiveDurationSchema.optional(),
    clockTolerance: clockToleranceSchema.optional(),
    storeTimeout: timerDurationSchema.optional(),
    maxBodyBytes: z.number().int().min(1024).max(10_485_760).optional(),
    bodyTimeout: timerDurationSchema.optional(),
    authorization: z.string().min(1).optional(),
    subjectOf: z
      .custom<NonNullable<SetReceiverOptions['subjectOf']>>((v) => typeof v === 'function')
      .refine((v) => !isAsyncFunction(v), 'an async subjectOf answers with a promise, never a subject, so no event would be mapped: make it synchronous')
      .optional(),
    subjectIssuers: z.array(z.string().min(1)).min(1).optional(),
    subjectScope: z.enum(['shared', 'issuer']).optional(),
    guard: z.custom<TokenIdSource>((v) => !!v && typeof v === 'object' && typeof (v as { tokenIdOf?: unknown }).tokenIdOf === 'function', 'expected a Guard').optional(),
    onEvent: z.custom<NonNullable<SetReceiverOptions['onEvent']>>((v) => typeof v === 'function').optional(),
    clock: z
      .custom<() => Date>((v) => typeof v === 'function')
      .refine((v) => !isAsyncFunction(v), 'an async clock answers with a promise, never a Date: make it synchronous')
      .optional(),
  })
  .superRefine((o, ctx) => {
    if ((o.jwksUri === undefined) === (o.keys === undefined)) ctx.addIssue({ code: 'custom', path: ['jwksUri'], message: 'give either jwksUri or keys' });
  });
