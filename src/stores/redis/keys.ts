// The Redis key layout of RedisStore: every key and channel name is built here, each with its Cluster hash tag.
//
// A key is `<prefix>{<kind>:<id>}` or `<prefix>{<kind>:<id>}:<part>`. The braces are a Cluster hash tag: Redis
// Cluster hashes only what is inside them, so every key of one token (its revocation, rate-limit counters and usage)
// lands in one slot and a script may touch several of them. Kinds:
//   t  a token id:      {t:<id>}:rev (revocation), {t:<id>}:rl:<limit name> (counter), {t:<id>}:use (usage)
//   s  a subject:       {s:<subject>}:rev (revocation of every token issued before a time)
//   k  an API key:      {k:<hash>} (a hash: rec = record JSON, rem = uses left)
//   i  a key id:        {i:<id>} (the hash of the record with that id: the inventory's id index)
//   u  a subject's keys: {u:<subject>} (a set of record hashes: the inventory's subject index, pruned on read)
//   e  lifecycle events: {e}:log (a list of event JSON, oldest first), {e}:ids (the ids in it, against duplicates)
//   o  a claim:         {o:<key>} (holds its expiry)
//   g  a claim group:   {g:<group>} (sorted set of claims scored by expiry)
//   c  the channels:    {c}:inv (invalidations), {c}:ack:<instance id> (acknowledgements)

const SPECIAL = /[%{}:]/;

/**
 * Escapes an id, subject or name so that `}` or `:` in it can neither end the hash tag early nor make two different
 * (id, name) pairs spell the same key.
 */
function esc(s: string): string {
  return SPECIAL.test(s) ? s.replace(/[%{}:]/g, (c) => `%${c.charCodeAt(0).toString(16)}`) : s;
}

/** Whether `prefix` can start every key: a string without braces (the hash tags are the layout's own). */
export function isValidPrefix(prefix: unknown): prefix is string {
  return typeof prefix === 'string' && !/[{}]/.test(prefix);
}

/** The names of one store's keys and channels, under its prefix. */
export class KeyLayout {
  /** Where invalidations are published: every instance with a subscriber listens. */
  readonly invalidationChannel: string;

  constructor(readonly prefix: string) {
    // Channels use the same brace-after-prefix shape as keys, so distinct prefixes never share a channel either.
    this.invalidationChannel = `${prefix}{c}:inv`;
  }

  /** Where the instance `instanceId` hears that others dropped what it revoked. */
  ackChannel(instanceId: string): string {
    return `${this.prefix}{c}:ack:${instanceId}`;
  }

  /** An API key record, by the key's hash. */
  apiKey(hash: string): string {
    return this.tagged('k', hash);
  }

  /** A token's revocation entry. */
  tokenRevocation(tokenId: string): string {
    return this.tagged('t', tokenId, 'rev');
  }

  /** A subject's revocation entry. */
  subjectRevocation(subject: string): string {
    return this.tagged('s', subject, 'rev');
  }

  /** A token's rate-limit counter for the limit `name` (same slot as the token's other counters). */
  counter(tokenId: string, name: string): string {
    return this.tagged('t', tokenId, `rl:${esc(name)}`);
  }

  /** A token's usage hash. */
  usage(tokenId: string): string {
    return this.tagged('t', tokenId, 'use');
  }

  /** The id index of the key inventory: the hash of the record with id `id`. */
  keyId(id: string): string {
    return this.tagged('i', id);
  }

  /** The subject index of the key inventory: the hashes of the subject's records (may hold stale ones). */
  subjectKeys(subject: string): string {
    return this.tagged('u', subject);
  }

  /** The lifecycle event log (one list, one slot) and the set of the ids in it. */
  get eventLog(): string {
    return `${this.prefix}{e}:log`;
  }

  get eventIds(): string {
    return `${this.prefix}{e}:ids`;
  }

  /** A one-time claim outside any group. */
  claim(key: string): string {
    return this.tagged('o', key);
  }

  /** A group of one-time claims (one sorted set, one slot, so the cap and the claim are one atomic step). */
  claimGroup(group: string): string {
    return this.tagged('g', group);
  }

  private tagged(kind: 't' | 's' | 'k' | 'o' | 'g' | 'i' | 'u', id: string, part?: string): string {
    return part === undefined ? `${this.prefix}{${kind}:${esc(id)}}` : `${this.prefix}{${kind}:${esc(id)}}:${part}`;
  }
}
