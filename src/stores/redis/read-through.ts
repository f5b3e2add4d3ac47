// RedisStore as a read-through cache in front of a durable store (PostgresStore, through composeStores): API key
// records and revocation lookups are answered from Redis (revocations from the near-cache first, synchronously), and
// what Redis lacks (after a flush, an eviction, a restart) is read from the durable store and kept again.
//
// What makes a lost or stale cache entry safe:
// - A revocation entry in Redis always wins over a "checked: none" marker, and every revocation is written to the
//   durable store first and then into Redis (RedisStore.revoke: entry, invalidation and confirmations), so a marker
//   written by a read that raced a revocation never hides it.
// - A record is kept only if its generation did not move while it was read: every change in the durable store bumps
//   it (invalidateApiKey), so an old record read before a change is never kept after it.
// - Records with uses left (`remaining`) are never kept: their count changes with every use.
// - When Redis fails, the durable store answers alone (nothing is kept): the guard answers 503 only when both fail.
//   So does it when the store may not use Redis (durability: 'require' refused it, or has no verdict within the
//   call's bound): the call fails unsent, nothing is read from Redis nor written to it, nothing is near-cached, and
//   the durable store, authoritative for records and revocations, answers. Both lookups alike: neither throws.
import type { Cluster, Redis } from 'ioredis';
import type { ApiKeyRecord, RevocationState } from '../../leaf/store.js';
import type { RevocationEntries } from '../../leaf/store-parts.js';
import { checkGetRevocation, checkId } from '../validate.js';
import type { Call } from './command.js';
import type { KeyLayout } from './keys.js';
import type { ScriptCommands } from './lua.js';
import type { NearCache } from './near-cache.js';
import { parseEntry, type RevocationEntry, toRecord, toState } from './records.js';

/** How long a record's generation outlives its last change: far longer than any read of the durable store takes. */
const GENERATION_TTL_MS = 86_400_000;

/** A token's and its subject's revocation entries, as read (null: none). */
interface Entries {
  token: RevocationEntry | null;
  subject: RevocationEntry | null;
}

/** Reads a durable store's revocation entries (PostgresStore.getRevocationEntries). */
export type LoadRevocations = (tokenId: string, subject: string | undefined, now: number) => Promise<RevocationEntries>;

/** What a ReadThrough talks to. */
export interface ReadThroughOptions {
  client: Redis | Cluster;
  cmd: ScriptCommands;
  keys: KeyLayout;
  call: Call;
  nearCache: NearCache;
  /** How long a record or a "no revocation" marker read from the durable store is kept in Redis, in ms. */
  ttl: number;
}

function fromDurable(e: RevocationEntries['token']): RevocationEntry | null {
  if (e === null) return null;
  return e.reason === undefined ? { time: e.time, exp: e.expiresAt } : { time: e.time, exp: e.expiresAt, reason: e.reason };
}

/** A revocation entry as the revocation scripts write it (so later revokes merge with it). */
function entryJson(field: 'at' | 'before', e: RevocationEntry): string {
  return JSON.stringify(e.reason === undefined ? { [field]: e.time, exp: e.exp } : { [field]: e.time, exp: e.exp, r: e.reason });
}

/** The read-through half of RedisStore (the fan-out half is its revoke and revokeSubject). */
export class ReadThrough {
  /**
   * Reads of the durable store in flight, by record hash, with the generation seen before each: a miss that saw the
   * same generation shares the read instead of sending its own (many requests for one cold record cost one query).
   */
  private readonly recordReads = new Map<string, { gen: string | null; record: Promise<ApiKeyRecord | undefined> }>();
  /**
   * Revocation reads in flight (Redis, then the durable store where Redis lacks an entry), by token id and subject,
   * with the near-cache ticket and `now` each started with; see readRevocation for when a lookup may share one.
   */
  private readonly revocationReads = new Map<string, { ticket: number; now: number; entries: Promise<Entries> }>();

  constructor(private readonly o: ReadThroughOptions) {}

  getApiKey(hash: string, load: (hash: string) => Promise<ApiKeyRecord | undefined>): Promise<ApiKeyRecord | undefined> {
    // A promise either way: a bad argument rejects, as every other failure of this method does.
    try {
      checkId('getApiKeyThrough', 'hash', hash);
    } catch (e) {
      return Promise.reject(e);
    }
    const { client, keys, call } = this.o;
    const key = keys.apiKey(hash);
    // The cached path is RedisStore.getApiKey's: one HMGET, one promise chain. The generation is only needed when the
    // durable store must be read, so only a miss asks for it.
    return call('HMGET', () => client.hmget(key, 'rec', 'rem')).then(
      ([rec, rem]) => (rec !== null && rec !== undefined ? toRecord(rec, rem ?? null) : this.loadRecord(hash, key, load)),
      () => load(hash),
    );
  }

  /**
   * A record Redis lacks: read from the durable store and kept, unless it changed meanwhile. Its generation is read
   * first, in a round trip of its own (only a miss pays for it): any change that completes after that read moves the
   * generation, so a record the durable store answered from before the change is never kept (see KEEP_RECORD_LUA).
   */
  private async loadRecord(hash: string, key: string, load: (hash: string) => Promise<ApiKeyRecord | undefined>): Promise<ApiKeyRecord | undefined> {
    const { client, keys, call, cmd } = this.o;
    const genKey = keys.apiKeyGeneration(hash);
    let gen: string | null;
    try {
      gen = await call('GET', () => client.get(genKey));
    } catch {
      return load(hash);
    }
    // Sharing a read that saw the same generation is safe for the same reason keeping it is: a change completed
    // before our generation read would have moved it.
    const flight = this.recordReads.get(hash);
    if (flight && flight.gen === gen) return flight.record;
    const record = load(hash).then((r) => {
      if (r && r.remaining === undefined) {
        // Not awaited: the caller has its record, and a keep that fails or is refused only means the next read asks
        // the durable store again. Commands on one connection run in order, so a later read through it sees the keep.
        call('keep', () => cmd.tokenGuardKeepRecord(key, genKey, gen ?? '', JSON.stringify(r), this.o.ttl)).catch(() => undefined);
      }
      return r;
    });
    const mine = { gen, record };
    this.recordReads.set(hash, mine);
    const done = (): void => {
      if (this.recordReads.get(hash) === mine) this.recordReads.delete(hash);
    };
    record.then(done, done);
    return record;
  }

  async invalidateApiKey(hash: string): Promise<void> {
    checkId('invalidateApiKey', 'hash', hash);
    const { keys, call, cmd } = this.o;
    await call('drop', () => cmd.tokenGuardDropRecord(keys.apiKey(hash), keys.apiKeyGeneration(hash), GENERATION_TTL_MS));
  }

  getRevocation(tokenId: string, subject: string | undefined, now: number, load: LoadRevocations): RevocationState | undefined | Promise<RevocationState | undefined> {
    checkGetRevocation(tokenId, subject, now);
    const cached = this.o.nearCache.lookup(tokenId, subject);
    // Answered locally, without a promise, exactly as RedisStore's own near-cached path.
    if (cached) return toState(cached.token, cached.subject, now);
    return this.readRevocation(tokenId, subject, now, load);
  }

  /**
   * A lookup the near-cache cannot answer. Concurrent lookups of one token id and subject share one read when the
   * near-cache would have kept the first one's answer for the others: it started while the cache was live, no
   * invalidation, disconnect or resubscription has happened since (same ticket: a revocation that completed before
   * a later lookup started was confirmed by this instance, which bumped it), and it did not start at a later `now`
   * (the durable store leaves out what has expired by then).
   */
  private readRevocation(tokenId: string, subject: string | undefined, now: number, load: LoadRevocations): Promise<RevocationState | undefined> {
    const ticket = this.o.nearCache.beforeRead();
    if (ticket === undefined) return this.readEntries(tokenId, subject, now, load, ticket).then((e) => toState(e.token, e.subject, now));
    const k = JSON.stringify([tokenId, subject ?? null]);
    const flight = this.revocationReads.get(k);
    if (flight && flight.ticket === ticket && flight.now <= now) return flight.entries.then((e) => toState(e.token, e.subject, now));
    const entries = this.readEntries(tokenId, subject, now, load, ticket);
    const mine = { ticket, now, entries };
    this.revocationReads.set(k, mine);
    const done = (): void => {
      if (this.revocationReads.get(k) === mine) this.revocationReads.delete(k);
    };
    entries.then(done, done);
    return entries.then((e) => toState(e.token, e.subject, now));
  }

  /** The entries of a token id and its subject: from Redis, else from the durable store (then kept in both caches). */
  private async readEntries(tokenId: string, subject: string | undefined, now: number, load: LoadRevocations, ticket: number | undefined): Promise<Entries> {
    const { client, keys, call, nearCache } = this.o;
    const get = (key: string | undefined) => (key === undefined ? Promise.resolve(null) : client.get(key));
    let replies: (string | null)[];
    try {
      replies = await call('GET', () =>
        Promise.all([
          get(keys.tokenRevocation(tokenId)),
          get(keys.tokenChecked(tokenId)),
          get(subject === undefined ? undefined : keys.subjectRevocation(subject)),
          get(subject === undefined ? undefined : keys.subjectChecked(subject)),
        ]),
      );
    } catch {
      // Redis down, or not to be used (durability): the durable store answers alone, and nothing is cached.
      const e = await load(tokenId, subject, now);
      return { token: fromDurable(e.token), subject: fromDurable(e.subject) };
    }
    const [t, tChecked, s, sChecked] = replies;
    let token = parseEntry(t ?? null, 'at');
    let subj = parseEntry(s ?? null, 'before');
    const tokenKnown = token !== null || (tChecked !== null && tChecked !== undefined);
    const subjectKnown = subject === undefined || subj !== null || (sChecked !== null && sChecked !== undefined);
    if (!tokenKnown || !subjectKnown) {
      const e = await load(tokenId, subject, now);
      const writes: (() => Promise<unknown>)[] = [];
      if (!tokenKnown) {
        token = fromDurable(e.token);
        writes.push(() => this.keep(keys.tokenRevocation(tokenId), keys.tokenChecked(tokenId), 'at', token, now));
      }
      if (!subjectKnown && subject !== undefined) {
        subj = fromDurable(e.subject);
        writes.push(() => this.keep(keys.subjectRevocation(subject), keys.subjectChecked(subject), 'before', subj, now));
      }
      // Best effort, and not awaited: a write that fails only means the next lookup asks the durable store again (and
      // a revocation entry always wins over a marker, whenever either lands).
      call('SET', () => Promise.all(writes.map((write) => write()))).catch(() => undefined);
    }
    nearCache.keep(ticket, tokenId, token, subject, subj);
    return { token, subject: subj };
  }

  /**
   * Keeps what the durable store said: its entry (NX: an entry a revocation wrote meanwhile is at least as new), or
   * the marker that it had none, for `ttl`.
   */
  private keep(revKey: string, checkedKey: string, field: 'at' | 'before', entry: RevocationEntry | null, now: number): Promise<unknown> {
    const { client, ttl } = this.o;
    if (entry === null) return client.set(checkedKey, '1', 'PX', ttl);
    if (entry.exp === null) return client.set(revKey, entryJson(field, entry), 'NX');
    return client.set(revKey, entryJson(field, entry), 'PX', Math.max(1, Math.ceil(entry.exp - now)), 'NX');
  }
}
