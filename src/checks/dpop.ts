// DPoP (RFC 9449): a DPoP-bound access token must come with a fresh proof signed by the key it is bound to.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { decodeProtectedHeader, errors as joseErrors, importJWK, jwtVerify, type JWK } from 'jose';
import { LRUCache } from 'lru-cache';
import type { Duration } from '../leaf/duration.js';
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
  /**
   * Server-provided nonces (RFC 9449 §8, §9): a proof must carry a `nonce` this server issued, so a proof made
   * ahead of time is useless. Nonces are an HMAC over a time step, checked without state: every instance with
   * the same secret accepts every other's. The current and the previous step are accepted. A proof without a
   * valid nonce is answered 401 `use_dpop_nonce` with a `DPoP-Nonce` header; a response carries a fresh
   * `DPoP-Nonce` whenever the one used is no longer current. Default: off.
   */
  nonce?: DpopNoncePolicy;
}

/** DPoP nonce settings. */
export interface DpopNoncePolicy {
  /**
   * At least 32 random bytes, shared by every instance. A list rotates the secret: the first issues nonces,
   * every one is accepted.
   */
  secret: string | Uint8Array | readonly (string | Uint8Array)[];
  /** How long one nonce is current; each is accepted for up to two steps. Default: `'5m'`. */
  step?: Duration;
}

/** Issues and checks stateless DPoP nonces (HMAC over a time step). */
export class DpopNonces {
  private readonly secrets: Buffer[];
  private last: { step: number; nonce: string } | undefined;

  constructor(
    secrets: readonly (string | Uint8Array)[],
    private readonly stepMs: number,
    private readonly toleranceMs: number,
  ) {
    this.secrets = secrets.map((s) => (typeof s === 'string' ? Buffer.from(s, 'utf8') : Buffer.from(s)));
  }

  private mac(secret: Buffer, step: number): Buffer {
    return createHmac('sha256', secret).update(`token-guard dpop nonce ${step}`).digest().subarray(0, 16);
  }

  private make(step: number): string {
    const head = Buffer.alloc(8);
    head.writeBigUInt64BE(BigInt(step));
    return head.toString('base64url') + this.mac(this.secrets[0] as Buffer, step).toString('base64url');
  }

  /** The nonce current at `nowMs` (made once per step). */
  current(nowMs: number): string {
    const step = Math.floor(nowMs / this.stepMs);
    if (this.last?.step !== step) this.last = { step, nonce: this.make(step) };
    return this.last.nonce;
  }

  /** `current` or `previous` for a nonce this server issued that is still accepted, else why it is not. */
  check(nonce: unknown, nowMs: number): 'current' | 'previous' | 'missing' | 'malformed' | 'expired' | 'future' | 'forged' {
    if (nonce === undefined) return 'missing';
    if (typeof nonce !== 'string' || nonce.length !== 33 || !/^[A-Za-z0-9_-]+$/.test(nonce)) return 'malformed';
    const stepBig = Buffer.from(nonce.slice(0, 11), 'base64url').readBigUInt64BE();
    if (stepBig > BigInt(Number.MAX_SAFE_INTEGER)) return 'malformed';
    const step = Number(stepBig);
    const now = Math.floor(nowMs / this.stepMs);
    // A peer whose clock runs ahead by up to the tolerance may already be in the next step.
    if (step > now && step * this.stepMs > nowMs + this.toleranceMs) return 'future';
    if (step < now - 1) return 'expired';
    const given = Buffer.from(nonce.slice(11), 'base64url');
    if (given.length !== 16 || !this.secrets.some((s) => timingSafeEqual(this.mac(s, step), given))) return 'forged';
    return step >= now ? 'current' : 'previous';
  }
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
  /** Server nonces, when the policy asks for them. */
  nonces: DpopNonces | undefined;
  /** `DPoP error="use_dpop_nonce", …`: the challenge of a proof without a valid nonce. */
  nonceChallenge: string;
  /** Proof keys imported once each, by algorithm and JWK thumbprint (RFC 7638). */
  keys: LRUCache<string, Promise<CryptoKey>>;
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
  /** The request target as received (path and query), which htu must name: not the path the rules read. */
  target: string;
  nowMs: number;
  toleranceS: number;
}

/** A verified proof: its replay key (one use per key) and the claim group of its proof key. */
export interface DpopProof {
  replayKey: string;
  /** Every proof of one key shares a group, so the store can cap how many live claims one key holds. */
  replayGroup: string;
  /** The current nonce, when the proof's nonce is no longer current: sent as `DPoP-Nonce` on the response. */
  freshNonce?: string;
}

/** A refused proof: why, and for a missing or stale nonce the nonce to retry with (`DPoP-Nonce`). */
export interface DpopFailure {
  failure: string;
  useNonce?: string;
}

const b64sha256 = (s: string) => createHash('sha256').update(s).digest('base64url');

// RFC 7638: the required members of each key type, in lexicographic order.
const THUMBPRINT_MEMBERS: Record<string, readonly string[]> = { EC: ['crv', 'kty', 'x', 'y'], OKP: ['crv', 'kty', 'x'], RSA: ['e', 'kty', 'n'] };

/** The RFC 7638 required members of a public JWK (in thumbprint order), or undefined when it is not one (private, symmetric, members missing). */
function publicMembers(jwk: unknown): Record<string, string> | undefined {
  if (!jwk || typeof jwk !== 'object' || Array.isArray(jwk)) return undefined;
  const k = jwk as Record<string, unknown>;
  const members = typeof k['kty'] === 'string' ? THUMBPRINT_MEMBERS[k['kty']] : undefined;
  if (!members || 'd' in k) return undefined;
  const required: Record<string, string> = {};
  for (const m of members) {
    const v = k[m];
    if (typeof v !== 'string') return undefined;
    required[m] = v;
  }
  return required;
}

/** The RFC 7638 SHA-256 thumbprint of a key's required members (from publicMembers). */
const thumbprintOf = (members: Record<string, string>): string => createHash('sha256').update(JSON.stringify(members)).digest('base64url');

/** The RFC 7638 SHA-256 thumbprint of a public JWK, or undefined when it is not one (private, symmetric, members missing). */
export function jwkThumbprint(jwk: unknown): string | undefined {
  const required = publicMembers(jwk);
  return required && thumbprintOf(required);
}

/** Verifies a DPoP proof; returns the verified proof or why it fails. Never throws. */
export async function verifyDpopProof(config: DpopConfig, r: DpopRequest): Promise<DpopProof | DpopFailure> {
  let payload: Record<string, unknown>;
  let jkt: string | undefined;
  try {
    const header = decodeProtectedHeader(r.proof);
    // The key is named by its thumbprint before any signature work: a proof from another key costs no import,
    // and a key seen before is not imported again.
    const members = publicMembers(header.jwk);
    if (members === undefined) return { failure: 'proof: jwk header is not a public key' };
    jkt = thumbprintOf(members);
    if (jkt !== r.jkt) return { failure: 'proof key is not the key the token is bound to' };
    const alg = typeof header.alg === 'string' ? header.alg : '';
    if (!config.algorithms.includes(alg)) return { failure: 'proof: ERR_JOSE_ALG_NOT_ALLOWED' };
    const cacheKey = `${alg}:${jkt}`;
    let key = config.keys.get(cacheKey);
    if (!key) {
      // Only the members the thumbprint covers are imported: the cache is keyed by it, so anything else a proof's
      // header adds (`key_ops: []`, `ext`, `use`) must not shape the key, or a proof from anyone holding the token
      // could cache an unusable key under its holder's thumbprint and lock the holder out.
      key = importJWK({ ...members } as JWK, alg) as Promise<CryptoKey>;
      key.catch(() => config.keys.delete(cacheKey));
      config.keys.set(cacheKey, key);
    }
    ({ payload } = await jwtVerify(r.proof, await key, {
      typ: 'dpop+jwt',
      algorithms: config.algorithms,
      requiredClaims: ['iat', 'jti', 'htm', 'htu'],
      maxTokenAge: config.maxAgeS,
      clockTolerance: r.toleranceS,
      currentDate: new Date(r.nowMs),
    }));
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
  // htu names the request's URI without query and fragment (RFC 9449 §4.3), compared after the syntax-based
  // normalisation URL parsing does (dot segments, scheme and host case, default port), not as the rules read the
  // path: `/orders/1/` and `//orders/1` are other URIs than `/orders/1`, and may be other routes.
  if (url.pathname !== requestPath(r.target)) return { failure: 'proof htu names another path' };
  if (ath !== b64sha256(r.accessToken)) return { failure: 'proof ath does not match the access token' };
  let freshNonce: string | undefined;
  if (config.nonces) {
    // Checked last: a client is only told to retry with a nonce when everything else about its proof is right.
    const state = config.nonces.check(payload['nonce'], r.nowMs);
    const current = config.nonces.current(r.nowMs);
    if (state !== 'current' && state !== 'previous') return { failure: `proof nonce ${state}`, useNonce: current };
    if (state === 'previous') freshNonce = current;
  }
  // jti is unique per key; hashed so a client cannot choose the size or shape of a store key.
  const proof: DpopProof = { replayKey: `dpop:${b64sha256(`${r.jkt}.${jti}`)}`, replayGroup: `dpop:${r.jkt}` };
  if (freshNonce !== undefined) proof.freshNonce = freshNonce;
  return proof;
}

/** The path of a request target (`/a/./b?x`) as URL parsing reads it (`/a/b`), or undefined when it reads as none. */
function requestPath(target: string): string | undefined {
  if (target.charCodeAt(0) !== 0x2f) return undefined;
  try {
    // Joined, not resolved: a target `//host/x` is a path here, where `new URL(target, base)` would read a host.
    return new URL(`http://h${target}`).pathname;
  } catch {
    return undefined;
  }
}

const DPOP_ALGORITHMS = JWT_ALGORITHMS.filter((a) => !a.startsWith('HS'));

const secretSchema = z
  .union([z.string(), z.instanceof(Uint8Array)], { error: 'expected a string or a Uint8Array' })
  .refine((v) => (typeof v === 'string' ? Buffer.byteLength(v) : v.byteLength) >= 32, 'expected at least 32 bytes of random secret');

/** The policy's `dpop`. `origins` is checked with the rest of the policy (it needs `jwt` too). */
export const dpopSchema = z.strictObject({
  algorithms: z
    .array(z.enum(DPOP_ALGORITHMS as [string, ...string[]], { error: `expected one of ${DPOP_ALGORITHMS.join(', ')}` }))
    .min(1)
    .optional(),
  maxAge: positiveDurationSchema.optional(),
  required: z.boolean().optional(),
  maxClaimsPerKey: z.number().int().min(1).max(1_000_000).optional(),
  nonce: z
    .strictObject({
      secret: z.union([secretSchema, z.array(secretSchema).min(1)]),
      step: positiveDurationSchema.optional(),
    })
    .optional(),
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

/** Compiles the policy's `dpop`. `toleranceS` is the policy's clock tolerance (nonces from a peer a little ahead pass). */
export function compileDpop(d: DpopPolicy, maxTokenBytes = 8192, toleranceS = 5): DpopConfig {
  const algorithms = [...(d.algorithms ?? ['ES256', 'RS256', 'PS256', 'EdDSA'])];
  const n = d.nonce;
  const secrets = n === undefined ? [] : typeof n.secret === 'string' || n.secret instanceof Uint8Array ? [n.secret] : [...(n.secret as readonly (string | Uint8Array)[])];
  return {
    nonces: n === undefined ? undefined : new DpopNonces(secrets, parseDuration(n.step ?? '5m') as number, toleranceS * 1000),
    nonceChallenge: `DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof", algs="${algorithms.join(' ')}"`,
    keys: new LRUCache({ max: 1000 }),
    algorithms,
    maxAgeS: (parseDuration(d.maxAge ?? '60s') as number) / 1000,
    required: d.required ?? false,
    maxClaimsPerKey: d.maxClaimsPerKey ?? 1000,
    origins: new Set(d.origins),
    challenge: `DPoP algs="${algorithms.join(' ')}"`,
    maxTokenBytes,
  };
}
