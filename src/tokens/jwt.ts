// JWT access tokens: verified against allow-listed algorithms and keys imported once (jose's key sets choose the key,
// node:crypto checks the signature), remembered in a bounded cache so a token seen again skips signature verification.
import { BoundedMap, tailHash } from '../leaf/bounded-map.js';
import { IssuerVerifier, JWS_RE, type CacheEntry } from './issuer-verifier.js';
import { isBearerHeaderOf } from './extract.js';
import type { JwtConfig, JwtFailure, VerifiedJwt } from './jwt-claims.js';
import type { AuthorizationServerMetadata } from './jwks.js';
import type { CachedDocument } from './remote.js';

export { JWT_ALGORITHMS, type JwtAlgorithm } from '../leaf/algorithms.js';
export { DEFAULT_TYPS, MAX_CLAIM_TIME_S, MIN_SECRET_BYTES, normalizeTyp, scopesOf, type JwtConfig, type JwtFailure, type VerifiedJwt } from './jwt-claims.js';

/** The unverified `iss` of a compact JWS's payload, or undefined when it has none that is a string. */
function unverifiedIssuer(token: string, first: number, second: number): string | undefined | null {
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(token.slice(first + 1, second), 'base64url').toString('utf8'));
  } catch {
    return null;
  }
  const iss = payload && typeof payload === 'object' ? (payload as { iss?: unknown }).iss : undefined;
  return typeof iss === 'string' ? iss : undefined;
}

/**
 * Verifies JWT access tokens for one policy: one issuer configuration, or several chosen by the token's `iss`
 * (read before any signature check, so a token is only ever checked with its own issuer's keys).
 */
export class JwtVerifier {
  private readonly verifiers: readonly IssuerVerifier[];
  /** Issuer → configuration, with several configurations; undefined with one (it verifies every token). */
  private readonly byIssuer: ReadonlyMap<string, IssuerVerifier> | undefined;
  // Filed under the token's tail (its signature): hashing a whole fresh token string was a quarter of a cached decision.
  private readonly cache: BoundedMap<string, CacheEntry>;
  /** Verifications under way, so concurrent first sightings of a token verify it once. Bounded by concurrency. */
  private readonly inFlight = new Map<string, Promise<VerifiedJwt | JwtFailure>>();

  constructor(configs: JwtConfig | readonly JwtConfig[]) {
    const list = Array.isArray(configs) ? (configs as readonly JwtConfig[]) : [configs as JwtConfig];
    this.verifiers = list.map((c) => new IssuerVerifier(c));
    if (this.verifiers.length > 1) {
      const map = new Map<string, IssuerVerifier>();
      for (const v of this.verifiers) for (const iss of typeof v.config.issuer === 'string' ? [v.config.issuer] : v.config.issuer) map.set(iss, v);
      this.byIssuer = map;
    }
    this.cache = new BoundedMap(Math.max(...list.map((c) => c.cacheSize)), { index: tailHash });
  }

  /** Whether there are several issuer configurations (token ids are then prefixed by their name). */
  get several(): boolean {
    return this.verifiers.length > 1;
  }

  /** Whether a token has a cached verification (it then passed the token syntax check). Bound: pass it as is. */
  readonly knows = (token: string): boolean => this.cache.has(token);

  /** Drops every cached verification (after a key rotation, say). */
  clearCache(): void {
    this.cache.clear();
  }

  /**
   * The id a verified JWT with this `jti` from `issuer` gets (`<name>:<jti>` with several configurations, the bare
   * `jti` with one), or undefined when no configuration accepts that `iss`: what revoking such a token must name.
   */
  tokenIdOf(jti: string, issuer: string): string | undefined {
    if (typeof jti !== 'string' || jti === '') return undefined;
    const config = this.configOf(issuer);
    return config === undefined ? undefined : config.idPrefix + jti;
  }

  /** A verified token's `subjectKey` for `sub` from `issuer` (the bare `sub` with one configuration), or undefined when none accepts that `iss`. */
  subjectIdOf(sub: string, issuer: string): string | undefined {
    if (typeof sub !== 'string' || sub === '') return undefined;
    const config = this.configOf(issuer);
    return config === undefined ? undefined : (config.subjectPrefix ?? '') + sub;
  }

  /** The configuration that accepts `issuer`, if any. */
  private configOf(issuer: string): JwtConfig | undefined {
    if (typeof issuer !== 'string') return undefined;
    const v = this.byIssuer ? this.byIssuer.get(issuer) : this.verifiers[0];
    const issuers = v === undefined ? [] : typeof v.config.issuer === 'string' ? [v.config.issuer] : v.config.issuer;
    return v !== undefined && issuers.includes(issuer) ? v.config : undefined;
  }

  /**
   * The discovered metadata of an issuer (`jwt.discovery`): cached and refreshed with its JWK Set, so an
   * introspection client can find `introspection_endpoint` without a fetch of its own. Undefined for an
   * issuer configured without discovery.
   */
  issuerMetadata(issuer: string): CachedDocument<AuthorizationServerMetadata> | undefined {
    const v = this.byIssuer ? this.byIssuer.get(issuer) : this.verifiers[0];
    return v?.config.issuer === issuer ? v.remote?.metadata : undefined;
  }

  /**
   * The cached verification of a token seen before, re-checked against `nowMs`, or undefined when the
   * token is not cached. Synchronous so the repeated-token path costs no promise.
   */
  lookup(token: string, nowMs: number): VerifiedJwt | JwtFailure | undefined {
    return checked(this.cache.get(token, nowMs), nowMs);
  }

  /**
   * `lookup` by the whole Authorization header: the cached verification of the token a header equal to `header`
   * carried as `Bearer <token>` when the token was verified. Such a header reads as that token again, so this is
   * `lookup(token)` without cutting the token out first: the header is compared whole, two flat strings V8 compares
   * in its builtin, where a token cut from a header is compared in its runtime. Undefined for any other header (a
   * token first seen under another spelling of the scheme included); the caller then reads the token as usual.
   */
  lookupHeader(header: string, nowMs: number): VerifiedJwt | JwtFailure | undefined {
    return checked(this.cache.find(header, carriedIn, nowMs), nowMs);
  }

  /** Verifies a compact JWS at time `nowMs`: synchronously unless a key must be fetched first. Never throws. */
  verify(token: string, nowMs: number, header?: string): VerifiedJwt | JwtFailure | Promise<VerifiedJwt | JwtFailure> {
    const cached = this.lookup(token, nowMs);
    if (cached) return cached;
    // A burst of requests with one new token shares one signature verification. Only requests at the same
    // instant share it: the outcome depends on the time (exp, nbf, maxTokenAge). A verification that needs no key
    // fetch ends before the next request is read (its token is then cached), so only the others are in flight.
    const key = this.inFlight.size > 0 ? `${nowMs}\u0000${token}` : undefined;
    const sharing = key === undefined ? undefined : this.inFlight.get(key);
    if (sharing) return sharing;
    const outcome = this.verifyUncached(token, nowMs, header);
    if (!(outcome instanceof Promise)) return outcome;
    const k = key ?? `${nowMs}\u0000${token}`;
    const pending = outcome.finally(() => this.inFlight.delete(k));
    this.inFlight.set(k, pending);
    return pending;
  }

  private verifyUncached(token: string, nowMs: number, header: string | undefined): VerifiedJwt | JwtFailure | Promise<VerifiedJwt | JwtFailure> {
    const first = token.indexOf('.');
    const second = token.indexOf('.', first + 1);
    if (first === -1 || second === -1) return { reason: 'token.malformed', detail: 'not a compact JWS' };
    if (token.indexOf('.', second + 1) !== -1) {
      // Five segments is a JWE: refused as is, nothing is decrypted.
      return { reason: 'token.malformed', detail: 'encrypted (JWE) or otherwise non-JWS token' };
    }
    if (!JWS_RE.test(token)) return { reason: 'token.malformed', detail: 'not base64url' };
    let by = this.verifiers[0] as IssuerVerifier;
    if (this.byIssuer) {
      // Chosen by the claimed issuer, never by trying each issuer's keys: that would let one tenant's key
      // vouch for a token naming another, and multiply the work an unknown token costs.
      const iss = unverifiedIssuer(token, first, second);
      if (iss === null) return { reason: 'token.malformed', detail: 'payload is not JSON' };
      const chosen = iss === undefined ? undefined : this.byIssuer.get(iss);
      if (!chosen) return { reason: 'token.invalid', detail: iss === undefined ? 'iss is missing' : 'iss is not an accepted issuer' };
      by = chosen;
    }
    const entry = by.verify(token, nowMs, first, second);
    return entry instanceof Promise ? entry.then((e) => this.remember(token, nowMs, by, e, header)) : this.remember(token, nowMs, by, entry, header);
  }

  /** Caches a successful verification (with `header`, when it is the token's `Bearer` header); passes the outcome on either way. */
  private remember(token: string, nowMs: number, by: IssuerVerifier, entry: VerifiedJwt | JwtFailure, header: string | undefined): VerifiedJwt | JwtFailure {
    if ('reason' in entry) return entry;
    // Remembered until the key set's freshness or the cap ends, on the requests' clock (a verification already
    // past its exp is not remembered at all); past exp, lookup's time checks refuse the entry themselves. Nor past
    // the instant the remote key set stops being usable (cacheMaxAge + maxStale after its fetch): while the provider
    // is down, a token first seen late must then get 503 like a new one. That instant is on the wall clock the set
    // is fetched by; what is left of it now is carried over to the requests' clock, so lookup stays one comparison.
    // (An HMAC token of an issuer that also has a JWK Set gets the same end: at worst it is verified again.)
    const keysUntilMs = by.remote?.usableUntilMs ?? Number.POSITIVE_INFINITY;
    // -Infinity: no set was ever fetched, so none verified this token (an HMAC one).
    const keysLeftMs = keysUntilMs === Number.NEGATIVE_INFINITY ? Number.POSITIVE_INFINITY : keysUntilMs - Date.now();
    const servedMs = Math.min(entry.exp === undefined ? 300_000 : Infinity, by.maxCacheMs, keysLeftMs);
    const ttl = Math.floor(Math.min(entry.exp === undefined ? Infinity : entry.exp * 1000 - nowMs, servedMs));
    // Kept past exp (until freshness ends, or the size bound pushes it out): a replayed expired token is then
    // refused with token.expired without another signature check.
    if (ttl >= 1) this.cache.set(token, { verified: entry, by, untilMs: nowMs + servedMs, header: bearerHeaderOf(token, header) }, nowMs + servedMs);
    return entry;
  }
}

/** A cached verification, re-checked against `nowMs`; undefined for none. */
function checked(hit: CacheEntry | undefined, nowMs: number): VerifiedJwt | JwtFailure | undefined {
  if (!hit) return undefined;
  // Expired by the request's clock, at the instant the cache drops the entry too: `remember` ended it no later than
  // the key set it was checked against stays usable (its freshness, or with the provider down its maxStale).
  if (nowMs >= hit.untilMs) return undefined;
  const cached = hit.verified;
  return hit.by.checkTimes(cached, Math.floor(nowMs / 1000)) ?? cached;
}

/** For `lookupHeader`: whether `header` is, character for character, the header the entry's token came in. */
const carriedIn = (entry: CacheEntry, header: string): boolean => entry.header === header;

/**
 * `header` when it is exactly `Bearer <token>` (the scheme in any letter case, one SP), else undefined. Checked here,
 * once per verified token, rather than taken on the caller's word: `lookupHeader` hands out the token's verification
 * for any header equal to this one, so this one must read as nothing but this token.
 */
function bearerHeaderOf(token: string, header: string | undefined): string | undefined {
  return header !== undefined && isBearerHeaderOf(header, token) ? header : undefined;
}
