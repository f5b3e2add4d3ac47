// RedisStore's API key records and their inventory (the id and subject indexes), as plain functions on a
// RedisContext: the store's methods delegate here, so the record logic reads apart from revocations and counters.
import { StoreError } from '../../leaf/errors.js';
import type { ApiKeyPatch, ApiKeyRecord, ApiKeyUpdateCondition } from '../../leaf/store.js';
import { checkId, checkPutApiKey, checkUpdateApiKey, failsCondition } from '../validate.js';
import type { RedisContext } from './command.js';
import { recordJson, toRecord, usesLeft } from './records.js';

const UPDATE_ATTEMPTS = 8;

/** RedisStore.getApiKey: the record under `hash`, or undefined. */
export function getApiKey(ctx: RedisContext, hash: string): Promise<ApiKeyRecord | undefined> {
  // A promise either way: a bad argument rejects, as every other failure of this method does.
  try {
    checkId('getApiKey', 'hash', hash);
  } catch (e) {
    return Promise.reject(e);
  }
  return ctx.call('HMGET', () => ctx.client.hmget(ctx.keys.apiKey(hash), 'rec', 'rem')).then(([rec, rem]) => toRecord(rec ?? null, rem ?? null));
}

/** RedisStore.putApiKey: writes the record and its index entries. */
export async function putApiKey(ctx: RedisContext, record: ApiKeyRecord): Promise<void> {
  checkPutApiKey(record);
  const { remaining, ...rest } = record;
  // The inventory first (its keys live in other slots, so not in the same script): an index entry without its
  // record is dropped on read, while a record without its index entries would be missing from listings.
  await index(ctx, record.id, record.subject, record.hash);
  await ctx.call('put', () => ctx.cmd.tokenGuardPut(ctx.keys.apiKey(record.hash), JSON.stringify(rest), usesLeft(remaining)));
}

async function index(ctx: RedisContext, id: string | undefined, subject: string | undefined, hash: string): Promise<void> {
  await ctx.call('index', () =>
    Promise.all([id === undefined ? null : ctx.client.set(ctx.keys.keyId(id), hash), subject === undefined ? null : ctx.client.sadd(ctx.keys.subjectKeys(subject), hash)]),
  );
}

/** RedisStore.updateApiKey: merges `patch` into the record, retrying while it changes underneath. */
export async function updateApiKey(ctx: RedisContext, hash: string, patch: ApiKeyPatch, condition?: ApiKeyUpdateCondition): Promise<ApiKeyRecord | undefined> {
  checkUpdateApiKey(hash, patch, condition);
  const key = ctx.keys.apiKey(hash);
  const remaining = !('remaining' in patch) ? 'keep' : patch.remaining === undefined ? 'del' : usesLeft(patch.remaining);
  // A record moving to another subject joins its index first (the old subject's entry is pruned on read).
  if (typeof patch.subject === 'string') await index(ctx, undefined, patch.subject, hash);
  for (let attempt = 0; attempt < UPDATE_ATTEMPTS; attempt++) {
    const [rec] = await ctx.call('HMGET', () => ctx.client.hmget(key, 'rec'));
    if (rec === null || rec === undefined) return undefined;
    // Refused like a read: merging would drop its `remaining` and silently make the key unlimited.
    const current = recordJson(rec);
    // Checked on the record the write below is conditioned on (the script writes only if it is still `rec`): atomic.
    if (failsCondition(current, condition)) return undefined;
    const { remaining: _ignored, ...next } = { ...current, ...patch, id: current.id, hash: current.hash, prefix: current.prefix, createdAt: current.createdAt };
    const json = JSON.stringify(next);
    const reply = await ctx.call('update', () => ctx.cmd.tokenGuardUpdate(key, rec, json, remaining));
    if (reply[0] === 0) return undefined;
    if (reply[0] === 2) return toRecord(json, typeof reply[1] === 'string' || typeof reply[1] === 'number' ? String(reply[1]) : null);
    // Changed between read and write: read again.
  }
  throw new StoreError(`updateApiKey: the record kept changing; gave up after ${UPDATE_ATTEMPTS} attempts`);
}

/** RedisStore.deleteApiKey: true when there was a record to delete. */
export async function deleteApiKey(ctx: RedisContext, hash: string): Promise<boolean> {
  checkId('deleteApiKey', 'hash', hash);
  // The index entries go stale with it and are ignored (and pruned) on read.
  return (await ctx.call('DEL', () => ctx.client.del(ctx.keys.apiKey(hash)))) > 0;
}

/** RedisStore.listApiKeys: the subject's records, pruning stale index entries on the way. */
export async function listApiKeys(ctx: RedisContext, subject: string): Promise<ApiKeyRecord[]> {
  checkId('listApiKeys', 'subject', subject);
  const setKey = ctx.keys.subjectKeys(subject);
  const hashes = await ctx.call('SMEMBERS', () => ctx.client.smembers(setKey));
  const records = await ctx.call('HMGET', () => Promise.all(hashes.map((h) => ctx.client.hmget(ctx.keys.apiKey(h), 'rec', 'rem'))));
  const out: ApiKeyRecord[] = [];
  const stale: string[] = [];
  records.forEach(([rec, rem], i) => {
    const r = toRecord(rec ?? null, rem ?? null);
    // Deleted, or moved to another subject: the index entry is stale.
    if (r && r.subject === subject && r.hash === hashes[i]) out.push(r);
    else stale.push(hashes[i] as string);
  });
  // Pruning is housekeeping: a failure leaves entries that the next read drops again.
  if (stale.length) ctx.client.srem(setKey, ...stale).catch(() => undefined);
  return out;
}

/** RedisStore.getApiKeyById: the record with that id, or undefined. */
export async function getApiKeyById(ctx: RedisContext, id: string): Promise<ApiKeyRecord | undefined> {
  checkId('getApiKeyById', 'id', id);
  const hash = await ctx.call('GET', () => ctx.client.get(ctx.keys.keyId(id)));
  if (hash === null) return undefined;
  const [rec, rem] = await ctx.call('HMGET', () => ctx.client.hmget(ctx.keys.apiKey(hash), 'rec', 'rem'));
  const r = toRecord(rec ?? null, rem ?? null);
  return r && r.id === id && r.hash === hash ? r : undefined;
}

/** RedisStore.useApiKey: takes one use atomically; the uses left, -1 when none were, undefined without a limit. */
export async function useApiKey(ctx: RedisContext, hash: string): Promise<number | undefined> {
  checkId('useApiKey', 'hash', hash);
  const left = await ctx.call('use', () => ctx.cmd.tokenGuardUse(ctx.keys.apiKey(hash)));
  return left === null ? undefined : Number(left);
}
