// Usage write-behind for RedisStore: uses are merged in memory and written in batches, one script call per token.
import type { Cluster, Redis } from 'ioredis';
import { StoreError } from '../../leaf/errors.js';
import type { TokenUsage, UsageEvent } from '../../leaf/store.js';
import { RECENT_IPS_KEPT } from '../../leaf/store.js';
import { mergeUsage } from '../usage.js';
import type { Call } from './command.js';
import type { KeyLayout } from './keys.js';
import type { Arg, ScriptCommands, UsagePipeline } from './lua.js';

/** What a UsageBuffer writes with and how often. */
export interface UsageBufferOptions {
  client: Redis | Cluster;
  cmd: ScriptCommands;
  keys: KeyLayout;
  call: Call;
  /** Buffered uses are written at most this often, in ms. */
  flushInterval: number;
  /** A buffer of this many distinct tokens is written at once. */
  batchSize: number;
  /** TTL of a usage hash after each write, in ms (0: none). */
  ttl: number;
}

/** Each token's uses since the last flush, merged as a store would merge them, written by `flush`. */
export class UsageBuffer {
  private usage = new Map<string, TokenUsage>();
  private flushTimer: NodeJS.Timeout | undefined;
  /** Uses lost because their batch could not be written. */
  dropped = 0;

  constructor(private readonly o: UsageBufferOptions) {}

  /** Uses waiting to be written. */
  get buffered(): number {
    let n = 0;
    for (const u of this.usage.values()) n += u.count;
    return n;
  }

  /** Adds one use; a full buffer is written now, otherwise within the flush interval. */
  add(tokenId: string, event: UsageEvent): void {
    this.usage.set(tokenId, mergeUsage(this.usage.get(tokenId), event));
    if (this.usage.size >= this.o.batchSize) void this.flush().catch(() => undefined);
    else this.flushTimer ??= setTimeout(() => void this.flush().catch(() => undefined), this.o.flushInterval).unref();
  }

  /** Writes the buffer now, in one pipeline (on Cluster, one script call per token, sent together). */
  async flush(): Promise<void> {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.usage.size === 0) return;
    const batch = this.usage;
    this.usage = new Map();
    const { client, cmd, keys, call, ttl } = this.o;
    let uses = 0;
    for (const u of batch.values()) uses += u.count;
    const args = (u: TokenUsage): Arg[] => [
      u.count,
      u.firstUsedAt,
      u.lastUsedAt,
      u.lastIp ?? '',
      u.lastUserAgent ?? '',
      u.recentIps.join(','),
      u.minute,
      u.minuteCount,
      ttl,
      RECENT_IPS_KEPT,
    ];
    try {
      if ((client as Cluster).isCluster === true) {
        await call('usage', () => Promise.all([...batch].map(([id, u]) => cmd.tokenGuardUsage(keys.usage(id), ...args(u)))));
      } else {
        let pipeline = (client as Redis).pipeline() as unknown as UsagePipeline;
        for (const [id, u] of batch) pipeline = pipeline.tokenGuardUsage(keys.usage(id), ...args(u));
        const results = await call('usage', () => pipeline.exec());
        const failed = results?.find(([err]) => err);
        if (failed) throw failed[0];
      }
    } catch (err) {
      // Not retried: a batch that may have been partly written would be counted twice.
      this.dropped += uses;
      throw err instanceof StoreError ? err : new StoreError(`Redis usage write failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }
}
