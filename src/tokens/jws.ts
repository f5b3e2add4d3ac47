// JWS signatures (RFC 7515, RFC 7518 §3) checked with node:crypto on the request's thread, and the segments of a
// compact JWS read as jose reads them. The JWT verifier (jwt.ts) decides what to check; this file only checks.
import { constants, createHmac, KeyObject, timingSafeEqual, verify as verifySignature } from 'node:crypto';

/**
 * How each allowed algorithm is checked with node:crypto, and which keys fit it (RFC 7518 §3): the key's type, curve
 * and, for RSA, at least 2048 bits (as jose requires). Synchronous and on this thread: WebCrypto's verify, which
 * jose's jwtVerify calls, costs a thread-pool round trip and most of a first-seen token's CPU time.
 */
export interface SignatureAlgorithm {
  /** Digest name for node:crypto; null for EdDSA (the algorithm hashes itself). */
  hash: string | null;
  kind: 'hmac' | 'rsa' | 'pss' | 'ec' | 'ed';
  /** OpenSSL curve name (ES*). */
  curve?: string;
  /** PSS salt length in bytes: the digest's size (RFC 7518 §3.5). */
  saltLength?: number;
}
export const SIGNATURE_ALGORITHMS: Readonly<Record<string, SignatureAlgorithm>> = {
  HS256: { hash: 'sha256', kind: 'hmac' },
  HS384: { hash: 'sha384', kind: 'hmac' },
  HS512: { hash: 'sha512', kind: 'hmac' },
  RS256: { hash: 'sha256', kind: 'rsa' },
  RS384: { hash: 'sha384', kind: 'rsa' },
  RS512: { hash: 'sha512', kind: 'rsa' },
  PS256: { hash: 'sha256', kind: 'pss', saltLength: 32 },
  PS384: { hash: 'sha384', kind: 'pss', saltLength: 48 },
  PS512: { hash: 'sha512', kind: 'pss', saltLength: 64 },
  ES256: { hash: 'sha256', kind: 'ec', curve: 'prime256v1' },
  ES384: { hash: 'sha384', kind: 'ec', curve: 'secp384r1' },
  ES512: { hash: 'sha512', kind: 'ec', curve: 'secp521r1' },
  EdDSA: { hash: null, kind: 'ed' },
  Ed25519: { hash: null, kind: 'ed' },
};

/** Whether a key may check signatures of an algorithm (jose's key sets already choose by type; checked again here). */
export function keyFits(a: SignatureAlgorithm, key: KeyObject): boolean {
  if (a.kind === 'hmac') return key.type === 'secret';
  if (key.type !== 'public') return false;
  const type = key.asymmetricKeyType;
  if (a.kind === 'ed') return type === 'ed25519';
  const details = key.asymmetricKeyDetails;
  if (a.kind === 'ec') return type === 'ec' && details?.namedCurve === a.curve;
  return (type === 'rsa' || (a.kind === 'pss' && type === 'rsa-pss')) && (details?.modulusLength ?? 0) >= 2048;
}

/** A key chosen for a token that cannot check its algorithm (an RSA key under 2048 bits in a remote JWK Set, say). */
export class KeyDoesNotFit extends Error {}

/** A key ready for node:crypto, with the algorithm it was checked to fit. */
export interface VerifyKey {
  key: KeyObject;
  alg: string;
  /**
   * RSA: the signature's exact length, the modulus's (RFC 8017 §8.1.2, §8.2.2 step 1). OpenSSL's PSS verify takes a
   * signature whose leading zero octets were dropped, a second spelling of the same token.
   */
  signatureBytes?: number;
}

/** The node:crypto form of each CryptoKey jose's key sets hand out, made once per key and algorithm. */
const verifyKeys = new WeakMap<CryptoKey, VerifyKey>();

/** `key` ready to check `alg` signatures, or undefined when it does not fit `alg`. */
export function verifyKeyOf(key: CryptoKey, alg: string): VerifyKey | undefined {
  const a = SIGNATURE_ALGORITHMS[alg];
  if (a === undefined) return undefined;
  const known = verifyKeys.get(key);
  if (known?.alg === alg) return known;
  const object = KeyObject.from(key);
  if (!keyFits(a, object)) return undefined;
  const made: VerifyKey = { key: object, alg };
  if (a.kind === 'rsa' || a.kind === 'pss') made.signatureBytes = Math.ceil((object.asymmetricKeyDetails?.modulusLength ?? 0) / 8);
  verifyKeys.set(key, made);
  return made;
}

/** Whether `signature` is a valid signature by `k` over the ASCII `input`. Never throws. */
export function signatureHolds(k: VerifyKey, input: string, signature: Buffer): boolean {
  const a = SIGNATURE_ALGORITHMS[k.alg] as SignatureAlgorithm;
  try {
    if (a.kind === 'hmac') {
      const mac = createHmac(a.hash as string, k.key)
        .update(input, 'latin1')
        .digest();
      return mac.length === signature.length && timingSafeEqual(mac, signature);
    }
    if (k.signatureBytes !== undefined && signature.length !== k.signatureBytes) return false;
    const data = Buffer.from(input, 'latin1');
    if (a.kind === 'ec') return verifySignature(a.hash, data, { key: k.key, dsaEncoding: 'ieee-p1363' }, signature);
    if (a.kind === 'pss') return verifySignature(a.hash, data, { key: k.key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: a.saltLength as number }, signature);
    return verifySignature(a.hash, data, k.key, signature);
  } catch {
    return false;
  }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A base64url segment's bytes, or undefined when it cannot be one (its characters were checked before). A length
 * of 4n+1 is refused, as jose's decoder (atob) refuses it: Buffer would quietly drop the last character.
 */
export function segmentBytes(token: string, start: number, end: number): Buffer | undefined {
  return (end - start) % 4 === 1 ? undefined : Buffer.from(token.slice(start, end), 'base64url');
}

/** A segment's JSON, when it is a plain object (as jose reads header and claims set). */
export function jsonObject(token: string, start: number, end: number): Record<string, unknown> | undefined {
  const bytes = segmentBytes(token, start, end);
  if (bytes === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(strictUtf8.decode(bytes));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  return value as Record<string, unknown>;
}
