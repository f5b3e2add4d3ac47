// How one use updates a token's usage record: shared by MemoryStore and RedisStore's write buffer.
import { flatCopy } from '../leaf/bounded-map.js';
import { RECENT_IPS_KEPT, type TokenUsage, type UsageEvent } from '../leaf/store.js';

const MINUTE = 60_000;

/**
 * `current` with one more use. Uses may arrive out of order (several instances, buffered writes): counts
 * add up, the first use keeps the earliest time, and the latest use decides the "last" fields.
 */
export function mergeUsage(current: TokenUsage | undefined, use: UsageEvent): TokenUsage {
  if (!current) return freshUsage(use);
  // A shallow copy is enough: addUse replaces `recentIps` rather than changing it.
  const next: TokenUsage = { ...current };
  addUse(next, use);
  return next;
}

/**
 * The usage of a token's first use, as a store keeps it (MemoryStore: up to `maxUsage` of them). Every field is
 * declared in the literal, so V8 keeps them all in the object itself: adding `lastIp` later would give each record a
 * separate property store (about 40 bytes). `recentIps` starts as a shared frozen array per address (see
 * `oneAddress`), and `addUse` never changes a `recentIps` array in place. Hand out copies (`publicUsage`).
 */
export function freshUsage(use: UsageEvent): TokenUsage {
  return {
    count: 1,
    firstUsedAt: use.at,
    lastUsedAt: use.at,
    lastIp: use.ip,
    recentIps: use.ip === undefined ? NO_ADDRESSES : oneAddress(use.ip),
    lastUserAgent: use.userAgent,
    minute: minuteOf(use.at),
    minuteCount: 1,
  };
}

/** A copy of a stored record as `getUsage` returns it: its own `recentIps` array, no field set to undefined. */
export function publicUsage(u: TokenUsage): TokenUsage {
  const copy: TokenUsage = { count: u.count, firstUsedAt: u.firstUsedAt, lastUsedAt: u.lastUsedAt, recentIps: [...u.recentIps], minute: u.minute, minuteCount: u.minuteCount };
  if (u.lastIp !== undefined) copy.lastIp = u.lastIp;
  if (u.lastUserAgent !== undefined) copy.lastUserAgent = u.lastUserAgent;
  return copy;
}

const NO_ADDRESSES = Object.freeze([]) as unknown as string[];
// Most tokens are used from one address, and many tokens from the same few (a proxy, an office, a job runner): one
// frozen array per address serves them all. Bounded: past it, a record gets its own array.
const ONE_ADDRESS_KEPT = 1024;
const singles = new Map<string, string[]>();

function oneAddress(ip: string): string[] {
  let list = singles.get(ip);
  if (list === undefined) {
    if (singles.size >= ONE_ADDRESS_KEPT) return Object.freeze([ip]) as unknown as string[];
    // Kept for the life of the process, by any store's caller: a copy, so a slice of a longer string keeps no more.
    const own = flatCopy(ip);
    list = Object.freeze([own]) as unknown as string[];
    singles.set(own, list);
  }
  return list;
}

const minuteOf = (at: number): number => Math.floor(at / MINUTE) * MINUTE;

/**
 * Adds one use to `usage` in place (what `mergeUsage` does to a copy): for a store that owns its records and hands
 * out copies, so a repeated use from the same address allocates nothing. Its `recentIps` array is replaced, never
 * changed (it may be shared: see `freshUsage`); a new array only when the list changes.
 */
export function addUse(usage: TokenUsage, use: UsageEvent): void {
  const latest = use.at >= usage.lastUsedAt;
  usage.count += 1;
  if (use.at < usage.firstUsedAt) usage.firstUsedAt = use.at;
  if (latest) usage.lastUsedAt = use.at;
  const minute = minuteOf(use.at);
  if (minute === usage.minute) usage.minuteCount += 1;
  else if (minute > usage.minute) {
    usage.minute = minute;
    usage.minuteCount = 1;
  }
  if (latest && use.ip !== undefined) usage.lastIp = use.ip;
  if (latest && use.userAgent !== undefined) usage.lastUserAgent = use.userAgent;
  const ip = use.ip;
  if (ip === undefined) return;
  const ips = usage.recentIps;
  // Most uses come from the address used last: nothing to change, and no indexOf call (a builtin, cold on Express).
  if (ips[0] === ip) return;
  const at = ips.indexOf(ip);
  if (at === -1) {
    if (latest) usage.recentIps = [ip, ...ips].slice(0, RECENT_IPS_KEPT);
    else if (ips.length < RECENT_IPS_KEPT) usage.recentIps = [...ips, ip];
  } else if (latest && at !== 0) {
    usage.recentIps = [ip, ...ips.slice(0, at), ...ips.slice(at + 1)];
  }
}
