// Documents an identity provider publishes (metadata, JWK Sets): fetched with a timeout, a size cap and no
// redirects, cached with a bounded staleness while the provider is down, and refetched with backoff.
import { UsageError } from '../leaf/errors.js';
import { isLoopbackOrHttps } from '../leaf/urls.js';

/** The provider could not be reached or answered something unusable; verification cannot go on. */
export class IdpUnavailable extends Error {
  override readonly name = 'IdpUnavailable';
}

/** Limits of one fetch. */
export interface FetchLimits {
  timeoutMs: number;
  maxBytes: number;
}

/** A fetch's outcome that is the provider's answer, not a network failure: a status other than 200. */
export class HttpStatusError extends Error {
  constructor(readonly status: number) {
    super(`answered HTTP ${status}`);
  }
}

/**
 * GETs a JSON document. Redirects are not followed (a redirect could lead from https to anywhere); the body is
 * read up to `maxBytes` and the whole exchange, body included, is bounded by `timeoutMs`. Throws on any failure.
 */
export async function fetchJson(url: string, limits: FetchLimits): Promise<unknown> {
  if (!isLoopbackOrHttps(url)) throw new UsageError(`refusing to fetch ${url}: https required (plain http only for loopback)`);
  const signal = AbortSignal.timeout(limits.timeoutMs);
  const res = await fetch(url, { redirect: 'manual', signal, headers: { accept: 'application/json' } });
  if (res.status !== 200) {
    await res.body?.cancel().catch(() => undefined);
    throw new HttpStatusError(res.status);
  }
  const declared = Number(res.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > limits.maxBytes) {
    await res.body?.cancel().catch(() => undefined);
    throw new Error(`body of ${declared} bytes is over the ${limits.maxBytes}-byte limit`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (res.body) {
    const reader = res.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > limits.maxBytes) {
        await reader.cancel().catch(() => undefined);
        throw new Error(`body is over the ${limits.maxBytes}-byte limit`);
      }
      chunks.push(value);
    }
  }
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new Error('body is not JSON');
  }
}

/** Why a fetch failed, in a few words safe for an audit event (no body, no stack). */
export function describeFailure(err: unknown): string {
  if (err instanceof Error) {
    if (err.name === 'TimeoutError' || err.name === 'AbortError') return 'timed out';
    if (err instanceof TypeError && err.cause instanceof Error) return `network error (${(err.cause as { code?: string }).code ?? err.cause.message})`;
    return err.message.slice(0, 200);
  }
  return 'failed';
}

/** Freshness of a cached document, in ms. */
export interface Freshness {
  /** Age after which the document is refetched before use. */
  cacheMaxAgeMs: number;
  /** How much longer than cacheMaxAge the last good document may serve while refetches fail. */
  maxStaleMs: number;
}

const BACKOFF_START_MS = 1_000;
const BACKOFF_MAX_MS = 60_000;

/**
 * One remote document and its cache. While refetches fail it keeps serving the last good value, up to
 * cacheMaxAge + maxStale after it was fetched, and retries no sooner than a backoff (1 s, doubling, at most a
 * minute) so an outage is not answered by a refetch per request. Times are the wall clock (`Date.now`), not a
 * request's `now`: they measure the network's state.
 */
export class CachedDocument<T> {
  private value: T | undefined;
  private fetchedAtMs = 0;
  /** When the last fetch started (success or not), for the unknown-kid cooldown. */
  lastAttemptMs = Number.NEGATIVE_INFINITY;
  /** Consecutive failed fetches; above zero the provider is believed down. */
  failures = 0;
  private retryAtMs = Number.NEGATIVE_INFINITY;
  /** Why the last fetch failed. */
  lastError: string | undefined;
  private pending: Promise<void> | undefined;

  constructor(
    private readonly what: string,
    private readonly load: () => Promise<T>,
    private readonly freshness: Freshness,
  ) {}

  /** The last good value, whatever its age (undefined before the first success). */
  get known(): T | undefined {
    return this.value;
  }

  /**
   * Wall-clock instant (ms) from which `current()` refuses the value held now as stale past maxStale, unless a refetch
   * replaces it first; -Infinity before the first success. It only grows: a value is only replaced by a later fetch.
   */
  get usableUntilMs(): number {
    return this.value === undefined ? Number.NEGATIVE_INFINITY : this.fetchedAtMs + this.freshness.cacheMaxAgeMs + this.freshness.maxStaleMs;
  }

  /** Ends when the fetch under way, if any, has ended (at once when none is); never rejects. */
  settled(): Promise<void> {
    return this.pending ?? Promise.resolve();
  }

  /**
   * The document: refetched first when older than cacheMaxAge (or when `force`d), unless a backoff after a
   * failure holds refetches back. Throws IdpUnavailable when there is no value young enough.
   */
  async current(force = false): Promise<T> {
    const now = Date.now();
    const age = now - this.fetchedAtMs;
    const due = this.value === undefined || force || age >= this.freshness.cacheMaxAgeMs;
    if (due && (now >= this.retryAtMs || this.pending)) await this.refresh();
    if (this.value === undefined) throw new IdpUnavailable(`${this.what} unavailable: ${this.lastError ?? 'not fetched'}`);
    const ageNow = Date.now() - this.fetchedAtMs;
    if (ageNow >= this.freshness.cacheMaxAgeMs + this.freshness.maxStaleMs) {
      throw new IdpUnavailable(`${this.what} unavailable for longer than maxStale: ${this.lastError ?? 'not refetched'}`);
    }
    return this.value;
  }

  /** Fetches now (concurrent callers share one fetch). Never throws: a failure is recorded. */
  refresh(): Promise<void> {
    this.pending ??= this.fetchOnce().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private async fetchOnce(): Promise<void> {
    const started = Date.now();
    this.lastAttemptMs = started;
    try {
      const value = await this.load();
      this.value = value;
      this.fetchedAtMs = started;
      this.failures = 0;
      this.retryAtMs = Number.NEGATIVE_INFINITY;
      this.lastError = undefined;
    } catch (err) {
      this.failures += 1;
      this.lastError = describeFailure(err);
      this.retryAtMs = started + Math.min(BACKOFF_START_MS * 2 ** (this.failures - 1), BACKOFF_MAX_MS);
    }
  }
}
