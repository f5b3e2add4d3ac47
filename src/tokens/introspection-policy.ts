// The `introspection` policy: its types, the schema that checks it and the compile step that fills in defaults.
// Apart from the Introspector so the policy can be read and checked (core/policy-schema.ts) without the client.
import { createPrivateKey } from 'node:crypto';
import { z } from 'zod';
import { ASYMMETRIC } from '../leaf/algorithms.js';
import { durationSchema, parseDuration, positiveDurationSchema, timerDurationSchema, type Duration } from '../leaf/duration.js';
import type { Jwk } from '../leaf/types.js';
import { isLoopbackOrHttps } from '../leaf/urls.js';

/** Signed client authentication (`private_key_jwt`, RFC 7523 §2.2) for the introspection request. */
export interface PrivateKeyJwtPolicy {
  /** The client's private key: a private JWK, or a private key in PEM (PKCS#8, PKCS#1 or SEC1), checked when the policy is read. */
  key: Jwk | string;
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
  keys?: readonly Jwk[];
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

const privateJwkOrPem = z.custom<Jwk | string>(
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
          .array(z.custom<Jwk>((v) => !!v && typeof v === 'object' && typeof (v as { kty?: unknown }).kty === 'string' && !('d' in v) && !('k' in v), 'expected a public JWK'))
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
  jwtResponse?: { issuer: string; algorithms: string[]; jwksUri?: string; keys?: Jwk[]; maxAgeS: number };
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
