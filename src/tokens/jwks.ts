// An issuer's signing keys from the network: its authorization server metadata (RFC 8414 / OpenID Connect
// Discovery) when asked to discover them, and its JWK Set, each cached and kept through outages up to maxStale.
import { droppedPromise } from '../leaf/callbacks.js';
import { createLocalJWKSet, errors as joseErrors, type FlattenedJWSInput, type JSONWebKeySet, type JWK, type JWSHeaderParameters, type JWTVerifyGetKey } from 'jose';
import { isLoopbackOrHttps } from '../leaf/urls.js';
import { CachedDocument, fetchJson, HttpStatusError, IdpUnavailable, type FetchLimits } from './remote.js';

/** Authorization server metadata (RFC 8414 §2), as far as token-guard reads it; other members are kept as given. */
export interface AuthorizationServerMetadata {
  issuer: string;
  jwks_uri?: string;
  introspection_endpoint?: string;
  [member: string]: unknown;
}

/** Remote key options after policy validation (durations in ms). */
/** The limits of a JWK Set fetched with no policy of its own (`jwt.jwks`'s defaults, and a 5 s timeout). */
export const DEFAULT_REMOTE_KEYS = Object.freeze({ cooldownMs: 30_000, cacheMaxAgeMs: 600_000, maxStaleMs: 3_600_000, timeoutMs: 5000, maxBytes: 262_144, maxKeys: 100 });

export interface RemoteKeysConfig {
  /** The JWK Set URL given in the policy; absent with discovery. */
  jwksUri?: string;
  /** The issuer whose metadata names the JWK Set (discovery). */
  discoverIssuer?: string;
  cooldownMs: number;
  cacheMaxAgeMs: number;
  maxStaleMs: number;
  timeoutMs: number;
  /** Largest metadata or JWK Set body read, in bytes. */
  maxBytes: number;
  /** Most keys taken from a JWK Set; a larger set is refused as a whole. */
  maxKeys: number;
  /** Told of each JWK Set fetch and whether it failed (telemetry). */
  onFetch?: (failed: boolean) => void;
}

/**
 * The metadata URLs of an issuer, in the order tried: RFC 8414 §3.1 inserts the well-known segment before
 * the issuer's path, OpenID Connect Discovery §4 appends it.
 */
export function metadataUrls(issuer: string): string[] {
  const url = new URL(issuer);
  const path = url.pathname.replace(/\/$/, '');
  return [`${url.origin}/.well-known/oauth-authorization-server${path}`, `${url.origin}${path}/.well-known/openid-configuration`];
}

/**
 * Fetches and checks an issuer's metadata: its `issuer` must equal the configured one exactly (RFC 8414 §3.3,
 * OpenID Connect Discovery §4.3), or a server could hand out another issuer's keys. The RFC 8414 location is
 * tried first and the OpenID Connect one after a 4xx answer.
 */
export async function fetchIssuerMetadata(issuer: string, limits: FetchLimits): Promise<AuthorizationServerMetadata> {
  const [oauth, oidc] = metadataUrls(issuer) as [string, string];
  let doc: unknown;
  try {
    doc = await fetchJson(oauth, limits);
  } catch (err) {
    if (!(err instanceof HttpStatusError) || err.status < 400 || err.status >= 500) throw err;
    doc = await fetchJson(oidc, limits);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new Error('metadata is not a JSON object');
  const m = doc as Record<string, unknown>;
  if (m['issuer'] !== issuer) throw new Error(`metadata issuer ${JSON.stringify(String(m['issuer']).slice(0, 200))} is not the configured issuer`);
  for (const member of ['jwks_uri', 'introspection_endpoint'] as const) {
    const v = m[member];
    if (v !== undefined && (typeof v !== 'string' || !isLoopbackOrHttps(v))) throw new Error(`metadata ${member} is not an https (or loopback http) URL`);
  }
  return Object.freeze({ ...m }) as AuthorizationServerMetadata;
}

/** A JWK Set body checked and trimmed to the public signing keys: private and symmetric keys are dropped. */
function toKeySet(doc: unknown, maxKeys: number): JSONWebKeySet {
  const keys = doc && typeof doc === 'object' ? (doc as { keys?: unknown }).keys : undefined;
  if (!Array.isArray(keys)) throw new Error('not a JWK Set');
  if (keys.length > maxKeys) throw new Error(`JWK Set holds ${keys.length} keys, over the limit of ${maxKeys}`);
  const usable = keys.filter(
    (k): k is JWK =>
      !!k &&
      typeof k === 'object' &&
      typeof (k as JWK).kty === 'string' &&
      (k as JWK).kty !== 'oct' &&
      !('d' in k) &&
      ((k as JWK).use === undefined || (k as JWK).use === 'sig'),
  );
  return { keys: usable };
}

/** Tells a fetch listener (telemetry) how a JWK Set fetch went; a listener must never break key loading. */
function tell(listener: ((failed: boolean) => void) | undefined, failed: boolean): void {
  try {
    droppedPromise(listener?.(failed));
  } catch {
    // see above
  }
}

/** A fetched JWK Set and jose's key chooser over it. */
interface KeySet {
  jwks: JSONWebKeySet;
  getKey: JWTVerifyGetKey;
}

/** The signing keys of one issuer, from a JWK Set URL given or discovered. */
export class RemoteKeys {
  /** The issuer's metadata (discovery only). */
  readonly metadata: CachedDocument<AuthorizationServerMetadata> | undefined;
  private readonly set: CachedDocument<KeySet>;

  constructor(private readonly config: RemoteKeysConfig) {
    const limits = { timeoutMs: config.timeoutMs, maxBytes: config.maxBytes };
    const freshness = { cacheMaxAgeMs: config.cacheMaxAgeMs, maxStaleMs: config.maxStaleMs };
    const issuer = config.discoverIssuer;
    this.metadata = issuer === undefined ? undefined : new CachedDocument('issuer metadata', () => fetchIssuerMetadata(issuer, limits), freshness);
    this.set = new CachedDocument(
      'JWK Set',
      async () => {
        try {
          const uri = await this.jwksUri();
          const jwks = toKeySet(await fetchJson(uri, limits), config.maxKeys);
          tell(config.onFetch, false);
          return { jwks, getKey: createLocalJWKSet(jwks) };
        } catch (err) {
          tell(config.onFetch, true);
          throw err;
        }
      },
      freshness,
    );
  }

  private async jwksUri(): Promise<string> {
    if (this.config.jwksUri !== undefined) return this.config.jwksUri;
    const meta = await (this.metadata as CachedDocument<AuthorizationServerMetadata>).current();
    if (meta.jwks_uri === undefined) throw new Error('metadata names no jwks_uri');
    return meta.jwks_uri;
  }

  /** The last good JWK Set, whatever its age. */
  get known(): JSONWebKeySet | undefined {
    return this.set.known?.jwks;
  }

  /**
   * Wall-clock instant (ms) from which the set last fetched stops verifying unless it is refetched (cacheMaxAge +
   * maxStale after its fetch). A key handed out by `getKey` came from this set or an older one, never from a later.
   */
  get usableUntilMs(): number {
    return this.set.usableUntilMs;
  }

  /**
   * The key for a token's header. An unknown `kid` refetches the set at most once per cooldown. Throws
   * IdpUnavailable when the keys cannot be had (never fetched, or stale past maxStale, or an unknown kid
   * while the provider is failing), and jose's errors for a token no key fits.
   */
  readonly getKey = async (header: JWSHeaderParameters, input: FlattenedJWSInput): Promise<Awaited<ReturnType<JWTVerifyGetKey>>> => {
    const used = await this.set.current();
    try {
      return await used.getKey(header as Parameters<JWTVerifyGetKey>[0], input);
    } catch (err) {
      if (!(err instanceof joseErrors.JWKSNoMatchingKey)) throw err;
      const newer = await this.newerSet(used);
      // Tried once more, against the newest set: its answer stands, whatever it is.
      if (newer !== undefined) return newer.getKey(header as Parameters<JWTVerifyGetKey>[0], input);
      // The key may well exist: while the provider fails, that is an outage, not a bad token.
      if (this.set.failures > 0)
        throw new IdpUnavailable(`no known key has kid ${JSON.stringify(String(header.kid ?? '').slice(0, 64))} and the JWK Set cannot be refetched: ${this.set.lastError}`);
      throw err;
    }
  };

  /**
   * A set fetched after `used`, for a token none of `used`'s keys fits, or undefined when there is none to be had. A
   * refetch under way (most likely started by the first token signed with a newly rotated key) is waited for rather
   * than answered with the set it replaces; only without one, and once per cooldown, is a refetch started here. So a
   * burst of tokens with made-up kids still costs one fetch: they all wait for it, then find no key in it.
   */
  private async newerSet(used: KeySet): Promise<KeySet | undefined> {
    await this.set.settled();
    let latest = this.set.known;
    if (latest === used && Date.now() - this.set.lastAttemptMs >= this.config.cooldownMs) latest = await this.set.current(true);
    return latest === used ? undefined : latest;
  }
}
