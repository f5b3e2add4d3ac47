// What the guard does about an API key's lifecycle on a request: expiry and maxAge reported once (`key.expired`),
// idle keys retired (`key.retired`), and the Deprecation / Sunset headers of a key in its rotation grace or near
// its maxAge. Bookkeeping never changes the answer: a refusal stays a refusal if reporting fails.
import type { ApiKeyRecord } from '../leaf/store.js';
import type { KeyLifecycleLimits } from './policy.js';
import type { EventDraft } from './lifecycle-events.js';
import { Refusal } from './refusal.js';
import { checkUsage, isThenable, type Invoke } from './store-calls.js';

/** How long the one-time claim that makes an event "the first" is kept (so a key refused for longer may report again). */
const FIRST_EVENT_CLAIM_MS = 400 * 86_400_000;

/** Seconds since the epoch, as a Structured Field Date (RFC 9651 §3.3.7), the form RFC 9745's Deprecation takes. */
const sfDate = (ms: number): string => `@${Math.floor(ms / 1000)}`;
/** An IMF-fixdate (RFC 9110 §5.6.7), the form RFC 8594's Sunset takes. */
const httpDate = (ms: number): string => new Date(ms).toUTCString();

const human = (ms: number): string => {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
};

/** The guard's watch over key lifecycles: limits from the policy, a reporter, and the store. */
export class KeyWatch {
  constructor(
    private readonly limits: KeyLifecycleLimits,
    private readonly invoke: Invoke,
    /** Reports a guard-made event; undefined when nobody listens (no onLifecycle, a store without events). */
    private readonly report: ((draft: EventDraft) => Promise<unknown>) | undefined,
  ) {}

  /** Whether `authenticate` must read the key's usage (for idleTimeout). */
  get readsUsage(): boolean {
    return this.limits.idleTimeoutMs !== undefined;
  }

  /** Why a record is too old under maxAge at `nowMs`, or undefined. */
  tooOld(record: ApiKeyRecord, nowMs: number): string | undefined {
    const max = this.limits.maxAgeMs;
    if (max === undefined || nowMs < record.createdAt + max) return undefined;
    return `API key older than apiKeys.maxAge (${human(max)}): created ${new Date(record.createdAt).toISOString()}`;
  }

  /** The headers warning of a key's coming end, or undefined: Deprecation + Sunset in a rotation grace, Sunset near maxAge. */
  notices(record: ApiKeyRecord, nowMs: number): Record<string, string> | undefined {
    let sunset: number | undefined;
    let deprecated: number | undefined;
    if (record.revokedAt !== undefined && record.revokedAt > nowMs) {
      sunset = record.revokedAt;
      deprecated = typeof record.rotatedAt === 'number' ? record.rotatedAt : nowMs;
    }
    const max = this.limits.maxAgeMs;
    if (max !== undefined) {
      const end = record.createdAt + max;
      if (nowMs >= end - this.limits.maxAgeWarningMs && (sunset === undefined || end < sunset)) sunset = end;
    }
    if (sunset === undefined) return undefined;
    const headers: Record<string, string> = { Sunset: httpDate(sunset) };
    if (deprecated !== undefined) headers['Deprecation'] = sfDate(deprecated);
    return headers;
  }

  /** Refuses an expired key, reporting `key.expired` the first time (across instances: a one-time claim decides). */
  expired(record: ApiKeyRecord, nowMs: number, detail: string, reason: string): Promise<never> | never {
    const refusal = new Refusal('token.expired', detail);
    if (!this.report) throw refusal;
    return this.once('key.expired', record, nowMs, () =>
      this.report?.({ type: 'key.expired', at: nowMs, subject: record.subject, tokenId: record.id, actor: 'guard', reason }),
    ).then(() => Promise.reject(refusal));
  }

  /**
   * With idleTimeout: reads the key's last use and, when it is idle, retires it (revoked with reason `idle`, on the
   * record, once across instances) and refuses. Otherwise answers undefined (or a promise of it).
   */
  idle(record: ApiKeyRecord, nowMs: number): Promise<void> | undefined {
    const idleMs = this.limits.idleTimeoutMs;
    if (idleMs === undefined) return undefined;
    const answer: unknown = this.invoke('getUsage', record.id);
    const decide = (usage: unknown): Promise<void> | undefined => {
      const last = Math.max(checkUsage(usage)?.lastUsedAt ?? record.createdAt, record.createdAt);
      if (nowMs - last < idleMs) return undefined;
      const refusal = new Refusal('token.revoked', `API key retired: unused since ${new Date(last).toISOString()}, longer than apiKeys.idleTimeout (${human(idleMs)})`);
      return this.once('key.retired', record, nowMs, async () => {
        const updated: unknown = this.invoke('updateApiKey', record.hash, { revokedAt: nowMs, revocationReason: 'idle' });
        if (isThenable(updated)) await updated;
        await this.report?.({ type: 'key.retired', at: nowMs, subject: record.subject, tokenId: record.id, actor: 'guard', reason: 'idle' });
      }).then(() => Promise.reject(refusal));
    };
    return isThenable(answer) ? Promise.resolve(answer).then(decide) : decide(answer);
  }

  /** Runs `work` if this call is the first to claim `type` for the record; swallows bookkeeping failures. */
  private async once(type: string, record: ApiKeyRecord, nowMs: number, work: () => unknown): Promise<void> {
    try {
      const first: unknown = this.invoke('claimOnce', `tg-lifecycle:${type}:${record.id}`, { now: nowMs, expiresAt: nowMs + FIRST_EVENT_CLAIM_MS });
      if ((isThenable(first) ? await first : first) !== true) return;
      await work();
    } catch {
      // Bookkeeping: the refusal stands either way.
    }
  }
}
