// DPoP (RFC 9449): a DPoP-bound access token must come with a fresh proof signed by the key it is bound to.
import { createHash } from 'node:crypto';
import { EmbeddedJWK, calculateJwkThumbprint, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWK } from 'jose';
import type { Duration } from '../leaf/duration.js';
import { normalizePath } from '../leaf/path.js';
import { JWT_ALGORITHMS, type JwtAlgorithm } from '../leaf/algorithms.js';
import { z } from 'zod';
import { parseDuration, positiveDurationSchema } from '../leaf/duration.js';

/** DPoP acceptance. */
export interface DpopPolicy {
  /** Proof algorithms accepted (asymmetric only). Default: `['ES256', 'RS256', 'PS256', 'EdDSA']`. */
  algorithms?: readonly Exclude<JwtAlgorithm, 'HS256' | 'HS384' | 'HS512'>[];
  /** Oldest proof accepted (by its `iat`); proofs are one-time, this bounds the replay cache. Default: `'60s'`. */
  maxAge?: Duration;
  /** Refuse JWTs that are not DPoP-bound (every JWT must come with a proof). Default: `false`. */
  required?: boolean;
  /**
   * Most live (unexpired) proofs one proof key may have claimed in the store. Beyond it, a fresh proof from that
   * key is refused (`pop.invalid`) until older ones age out, so one client cannot fill the replay store for
   * everyone. A proof stays live for `maxAge` + 2 × `clockTolerance` + 1 s. Default: 1000.
   */
  maxClaimsPerKey?: number;
  /**
   * Origins proofs may name in `htu`, scheme included (`https://api.example.com`). Required: the Host
   * header is the client's to choose, so it cannot tell which server a proof was made for.
   */
  origins: readonly string[];
}

/** DPoP settings after validation. */
export interface DpopConfig {
  algorithms: string[];
  maxAgeS: number;
  required: boolean;
  maxClaimsPerKey: number;
  origins: ReadonlySet<string>;
  /** `DPoP algs="…"`, the scheme's challenge. */
  challenge: string;
  /** Longest proof accepted (the policy's maxTokenBytes). */
  maxTokenBytes: number;
}

/** What a proof is checked against. */
export interface DpopRequest {
  proof: string;
  accessToken: string;
  /** The token's `cnf.jkt`. */
  jkt: string;
  method: string;
  /** Normalised request path. */
  path: string;
  nowMs: number;
  toleranceS: number;
}

/** A verified proof: its replay key (one use per key) and the claim group of its proof key. */
export interface DpopProof {
  replayKey: string;
  /** Every proof of one key shares a group, so the store can cap how many live claims one key holds. */
  replayGroup: string;
}

const b64sha256 = (s: string) => createHash('sha256').update(s).digest('base64url');

/** Verifies a DPoP proof; returns the verified proof or why it fails. Never throws. */
export async function verifyDpopProof(config: DpopConfig, r: DpopRequest): Promise<DpopProof | { failure: string }> {
  let payload: Record<string, unknown>;
  let jwk: JWK;
  try {
    const header = decodeProtectedHeader(r.proof);
    ({ payload } = await jwtVerify(r.proof, EmbeddedJWK, {
      typ: 'dpop+jwt',
      algorithms: config.algorithms,
      requiredClaims: ['iat', 'jti', 'htm', 'htu'],
      maxTokenAge: config.maxAgeS,
      clockTolerance: r.toleranceS,
      currentDate: new Date(r.nowMs),
    }));
    jwk = header.jwk as JWK;
  } catch (err) {
    return { failure: `proof: ${err instanceof joseErrors.JOSEError ? err.code : 'unreadable'}` };
  }
  const { htm, htu, ath, jti } = payload;
  if (typeof jti !== 'string' || jti === '' || jti.length > 256) return { failure: 'proof jti missing or too long' };
  if (htm !== r.method) return { failure: 'proof htm does not match the method' };
  if (typeof htu !== 'string') return { failure: 'proof htu missing' };
  let url: URL;
  try {
    url = new URL(htu);
  } catch {
    return { failure: 'proof htu is not a URL' };
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return { failure: 'proof htu is not http(s)' };
  if (!config.origins.has(url.origin)) return { failure: 'proof htu names another origin' };
  // htu is compared without query and fragment (RFC 9449 §4.3), path as the rules see it.
  if (normalizePath(url.pathname) !== r.path) return { failure: 'proof htu names another path' };
  if (ath !== b64sha256(r.accessToken)) return { failure: 'proof ath does not match the access token' };
  if ((await calculateJwkThumbprint(jwk, 'sha256')) !== r.jkt) return { failure: 'proof key is not the key the token is bound to' };
  // jti is unique per key; hashed so a client cannot choose the size or shape of a store key.
  return { replayKey: `dpop:${b64sha256(`${r.jkt}.${jti}`)}`, replayGroup: `dpop:${r.jkt}` };
}

const DPOP_ALGORITHMS = JWT_ALGORITHMS.filter((a) => !a.startsWith('HS'));

/** The policy's `dpop`. `origins` is checked with the rest of the policy (it needs `jwt` too). */
export const dpopSchema = z.strictObject({
  algorithms: z
    .array(z.enum(DPOP_ALGORITHMS as [string, ...string[]], { error: `expected one of ${DPOP_ALGORITHMS.join(', ')}` }))
    .min(1)
    .optional(),
  maxAge: positiveDurationSchema.optional(),
  required: z.boolean().optional(),
  maxClaimsPerKey: z.number().int().min(1).max(1_000_000).optional(),
  origins: z
    .array(
      z.string().refine((o) => {
        try {
          return new URL(o).origin === o;
        } catch {
          return false;
        }
      }, 'expected an origin such as "https://api.example.com" (scheme and host, no path)'),
    )
    .min(1)
    .optional(),
});

/** Compiles the policy's `dpop`. */
export function compileDpop(d: DpopPolicy, maxTokenBytes = 8192): DpopConfig {
  const algorithms = [...(d.algorithms ?? ['ES256', 'RS256', 'PS256', 'EdDSA'])];
  return {
    algorithms,
    maxAgeS: (parseDuration(d.maxAge ?? '60s') as number) / 1000,
    required: d.required ?? false,
    maxClaimsPerKey: d.maxClaimsPerKey ?? 1000,
    origins: new Set(d.origins),
    challenge: `DPoP algs="${algorithms.join(' ')}"`,
    maxTokenBytes,
  };
}
