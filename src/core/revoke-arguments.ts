// The arguments of guard.revoke and guard.revokeSubject, checked before anything reaches the store: times, the
// reason and actor that end up in logs and events, an id that is really a credential, and a string no store keeps
// as given (a lone UTF-16 surrogate).
import { UsageError } from '../leaf/errors.js';
import { isRevocationReason, type RevocationReason } from '../leaf/lifecycle.js';
import { hasLoneSurrogate } from '../leaf/well-formed.js';
import { isApiKeyShaped } from '../tokens/api-key.js';
import { isJwtShaped } from '../tokens/introspection.js';

/** Epoch milliseconds of a Date or a number (`fallback` when undefined). Throws UsageError for an invalid one. */
export function toMs(value: Date | number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const ms = typeof value === 'number' ? value : value.getTime();
  if (!Number.isFinite(ms)) throw new UsageError('expected a valid Date or epoch milliseconds', { help: 'pass a Date or a finite number of milliseconds since the epoch' });
  return ms;
}

/** The reason and actor of a guard revocation, checked: both end up in logs and events. */
export function checkRevokeReason(where: string, options: { reason?: unknown; actor?: unknown }): { reason: RevocationReason | undefined; actor: string | undefined } {
  const { reason, actor } = options;
  if (reason !== undefined && !isRevocationReason(reason)) {
    throw new UsageError(`${where}: reason must be a lower-case word (a-z, 0-9, _ . -, at most 64 characters), e.g. 'compromised'`);
  }
  checkActor(where, actor);
  return { reason, actor };
}

/**
 * The `actor` a call's lifecycle event names: a non-empty, well-formed string, or undefined. Checked before anything is
 * written, not by the store's event check, which runs after the change is made.
 */
export function checkActor(where: string, actor: unknown): asserts actor is string | undefined {
  if (actor === undefined) return;
  if (typeof actor !== 'string' || actor === '') throw new UsageError(`${where}: actor must be a non-empty string`);
  if (hasLoneSurrogate(actor)) throw illFormed(where, 'actor');
}

// PostgreSQL and Redis keep a lone surrogate as U+FFFD: `tok-\uD800` would also revoke `tok-\uDC00` and `tok-\uFFFD`
// there, not in MemoryStore, and PostgreSQL's jsonb refuses it in the lifecycle event after the revocation is written.
/** The UsageError for an argument holding a lone surrogate (one that would be a store key or an event's field). */
export function illFormed(where: string, what: string): UsageError {
  return new UsageError(`${where}: ${what} is not well-formed Unicode (it holds a lone UTF-16 surrogate)`, {
    help: 'pass the whole string: a lone surrogate is half of an emoji or other astral character, cut in the middle',
  });
}

/**
 * The id `guard.revoke(token)` files its revocation under, checked before anything is written: a UsageError for an
 * empty one, a raw credential, or one (or a TokenInfo's subject, which its event names) that is not well-formed.
 */
export function revokedTokenId(token: unknown): string {
  const info = typeof token === 'object' && token !== null ? (token as { id?: unknown; subject?: unknown }) : undefined;
  const tokenId = typeof token === 'string' ? token : info?.id;
  if (typeof tokenId !== 'string' || tokenId === '')
    throw new UsageError('revoke: expected a token id or a verified token', { help: 'pass req.auth.token, or the token id (JWT jti, API key record id)' });
  // A raw credential is never an id: filed under it, the revocation would refuse nothing (and put a secret in the store).
  if (typeof token === 'string' && isRawCredential(token))
    throw new UsageError('revoke: got a raw token, not its id (not shown)', {
      help: "give the token's id (a JWT's jti, an API key's record id key_…), never the token; in an app, pass req.auth.token",
    });
  if (hasLoneSurrogate(tokenId)) throw illFormed('revoke', 'the token id');
  if (typeof info?.subject === 'string' && hasLoneSurrogate(info.subject)) throw illFormed('revoke', "the token's subject");
  return tokenId;
}

/** Throws a UsageError unless `subject` is one `guard.revokeSubject` can revoke: non-empty, no credential, well-formed. */
export function checkRevokedSubject(subject: unknown): asserts subject is string {
  if (typeof subject !== 'string' || subject === '')
    throw new UsageError('revokeSubject: expected a subject', { help: 'pass the non-empty subject (JWT sub, API key record subject)' });
  // As for revoke: a credential is no subject, and filed as one it would put a secret in the store and its events.
  if (isRawCredential(subject))
    throw new UsageError('revokeSubject: got a raw token, not a subject (not shown)', { help: "give the subject (a JWT's sub, an API key record's subject), never a token" });
  if (hasLoneSurrogate(subject)) throw illFormed('revokeSubject', 'the subject');
}

/** A compact JWT, or an API key of any prefix (not only this policy's). */
const isCredential = (s: string): boolean => (s.startsWith('eyJ') && isJwtShaped(s)) || isApiKeyShaped(s);

/** The longest credential looked for inside a longer string (a bare one of any length is found by `isCredential`). */
const MAX_INNER = 16 * 1024;

/** A base64url character or a dot: what a compact JWT, and an API key (`[A-Za-z0-9_]`), are made of. */
function isTokenChar(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f || c === 0x2d || c === 0x2e;
}

/** Whether a run of token characters holds a credential: a JWT from an `eyJ` on, or a key between dots and dashes. */
function runHolds(run: string): boolean {
  for (let at = run.indexOf('eyJ'); at !== -1; at = run.indexOf('eyJ', at + 1)) {
    const parts = run.slice(at).split('.');
    if ((parts.length >= 3 && isJwtShaped(parts.slice(0, 3).join('.'))) || (parts.length >= 5 && isJwtShaped(parts.slice(0, 5).join('.')))) return true;
  }
  for (const word of run.split(/[.-]/)) {
    // From its first letter: a key's prefix starts with one (`20tg_…` is `%20tg_…` with the `%` cut off).
    const key = word.replace(/^[0-9_]+/, '');
    if (key.length >= 33 && isApiKeyShaped(key)) return true;
  }
  return false;
}

/** Whether `s` is a credential, or holds one between other characters (a scheme, quotes, `&`, a trailing period). */
function holdsCredential(s: string): boolean {
  if (isCredential(s)) return true;
  // A hand-written scan, not a regular expression: one over a 20 MB run would overflow its backtracking stack.
  for (let i = 0; i < s.length; ) {
    if (!isTokenChar(s.charCodeAt(i))) {
      i++;
      continue;
    }
    let j = i + 1;
    while (j < s.length && isTokenChar(s.charCodeAt(j))) j++;
    if (j - i >= 20 && j - i <= MAX_INNER && runHolds(s.slice(i, j))) return true;
    i = j;
  }
  return false;
}

/**
 * Whether `id` is a credential rather than an id: one alone, or one as it is pasted (`Bearer eyJ…`, quoted, with a
 * line break, `Authorization: Bearer …`, in a URL's query, percent-encoded). Filed under such a string a revocation
 * refuses nothing, and puts the secret in the store, its keys and its events. Linear in the length of `id`, and a
 * credential inside a run of more than 16 KB of token characters is not looked for.
 */
export function isRawCredential(id: string): boolean {
  if (holdsCredential(id)) return true;
  if (!id.includes('%')) return false;
  let decoded: string;
  try {
    decoded = decodeURIComponent(id);
  } catch {
    return false;
  }
  return decoded !== id && holdsCredential(decoded);
}

/** Options of `guard.revoke`. */
export interface GuardRevokeOptions {
  /** Keep the revocation until then. Default: the token's own expiry (a TokenInfo's), else until deleted. */
  expiresAt?: Date | number;
  /** The time of the revocation. Default: now. */
  now?: Date;
  /** Why (`compromised`, `offboarded`, …): shown in later decisions' `detail` and in the lifecycle event. Default: none. */
  reason?: RevocationReason;
  /** Who revokes, for the lifecycle event. Default: none. */
  actor?: string;
}

/** Options of `guard.revokeSubject`. */
export interface GuardRevokeSubjectOptions {
  /** Tokens issued before this are revoked. Default: now. */
  before?: Date | number;
  /**
   * Only this issuer's user of that subject (a token `iss` the guard accepts), where the policy has several issuers.
   * Default: every issuer's (and API keys' and introspected tokens' of that subject).
   */
  issuer?: string;
  /** Keep the revocation until then (the policy's clock tolerance is added, as the verifier allows). Default: until deleted. */
  expiresAt?: Date | number;
  /** The time of the revocation. Default: now. */
  now?: Date;
  /** Why (`offboarded`, `compromised`, …): shown in later decisions' `detail` and in the lifecycle event. Default: none. */
  reason?: RevocationReason;
  /** Who revokes, for the lifecycle event. Default: none. */
  actor?: string;
}
