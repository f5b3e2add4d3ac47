// The messages RedisStore instances exchange on `<prefix>{c}:inv`: their shape, and the check that a message is one
// of ours (anyone who can reach Redis can publish there, so anything else is foreign).
import { BoundedMap } from '../../leaf/bounded-map.js';

/** A message on `<prefix>{c}:inv`: an invalidation, or a probe (`p`) an instance sends itself to check its subscriber. */
export interface Invalidation {
  /** Instance that revoked. */
  o: string;
  /** Its sequence number for the acknowledgement. */
  n: number;
  /** Whether it waits for acknowledgements. */
  a: 0 | 1;
  /** Revoked token id. */
  t?: string;
  /** Revoked subject. */
  s?: string;
  /** A probe: names nothing; only its sender acts on it (by turning its near-cache on). */
  p?: 1;
}

/**
 * The longest invalidation message we send or accept, in UTF-16 units. Longer ones are not ours: parsing megabytes
 * that anyone may publish is not worth it. An id too long for it is sent as "drop everything" instead.
 */
export const MAX_INVALIDATION_CHARS = 65_536;
const INVALIDATION_KEYS = new Set(['o', 'n', 'a', 't', 's', 'p']);

/**
 * The invalidation in `message`, or undefined when it is not one we could have sent: anything but a JSON object with
 * exactly our fields and types (`null`, a number, an array, a huge payload, bad JSON, a field of the wrong type).
 */
export function readInvalidation(message: unknown): Invalidation | undefined {
  if (typeof message !== 'string' || message.length > MAX_INVALIDATION_CHARS) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(message);
  } catch {
    return undefined;
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  if (!Object.keys(o).every((k) => INVALIDATION_KEYS.has(k))) return undefined;
  // o: an instance id (randomBytes(8) as hex); it becomes part of the acknowledgement's channel name.
  if (typeof o['o'] !== 'string' || !/^[0-9a-f]{16}$/.test(o['o'])) return undefined;
  if (typeof o['n'] !== 'number' || !Number.isSafeInteger(o['n']) || o['n'] < 1) return undefined;
  if (o['a'] !== 0 && o['a'] !== 1) return undefined;
  if (o['t'] !== undefined && typeof o['t'] !== 'string') return undefined;
  if (o['s'] !== undefined && typeof o['s'] !== 'string') return undefined;
  if (o['t'] !== undefined && o['s'] !== undefined) return undefined;
  // A probe names nothing and waits for nothing: one that does is not ours.
  if (o['p'] !== undefined && (o['p'] !== 1 || o['a'] !== 0 || o['t'] !== undefined || o['s'] !== undefined)) return undefined;
  return o as unknown as Invalidation;
}

/**
 * The invalidations an instance has answered lately (publisher and sequence number), so that one delivered twice is
 * answered once: an ioredis Cluster forwards both its old and its new subscriber connection's messages while it
 * moves between nodes, and a second answer would count as another instance's. Bounded: the oldest are forgotten.
 */
export class AnsweredInvalidations {
  private readonly seen = new BoundedMap<string, true>(4096);

  /** Whether this is the first time `publisher`'s invalidation `n` arrived (and remembers it). */
  first(publisher: string, n: number): boolean {
    const key = `${publisher}:${n}`;
    if (this.seen.has(key)) return false;
    this.seen.set(key, true);
    return true;
  }
}
