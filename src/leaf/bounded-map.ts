// A Map with a size bound and optional per-entry expiry, for the caches read on every request (client IPs, JWT
// verifications). Cheaper than lru-cache on a hit (one Map lookup, no recency bookkeeping, no status object):
// when full it drops the oldest entry (insertion order), which for a cache of things clients repeat is as good.

interface Entry<K, V> {
  /** The caller's key, kept when the Map is keyed by an index of it (then compared on every hit). */
  readonly key: K;
  value: V;
  /** When the entry stops being served, on the caller's clock (ms); Infinity for never. */
  until: number;
  /** How many entries had been filed before this one (its place in insertion order), for `refresh`. */
  seq: number;
}

/** Options of BoundedMap. */
export interface BoundedMapOptions<K> {
  /**
   * What the entries are filed under instead of the key itself, when the key is long and hashing it is the cost:
   * a hash of a token's last characters, say (see `tailHash`). Keys with the same index replace each other; a hit is
   * still compared with the whole key, so an index only ever costs a miss, never a wrong answer.
   */
  index?: (key: K) => unknown;
  /**
   * Approximate recency: an entry read while it is in the older half of the insertion order moves to the newest
   * end. An entry read at least once every `max / 2` insertions is then never dropped, as under an LRU, while a hit
   * in the newer half (nearly every hit of a busy key) costs nothing more than a plain read. Default: false.
   */
  refresh?: boolean;
}

/** How many of a key's last characters `tailHash` reads: 12 base64url characters of a signature are 72 bits. */
const TAIL = 12;

// tailHash's key, drawn once per process: V8 hashes small integers without a seed, so an index anyone could compute
// would let someone able to sign many tokens (a tenant's own issuer, say) pick ones that share a Map bucket and
// slow every lookup that lands there. Keyed, which indexes share a bucket cannot be worked out from outside.
const HASH_KEY = globalThis.crypto.getRandomValues(new Uint32Array(2));
const MUL = ((HASH_KEY[0] as number) | 1) >>> 0;
const START = (HASH_KEY[1] as number) | 0;

/**
 * The index of a long string for a BoundedMap: a keyed 30-bit hash of its last 12 characters (a JWT's are its
 * signature's). A small integer, so a lookup neither allocates a string nor hashes one: V8 hashes a fresh 1 kB
 * string in about a microsecond, a 12-character slice of it in ≈ 40 ns plus the slice, this in a few. Two live keys
 * share an index about once in 2^30 pairs; that only costs a miss (the whole key is compared on every hit).
 */
export function tailHash(key: string): number {
  let h = START;
  for (let i = key.length > TAIL ? key.length - TAIL : 0; i < key.length; i++) h = (Math.imul(h, MUL) + key.charCodeAt(i)) | 0;
  // Fold the high bits in, then keep 30: a small integer (Smi) on every platform V8 runs on.
  return (h ^ (h >>> 15)) & 0x3fffffff;
}

// V8 copies a substring or a concatenation shorter than this; a longer one may be a view into its parent (a slice) or a
// tree of its parts (a cons string).
const COPIED_BELOW = 13;

/**
 * A copy of `s` that keeps nothing else alive, for a string a long-lived structure holds (a bounded map's key, a usage
 * record). V8 makes `slice`, `split`, `trim` and regex captures of 13 or more characters views into the whole string,
 * so 256 characters cut from a 16 kB header would keep the 16 kB as long as they are kept. A short string is returned as
 * is (V8 copied it already); a longer one goes through a Buffer, which gives a flat string of the same characters.
 */
export function flatCopy(s: string): string {
  if (s.length < COPIED_BELOW) return s;
  for (let i = 0; i < s.length; i++) {
    // Beyond Latin-1: UTF-16 keeps every code unit, a lone surrogate included.
    if (s.charCodeAt(i) > 0xff) return Buffer.from(s, 'utf16le').toString('utf16le');
  }
  return Buffer.from(s, 'latin1').toString('latin1');
}

/**
 * The oldest key of a Map, in amortised constant time. A fresh `map.keys()` starts at the front of V8's table and
 * walks over every entry deleted since the table was last compacted: in a full Map that drops its oldest entry on each
 * insert, those holes pile up at the front, and each eviction cost tens of µs (a 100 000-entry Map: 14 s for 200 000
 * evictions, against 0.2 s with this cursor). One iterator kept across calls passes each hole once. It stays right as
 * long as every key it hands out is deleted before the next call: then no live entry lies behind it (re-inserted and
 * new keys go to the end, which it has not reached).
 */
export class EvictionCursor<K> {
  readonly #map: Map<K, unknown>;
  #keys: Iterator<K> | undefined;

  /** A cursor over `map`'s keys in insertion order. */
  constructor(map: Map<K, unknown>) {
    this.#map = map;
  }

  /** The map's oldest key, which the caller then deletes; undefined for an empty map. */
  oldest(): K | undefined {
    if (this.#map.size === 0) {
      // Also lets go of the tables an iterator keeps alive until it next moves.
      this.#keys = undefined;
      return undefined;
    }
    let step = this.#keys?.next();
    if (step === undefined || step.done === true) {
      // A finished Map iterator stays finished: start again (reached only if a caller kept a key it was handed).
      this.#keys = this.#map.keys();
      step = this.#keys.next();
    }
    return step.done === true ? undefined : step.value;
  }
}

/**
 * A Map of at most `max` entries: setting a new key when full drops the oldest one. An entry set with an
 * expiry is not served from that instant on (on the caller's clock) and is dropped when next read.
 */
export class BoundedMap<K, V> {
  readonly #max: number;
  readonly #index: ((key: K) => unknown) | undefined;
  readonly #entries = new Map<unknown, Entry<K, V>>();
  readonly #oldest = new EvictionCursor(this.#entries);
  /** Entries older than this many insertions move to the newest end when read (refresh); Infinity: never. */
  readonly #refreshAfter: number;
  /** Insertions so far. */
  #seq = 0;

  /** Throws RangeError when `max` is not a positive integer. */
  constructor(max: number, options: BoundedMapOptions<K> = {}) {
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`BoundedMap: max must be a positive integer (got ${String(max)})`);
    this.#max = max;
    this.#index = options.index;
    this.#refreshAfter = options.refresh === true ? Math.floor(max / 2) : Number.POSITIVE_INFINITY;
  }

  /** The value of `key`, unless absent or expired at `nowMs` (default: never expired). */
  get(key: K, nowMs = Number.NEGATIVE_INFINITY): V | undefined {
    const id = this.#index ? this.#index(key) : key;
    const e = this.#entries.get(id);
    if (e === undefined || e.key !== key) return undefined;
    return this.#served(id, e, nowMs);
  }

  /**
   * The value filed under `probe`'s index that `matches` accepts (for a value that knows another spelling of its
   * key: a token's whole Authorization header, say, whose index is the token's), unless expired at `nowMs`. Without
   * an `index` option, the entry of `probe` itself.
   */
  find(probe: K, matches: (value: V, probe: K) => boolean, nowMs = Number.NEGATIVE_INFINITY): V | undefined {
    const id = this.#index ? this.#index(probe) : probe;
    const e = this.#entries.get(id);
    if (e === undefined || !matches(e.value, probe)) return undefined;
    return this.#served(id, e, nowMs);
  }

  /** An entry found by `get` or `find`: its value, unless expired (then dropped); refreshed when old enough. */
  #served(id: unknown, e: Entry<K, V>, nowMs: number): V | undefined {
    if (nowMs >= e.until) {
      this.#entries.delete(id);
      return undefined;
    }
    if (this.#seq - e.seq > this.#refreshAfter) {
      this.#entries.delete(id);
      e.seq = this.#seq++;
      this.#entries.set(id, e);
    }
    return e.value;
  }

  /** Whether `key` has a value not expired at `nowMs`. */
  has(key: K, nowMs?: number): boolean {
    return this.get(key, nowMs) !== undefined;
  }

  /** Sets `key`, served until `untilMs` (default: until dropped). An existing entry is updated where it stands. */
  set(key: K, value: V, untilMs = Number.POSITIVE_INFINITY): void {
    const id = this.#index ? this.#index(key) : key;
    const e = this.#entries.get(id);
    if (e !== undefined && e.key === key) {
      e.value = value;
      e.until = untilMs;
      return;
    }
    if (e !== undefined) this.#entries.delete(id);
    else if (this.#entries.size >= this.#max) this.#entries.delete(this.#oldest.oldest());
    this.#entries.set(id, { key, value, until: untilMs, seq: this.#seq++ });
  }

  /** Drops `key`; true when it was there. */
  delete(key: K): boolean {
    const id = this.#index ? this.#index(key) : key;
    const e = this.#entries.get(id);
    if (e === undefined || e.key !== key) return false;
    return this.#entries.delete(id);
  }

  /** Drops every entry. */
  clear(): void {
    this.#entries.clear();
  }

  /** Entries held, expired ones not yet dropped included. */
  get size(): number {
    return this.#entries.size;
  }
}
