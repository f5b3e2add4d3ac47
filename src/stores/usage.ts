// How one use updates a token's usage record: shared by MemoryStore and RedisStore's write buffer.
import { RECENT_IPS_KEPT, type TokenUsage, type UsageEvent } from '../leaf/store.js';

const MINUTE = 60_000;

/**
 * `current` with one more use. Uses may arrive out of order (several instances, buffered writes): counts
 * add up, the first use keeps the earliest time, and the latest use decides the "last" fields.
 */
export function mergeUsage(current: TokenUsage | undefined, use: UsageEvent): TokenUsage {
  if (!current) return freshUsage(use);
  const next: TokenUsage = { ...current, recentIps: [...current.recentIps] };
  addUse(next, use);
  return next;
}

/** The usage of a token's first use. */
export function freshUsage(use: UsageEvent): TokenUsage {
  const fresh: TokenUsage = { count: 1, firstUsedAt: use.at, lastUsedAt: use.at, recentIps: use.ip ? [use.ip] : [], minute: minuteOf(use.at), minuteCount: 1 };
  if (use.ip !== undefined) fresh.lastIp = use.ip;
  if (use.userAgent !== undefined) fresh.lastUserAgent = use.userAgent;
  return fresh;
}

const minuteOf = (at: number): number => Math.floor(at / MINUTE) * MINUTE;

/**
 * Adds one use to `usage` in place (what `mergeUsage` does to a copy): for a store that owns its records and hands
 * out copies, so a repeated use from the same address allocates nothing.
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
  const at = ips.indexOf(ip);
  if (at === -1) {
    if (latest) ips.unshift(ip);
    else ips.push(ip);
    if (ips.length > RECENT_IPS_KEPT) ips.length = RECENT_IPS_KEPT;
  } else if (latest && at !== 0) {
    ips.splice(at, 1);
    ips.unshift(ip);
  }
}
