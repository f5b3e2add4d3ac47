// How one use updates a token's usage record: shared by MemoryStore and RedisStore's write buffer.
import { RECENT_IPS_KEPT, type TokenUsage, type UsageEvent } from '../leaf/store.js';

const MINUTE = 60_000;

/**
 * `current` with one more use. Uses may arrive out of order (several instances, buffered writes): counts
 * add up, the first use keeps the earliest time, and the latest use decides the "last" fields.
 */
export function mergeUsage(current: TokenUsage | undefined, use: UsageEvent): TokenUsage {
  const minute = Math.floor(use.at / MINUTE) * MINUTE;
  if (!current) {
    const fresh: TokenUsage = { count: 1, firstUsedAt: use.at, lastUsedAt: use.at, recentIps: use.ip ? [use.ip] : [], minute, minuteCount: 1 };
    if (use.ip !== undefined) fresh.lastIp = use.ip;
    if (use.userAgent !== undefined) fresh.lastUserAgent = use.userAgent;
    return fresh;
  }
  const latest = use.at >= current.lastUsedAt;
  const next: TokenUsage = {
    count: current.count + 1,
    firstUsedAt: Math.min(current.firstUsedAt, use.at),
    lastUsedAt: latest ? use.at : current.lastUsedAt,
    recentIps: current.recentIps,
    minute: current.minute,
    minuteCount: current.minuteCount,
  };
  if (minute === current.minute) next.minuteCount = current.minuteCount + 1;
  else if (minute > current.minute) {
    next.minute = minute;
    next.minuteCount = 1;
  }
  const lastIp = latest && use.ip !== undefined ? use.ip : current.lastIp;
  if (lastIp !== undefined) next.lastIp = lastIp;
  const ua = latest && use.userAgent !== undefined ? use.userAgent : current.lastUserAgent;
  if (ua !== undefined) next.lastUserAgent = ua;
  if (use.ip !== undefined && !current.recentIps.includes(use.ip)) {
    next.recentIps = latest ? [use.ip, ...current.recentIps].slice(0, RECENT_IPS_KEPT) : [...current.recentIps, use.ip].slice(0, RECENT_IPS_KEPT);
  } else if (use.ip !== undefined && latest && current.recentIps[0] !== use.ip) {
    next.recentIps = [use.ip, ...current.recentIps.filter((i) => i !== use.ip)];
  }
  return next;
}
