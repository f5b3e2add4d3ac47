// RedisStore: token state shared by every app instance through Redis (standalone or Cluster), on a client the app passes in.
import { randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
// Types only: ioredis is an optional peer dependency, so nothing from it may be loaded at run time.
import type { Cluster, Redis } from 'ioredis';
import { StoreError } from '../leaf/errors.js';
import type {
  ApiKeyPatch,
  ApiKeyRecord,
  RateLimitCheck,
  RateLimitResult,
  RateLimitState,
  RevocationState,
  TokenStore,
  TokenUsage,
  UsageEvent,
} from '../leaf/store.js';
import { RECENT_IPS_KEPT } from '../leaf/store.js';
import { COUNTER_TTL_SLACK_MS } from './gcra.js';
import { mergeUsage } from './usage.js';
import {
  checkConsume,
  checkGetRevocation,
  checkId,
  checkPutApiKey,
  checkRecordUsage,
  checkRevoke,
  checkRevokeSubject,
  checkUpdateApiKey,
  StoreArgumentError,
} from './validate.js';

export { StoreArgumentError } from './validate.js';
import type { ClaimOptions } from '../leaf/store.js';
import { checkClaimGroup } from './claims.js';

/** Near-cache tuning: a bounded, short-lived local copy of revocation lookups, invalidated through pub/sub. */
export interface RedisNearCacheOptions {
  /** Most token ids and subjects whose revocation state is kept locally. Default: 10 000. */
  max?: number;
  /** Longest a cached lookup is used, in ms: a backstop should an invalidation ever be missed. Default: 5000. */
  ttl?: number;
}

/** Options of RedisStore. */
export interface RedisStoreOptions {
  /** The app's ioredis client (`new Redis(…)` or `new Cluster(…)`). The store never connects, quits or duplicates it. */
  client: Redis | Cluster;
  /** Start of every key and channel name, so several apps can share one Redis. No `{` or `}` (hash tags are the store's). Default: `'tg:'`. */
  prefix?: string;
  /** Longest any Redis call may take, in ms, before it fails with StoreError (the guard answers 503). Default: 250. */
  commandTimeout?: number;
  /**
   * A second ioredis connection in subscriber mode (e.g. `client.duplicate()`, made by the app). With it the store
   * keeps a near-cache of revocation lookups and `revoke`/`revokeSubject` resolve only once every instance listening
   * has dropped its cached entry. Default: none (every lookup goes to Redis).
   */
  subscriber?: Redis | Cluster;
  /** Near-cache size and lifetime, or `false` to use `subscriber` only to confirm revocations. Default: `{ max: 10 000, ttl: 5000 }`. */
  nearCache?: RedisNearCacheOptions | false;
  /** Longest `revoke` waits for the other instances to confirm their near-cache dropped the token, in ms. Default: 1000. */
  confirmTimeout?: number;
  /** Usage write-behind: buffered uses are written at most this often, in ms. Default: 1000. */
  usageFlushInterval?: number;
  /** Usage write-behind: a buffer of this many distinct tokens is written at once. Default: 500. */
  usageBatchSize?: number;
  /** How long a token's usage is kept after its last use, in ms (`0` keeps it until deleted). Default: 30 days. */
  usageTtl?: number;
}

/** Counters for monitoring a RedisStore. */
export interface RedisStoreStats {
  /** Whether the near-cache is in use right now (off until subscribed, and whenever the subscriber is disconnected). */
  nearCacheEnabled: boolean;
  /** Revocation lookups answered from the near-cache. */
  nearCacheHits: number;
  /** Revocation lookups that went to Redis. */
  nearCacheMisses: number;
  /** Invalidation messages received (foreign ones included). */
  invalidations: number;
  /**
   * Messages on the store's channels that it could not have sent (wrong JSON, shape or size: someone else publishing
   * there). Each one dropped the whole near-cache, since something may have been revoked that it cannot name.
   */
  foreignMessages: number;
  /** Uses waiting to be written. */
  usageBuffered: number;
  /** Uses lost because their batch could not be written. */
  usageDropped: number;
}

// --- Lua. Registered once per client with defineCommand: ioredis sends EVALSHA and falls back to EVAL on NOSCRIPT.

const CONSUME_LUA = `
-- One request against every limit of one token: all counters are charged, or none. GCRA in exact integers, step for
-- step as gcraStep in src/stores/gcra.ts (same operations in the same order, so both give the same doubles): a TAT
-- is q + r/limit ms (0 <= r < limit), stored as the text "q:r:limit".
-- KEYS[i]: counter i; all keys share the token's hash tag (one slot).
-- ARGV[1]: now (whole ms); ARGV[2i], ARGV[2i+1]: limit and window (whole ms) of counter i (validated by the caller);
-- ARGV[2 * #KEYS + 2]: how long a counter is kept past its TAT (ms).
local now = tonumber(ARGV[1])
local slack = tonumber(ARGV[2 * #KEYS + 2])
local allowed = true
local retry = 0
local tats = {}
local ttls = {}
local out = {}
for i = 1, #KEYS do
  local limit = tonumber(ARGV[2 * i])
  local window = tonumber(ARGV[2 * i + 1])
  -- The emission interval window / limit as whole ms (iq) plus a remainder in 1/limit ms (ir).
  local iq = math.floor(window / limit)
  local ir = window - iq * limit
  -- A new counter, or one whose TAT has passed, starts from now.
  local q, r = now, 0
  local stored = redis.call('GET', KEYS[i])
  if stored then
    local sq, sr, sl = string.match(stored, '^(%-?%d+):(%d+):(%d+)$')
    if sq then
      sq, sr, sl = tonumber(sq), tonumber(sr), tonumber(sl)
      -- Anything else was not written by us: fail rather than guess a count.
      if sl < 1 or sr >= sl then return redis.error_reply('TGCORRUPT counter is malformed') end
      if sl ~= limit then
        -- The limit changed: re-expressed in 1/limit ms, rounded up (never a fraction of a ms of extra room).
        sr = math.ceil((sr * limit) / sl)
        if sr >= limit then
          sq = sq + 1
          sr = sr - limit
        end
      end
    else
      -- A bare number is a TAT written by an earlier version (a float): rounded up to whole ms.
      sq = tonumber(stored)
      if sq == nil or sq ~= sq or sq == math.huge or sq == -math.huge then return redis.error_reply('TGCORRUPT counter is not a number') end
      sq = math.ceil(sq)
      sr = 0
    end
    if sq >= now then
      q = sq
      r = sr
    end
  end
  -- The TAT this request would move the counter to, as how far ahead of now it is: dq + dr/limit ms.
  local dr = r + ir
  local dq = q + iq - now
  if dr >= limit then
    dr = dr - limit
    dq = dq + 1
  end
  if dq < window or (dq == window and dr == 0) then
    -- Room. %.17g writes every digit of these integers (Lua's own number format keeps only 14).
    tats[i] = string.format('%.17g:%.17g:%.17g', now + dq, dr, limit)
    -- A TAT in the past is worth nothing: the key expires once it is reached, plus ARGV slack (COUNTER_TTL_SLACK_MS
    -- in gcra.ts: the TTL runs on Redis's clock, the TAT on the caller's).
    ttls[i] = dq + (dr > 0 and 1 or 0) + slack
    out[#out + 1] = string.format('%.17g', math.floor(((window - dq) * limit - dr) / window))
    out[#out + 1] = string.format('%.17g', dq + dr / limit)
  else
    -- No room in this window: nothing is charged; retry once the excess (rounded up to whole ms) has passed.
    allowed = false
    local rt = dq - window + (dr > 0 and 1 or 0)
    if rt > retry then retry = rt end
    out[#out + 1] = '0'
    out[#out + 1] = string.format('%.17g', q - now + r / limit)
  end
end
-- All or nothing: charge only when every counter had room.
if allowed then
  for i = 1, #KEYS do
    redis.call('SET', KEYS[i], tats[i], 'PX', string.format('%.17g', ttls[i]))
  end
end
return { allowed and 1 or 0, string.format('%.17g', retry), unpack(out) }
`;

const USE_LUA = `
-- Takes one use of an API key. KEYS[1]: the key's record (a hash: rec = JSON, rem = uses left).
-- A string at the key makes HGET fail with WRONGTYPE, which reaches the caller as an error (never a use).
local left = redis.call('HGET', KEYS[1], 'rem')
if not left then
  -- No uses left field: an unknown key, or one without a use limit. But a record whose JSON carries
  -- "remaining" was meant to be limited (another writer, a migration): answering "unlimited" would hand out
  -- uses forever, so it is an error. Only this path decodes the JSON; a limited key never pays for it.
  local rec = redis.call('HGET', KEYS[1], 'rec')
  if not rec then return nil end
  local ok, r = pcall(cjson.decode, rec)
  if not ok then return redis.error_reply('TGCORRUPT API key record is not valid JSON') end
  if type(r) == 'table' and r.remaining ~= nil then
    return redis.error_reply('TGCORRUPT API key record carries remaining but has no uses left field')
  end
  return nil
end
local n = tonumber(left)
if n == nil then return redis.error_reply('TGCORRUPT uses left is not a number') end
-- None left: refuse without going below zero.
if n <= 0 then return -1 end
return redis.call('HINCRBY', KEYS[1], 'rem', -1)
`;

const PUT_LUA = `
-- Stores an API key record, replacing any: the JSON and the uses left change together.
-- KEYS[1]: the record hash. ARGV[1]: record JSON (without uses left); ARGV[2]: uses left, '' for unlimited.
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'rec', ARGV[1])
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'rem', ARGV[2]) end
return 1
`;

const UPDATE_LUA = `
-- Replaces a record's JSON only if it is still the one the caller merged the patch into (optimistic lock; the
-- caller re-reads and retries otherwise). Uses left are a separate field, so concurrent uses never conflict.
-- KEYS[1]: the record hash. ARGV[1]: JSON read; ARGV[2]: new JSON; ARGV[3]: 'keep', 'del' or new uses left.
local cur = redis.call('HGET', KEYS[1], 'rec')
-- Gone: nothing to update.
if not cur then return { 0 } end
-- Changed since it was read.
if cur ~= ARGV[1] then return { 1 } end
redis.call('HSET', KEYS[1], 'rec', ARGV[2])
if ARGV[3] == 'del' then
  redis.call('HDEL', KEYS[1], 'rem')
elseif ARGV[3] ~= 'keep' then
  redis.call('HSET', KEYS[1], 'rem', ARGV[3])
end
-- The uses left as they are now (absent when unlimited), for the record returned to the caller.
return { 2, redis.call('HGET', KEYS[1], 'rem') }
`;

/**
 * A revocation script: stores the entry with a TTL equal to the token's remaining life, never shortening a live
 * one, then publishes the invalidation so every instance drops its near-cached lookup. `merge` says how the
 * entry's time field combines with a live one (`first`: keep the first revocation time; `max`: latest cut-off).
 */
function revocationLua(field: 'at' | 'before', merge: 'first' | 'max'): string {
  return `
-- KEYS[1]: the revocation entry, JSON {"${field}": ms, "exp": ms or null}. ARGV[1]: now; ARGV[2]: ${field};
-- ARGV[3]: expiry ('' = kept until deleted); ARGV[4]: invalidation channel; ARGV[5]: invalidation message.
local now = tonumber(ARGV[1])
local value = tonumber(ARGV[2])
local exp = tonumber(ARGV[3])
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, old = pcall(cjson.decode, cur)
  -- Not an entry we wrote: refuse rather than overwrite something we do not understand.
  if not ok or type(old) ~= 'table' or type(old.${field}) ~= 'number' or (old.exp ~= cjson.null and type(old.exp) ~= 'number') then
    return redis.error_reply('TGCORRUPT revocation entry is malformed')
  end
  -- Only a live entry is merged with (the times are the caller's clock, not Redis's).
  if old.exp == cjson.null or old.exp > now then
    ${merge === 'first' ? `value = old.${field}` : `if old.${field} > value then value = old.${field} end`}
    -- Never shorten: kept-forever wins, else the later expiry.
    if old.exp == cjson.null then exp = nil elseif exp ~= nil and old.exp > exp then exp = old.exp end
  end
end
local entry = '{"${field}":' .. string.format('%.17g', value) .. ',"exp":' .. (exp and string.format('%.17g', exp) or 'null') .. '}'
if exp then
  -- The entry lives as long as the token could: after that the token is refused as expired anyway.
  redis.call('SET', KEYS[1], entry, 'PX', math.max(1, math.ceil(exp - now)))
else
  redis.call('SET', KEYS[1], entry)
end
-- Who must confirm: the connections subscribed to the channel now, counted in the same atomic step. (Not PUBLISH's
-- count, which includes pattern subscribers such as a debugging PSUBSCRIBE * that would never confirm.)
local listening = redis.call('PUBSUB', 'NUMSUB', ARGV[4])[2]
-- In the same script, so no instance can read the new entry before the invalidation is on its way.
redis.call('PUBLISH', ARGV[4], ARGV[5])
return listening
`;
}

const USAGE_LUA = `
-- Merges a batch of uses into one token's usage, with the rules of mergeUsage (src/stores/usage.ts).
-- KEYS[1]: the usage hash (count, first, at, ip, ua, ips, min, minc).
-- ARGV: 1 uses; 2 first use (ms); 3 latest use (ms); 4 its IP ('' = none); 5 its User-Agent ('' = none);
--       6 the batch's distinct IPs, most recent first, comma-separated; 7 the latest use's minute; 8 uses in it;
--       9 TTL (ms, 0 = none); 10 how many recent IPs to keep.
local key = KEYS[1]
redis.call('HINCRBY', key, 'count', ARGV[1])
local first = tonumber(redis.call('HGET', key, 'first'))
if first == nil or tonumber(ARGV[2]) < first then redis.call('HSET', key, 'first', ARGV[2]) end
-- Batches from several instances may land out of order: the latest use keeps its time, IP and User-Agent.
local at = tonumber(redis.call('HGET', key, 'at'))
local latest = at == nil or tonumber(ARGV[3]) >= at
if latest then
  redis.call('HSET', key, 'at', ARGV[3])
  if ARGV[4] ~= '' then redis.call('HSET', key, 'ip', ARGV[4]) end
  if ARGV[5] ~= '' then redis.call('HSET', key, 'ua', ARGV[5]) end
end
-- Recent IPs: the newer list first, duplicates dropped, capped.
local old = redis.call('HGET', key, 'ips') or ''
local newer, older = ARGV[6], old
if not latest then newer, older = old, ARGV[6] end
local seen, list = {}, {}
for ip in string.gmatch(newer .. ',' .. older, '[^,]+') do
  if not seen[ip] and #list < tonumber(ARGV[10]) then seen[ip] = true; list[#list + 1] = ip end
end
redis.call('HSET', key, 'ips', table.concat(list, ','))
-- Uses in the latest minute: a later minute starts over, the same minute adds up, an older one is ignored.
local minute = tonumber(redis.call('HGET', key, 'min'))
if minute == nil or tonumber(ARGV[7]) > minute then
  redis.call('HSET', key, 'min', ARGV[7], 'minc', ARGV[8])
elseif tonumber(ARGV[7]) == minute then
  redis.call('HINCRBY', key, 'minc', ARGV[8])
end
if ARGV[9] ~= '0' then redis.call('PEXPIRE', key, ARGV[9]) end
return 1
`;

const CLAIM_LUA = `
-- Claims a one-time value (e.g. a DPoP proof) until it expires. KEYS[1]: the claim, holding its expiry (ms).
-- ARGV[1]: now (ms); ARGV[2]: expiresAt (ms). Returns 1 when this call claimed it, 0 when a live claim holds it.
-- Not SET NX PX alone: liveness is judged by the caller's clock (as revocations), so the expiry is kept in the value.
local now = tonumber(ARGV[1])
local exp = tonumber(ARGV[2])
local cur = redis.call('GET', KEYS[1])
if cur then
  local held = tonumber(cur)
  -- Anything but a number was not written by us: fail rather than grant what may be a replay.
  if held == nil then return redis.error_reply('TGCORRUPT claim is not a number') end
  -- Still live: refused, and left exactly as it is (a refused claim never extends the live one).
  if held > now then return 0 end
end
-- A window that is already over needs no entry: nothing can be replayed inside it.
if exp <= now then return 1 end
-- The TTL only frees memory once the claim is worthless; %.17g keeps the expiry exact.
redis.call('SET', KEYS[1], string.format('%.17g', exp), 'PX', math.ceil(exp - now))
return 1
`;

const CLAIM_IN_GROUP_LUA = `
-- Claims a one-time value inside a group whose live claims are capped (e.g. DPoP proofs of one key).
-- KEYS[1]: the group, a sorted set of its claims (member: the claim's key, score: its expiry in ms).
-- ARGV[1]: now (ms); ARGV[2]: expiresAt (ms); ARGV[3]: the claim's key; ARGV[4]: most live claims (0: no cap).
-- Returns 1 when this call claimed it, 0 when a live claim holds it or the group is full (nothing is stored then).
local now = tonumber(ARGV[1])
local exp = tonumber(ARGV[2])
local max = tonumber(ARGV[4])
-- Claims are live while now < expiry (the caller's clock): the rest are worthless, and leave the count.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
-- Still live: refused, and left exactly as it is (a refused claim never extends the live one).
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then return 0 end
-- A window that is already over needs no entry: nothing can be replayed inside it.
if exp <= now then return 1 end
-- Full: refused rather than evict a live claim (which would let its value be replayed).
if max > 0 and redis.call('ZCARD', KEYS[1]) >= max then return 0 end
redis.call('ZADD', KEYS[1], exp, ARGV[3])
-- The set lives as long as its latest claim; the TTL only frees memory once every claim in it is worthless.
local ttl = math.ceil(exp - now)
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
`;

const SCRIPTS = {
  tokenGuardConsume: { lua: CONSUME_LUA },
  tokenGuardUse: { lua: USE_LUA, numberOfKeys: 1 },
  tokenGuardPut: { lua: PUT_LUA, numberOfKeys: 1 },
  tokenGuardUpdate: { lua: UPDATE_LUA, numberOfKeys: 1 },
  tokenGuardRevoke: { lua: revocationLua('at', 'first'), numberOfKeys: 1 },
  tokenGuardRevokeSubject: { lua: revocationLua('before', 'max'), numberOfKeys: 1 },
  tokenGuardUsage: { lua: USAGE_LUA, numberOfKeys: 1 },
  tokenGuardClaim: { lua: CLAIM_LUA, numberOfKeys: 1 },
  tokenGuardClaimInGroup: { lua: CLAIM_IN_GROUP_LUA, numberOfKeys: 1 },
} as const;

type Arg = string | number;
type Reply = string | number | null | Reply[];

/** The commands defineCommand adds to a client (and its pipelines). */
interface ScriptCommands {
  tokenGuardConsume(numKeys: number, ...args: Arg[]): Promise<Reply[]>;
  tokenGuardUse(key: string): Promise<number | null>;
  tokenGuardPut(key: string, json: string, remaining: string): Promise<number>;
  tokenGuardUpdate(key: string, read: string, next: string, remaining: string): Promise<Reply[]>;
  tokenGuardRevoke(key: string, now: Arg, at: Arg, exp: Arg, channel: string, message: string): Promise<number>;
  tokenGuardRevokeSubject(key: string, now: Arg, before: Arg, exp: Arg, channel: string, message: string): Promise<number>;
  tokenGuardUsage(key: string, ...args: Arg[]): Promise<number>;
  tokenGuardClaim(key: string, now: Arg, expiresAt: Arg): Promise<number>;
  tokenGuardClaimInGroup(key: string, now: Arg, expiresAt: Arg, member: string, max: Arg): Promise<number>;
}

interface UsagePipeline {
  tokenGuardUsage(key: string, ...args: Arg[]): UsagePipeline;
  exec(): Promise<[Error | null, unknown][] | null>;
}

/** A revocation entry as stored: the times, compared against the caller's `now` on every read. */
interface RevocationEntry {
  time: number;
  exp: number | null;
}

/** What the near-cache keeps per token id or subject: the entry, or null for "none". */
interface Cached {
  entry: RevocationEntry | null;
}

/** An invalidation message on `<prefix>{c}:inv`. */
interface Invalidation {
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
}

interface PendingConfirm {
  got: number;
  needed: number;
  done: () => void;
}

/**
 * The longest invalidation message we send or accept, in UTF-16 units. Longer ones are not ours: parsing megabytes
 * that anyone may publish is not worth it. An id too long for it is sent as "drop everything" instead.
 */
const MAX_INVALIDATION_CHARS = 65_536;
const INVALIDATION_KEYS = new Set(['o', 'n', 'a', 't', 's']);

/**
 * The invalidation in `message`, or undefined when it is not one we could have sent: anything but a JSON object with
 * exactly our fields and types (`null`, a number, an array, a huge payload, bad JSON, a field of the wrong type).
 */
function readInvalidation(message: unknown): Invalidation | undefined {
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
  return o as unknown as Invalidation;
}

const DAY = 86_400_000;
const UPDATE_ATTEMPTS = 8;
const SPECIAL = /[%{}:]/;

// Ids and subjects are escaped so that `}` or `:` in them can neither end the hash tag early nor make two
// different (id, name) pairs spell the same key.
function esc(s: string): string {
  return SPECIAL.test(s) ? s.replace(/[%{}:]/g, (c) => `%${c.charCodeAt(0).toString(16)}`) : s;
}

/** The longest delay setTimeout honours (2^31 − 1 ms, about 24.8 days): anything longer fires at once. */
const MAX_DELAY_MS = 2_147_483_647;

// A developer mistake in options is a TypeError at construction, never a surprise per request.
function option(name: string, value: unknown, fallback: number, expected: string, ok: (n: number) => boolean): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || !ok(value)) throw new StoreArgumentError(`RedisStore: ${name} must be ${expected} (got ${String(value)})`);
  return value;
}

/**
 * A delay handed to setTimeout (or used as a cache lifetime). Never 0 (a timeout that fires at once, a flush loop, or
 * for lru-cache "never expires") and never above 2^31 − 1 ms, which Node turns into 1 ms with only a warning.
 */
function delay(name: string, value: unknown, fallback: number): number {
  return option(name, value, fallback, `a number of milliseconds from 1 to ${MAX_DELAY_MS}`, (n) => n >= 1 && n <= MAX_DELAY_MS);
}

/** A count (a size or a batch): a positive integer. */
function count(name: string, value: unknown, fallback: number): number {
  return option(name, value, fallback, 'a positive integer', (n) => Number.isSafeInteger(n) && n >= 1);
}

function num(v: Reply | undefined): number {
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isFinite(n)) throw new StoreError('Redis returned a malformed rate-limit reply');
  return n;
}

function parseJson(raw: string, what: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch (e) {
    throw new StoreError(`${what} in Redis is not valid JSON`, { cause: e });
  }
}

/**
 * Parses a record's `rec` JSON. We never write `remaining` there (uses left live in `rem`, where `useApiKey` takes
 * them atomically), so JSON that carries it came from another writer: read as limited, it would never be spent.
 */
function recordJson(raw: string): ApiKeyRecord {
  const record = parseJson(raw, 'API key record') as ApiKeyRecord;
  if (record && typeof record === 'object' && Object.hasOwn(record, 'remaining')) {
    throw new StoreError('API key record in Redis carries remaining in its JSON; uses left belong in the rem field (store it again with putApiKey)');
  }
  return record;
}

function parseEntry(raw: string | null, field: 'at' | 'before'): RevocationEntry | null {
  if (raw === null) return null;
  const v = parseJson(raw, 'revocation entry');
  // A revocation we cannot read must never read as "not revoked": fail closed.
  if (!v || typeof v !== 'object') throw new StoreError('revocation entry in Redis is malformed');
  const o = v as Record<string, unknown>;
  const time = o[field];
  const exp = o['exp'];
  if (typeof time !== 'number' || (exp !== null && typeof exp !== 'number')) throw new StoreError('revocation entry in Redis is malformed');
  return { time, exp };
}

function live(entry: RevocationEntry | null, now: number): entry is RevocationEntry {
  return entry !== null && (entry.exp === null || entry.exp > now);
}

function toState(token: RevocationEntry | null, subject: RevocationEntry | null, now: number): RevocationState | undefined {
  let state: RevocationState | undefined;
  if (live(token, now)) state = { revokedAt: token.time };
  if (live(subject, now)) (state ??= {}).subjectRevokedBefore = subject.time;
  return state;
}

function usesLeft(remaining: number | undefined): string {
  if (remaining === undefined) return '';
  if (!Number.isSafeInteger(remaining)) throw new StoreArgumentError(`RedisStore: remaining must be an integer (got ${String(remaining)})`);
  return String(remaining);
}

/**
 * Keeps token state in Redis so that every app instance shares API key records, revocations, rate-limit counters
 * and usage. Takes the app's ioredis client (standalone `Redis` or `Cluster`); never opens a connection of its own.
 *
 * - Every key starts with `prefix` and carries a hash tag per token (`tg:{t:<id>}:…`), so one token's keys share
 *   a Cluster slot and multi-key scripts work on Cluster.
 * - Counters (GCRA, all-or-nothing across limits) and API key uses are atomic Lua scripts.
 * - Revocation entries expire with the token (TTL = expiresAt − now) and keep their times, so reads compare with
 *   the caller's `now`.
 * - One-time claims (`claimOnce`, e.g. DPoP proofs) are `prefix{o:<key>}`, holding their expiry, with a TTL to match;
 *   claims in a group (the guard's DPoP proofs, one group per proof key) are members of the sorted set
 *   `prefix{g:<group>}` scored by expiry, so `maxPerGroup` bounds each group as MemoryStore's `maxClaims` bounds it.
 *   Revocations and claims must never be evicted: run Redis with `maxmemory-policy noeviction` (every `volatile-*`
 *   policy may drop them, since they carry a TTL).
 * - Every call is bounded by `commandTimeout`; a failure or timeout is a StoreError, which the guard answers
 *   with 503 `store.unavailable`. ioredis reconnects on its own, so the store recovers without a restart.
 * - Usage is buffered and written in pipelined batches (`usageFlushInterval`, `usageBatchSize`, `flush()`).
 * - With a `subscriber`, revocation lookups are near-cached and invalidated on every instance through pub/sub;
 *   `revoke` resolves only once every listening instance has confirmed, so the next request anywhere is refused.
 *
 * Exported from `token-guard/redis`.
 * @example
 * import { Redis } from 'ioredis';
 * import { RedisStore } from 'token-guard/redis';
 * const client = new Redis(process.env.REDIS_URL);
 * const store = new RedisStore({ client, subscriber: client.duplicate(), prefix: 'orders-api:' });
 * app.use(tokenGuard({ jwt, store }));
 */
export class RedisStore implements TokenStore {
  private readonly client: Redis | Cluster;
  private readonly cmd: ScriptCommands;
  private readonly subscriber: Redis | Cluster | undefined;
  private readonly prefix: string;
  private readonly timeoutMs: number;
  private readonly confirmMs: number;
  private readonly flushMs: number;
  private readonly batchSize: number;
  private readonly usageTtl: number;
  private readonly id = randomBytes(8).toString('hex');
  private readonly channel: string;
  private readonly ackChannel: string;

  private readonly tokenCache: LRUCache<string, Cached> | undefined;
  private readonly subjectCache: LRUCache<string, Cached> | undefined;
  private cacheOn = false;
  /**
   * Bumped by every invalidation, (re)subscription, disconnect and local revocation: a lookup started before a bump
   * must not be cached.
   */
  private epoch = 0;
  /** Bumped whenever the subscription is lost or restarted: a SUBSCRIBE started before a bump must not turn the cache on. */
  private generation = 0;
  private seq = 0;
  private readonly pending = new Map<number, PendingConfirm>();
  private readonly handlers: [string, (...args: never[]) => void][] = [];

  private usage = new Map<string, TokenUsage>();
  private flushTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly counters = { hits: 0, misses: 0, invalidations: 0, foreign: 0, dropped: 0 };

  constructor(options: RedisStoreOptions) {
    if (!options || typeof options !== 'object') throw new StoreArgumentError('RedisStore: expected options { client, … }');
    const { client, subscriber } = options;
    if (!client || typeof (client as { defineCommand?: unknown }).defineCommand !== 'function') {
      throw new StoreArgumentError('RedisStore: options.client must be an ioredis Redis or Cluster instance');
    }
    if (subscriber !== undefined && typeof (subscriber as { subscribe?: unknown }).subscribe !== 'function') {
      throw new StoreArgumentError('RedisStore: options.subscriber must be an ioredis Redis or Cluster instance');
    }
    if (subscriber === client) throw new StoreArgumentError('RedisStore: options.subscriber must be a second connection (a subscribed connection cannot run commands)');
    const prefix = options.prefix ?? 'tg:';
    if (typeof prefix !== 'string' || /[{}]/.test(prefix)) throw new StoreArgumentError('RedisStore: prefix must be a string without { or } (the store adds its own hash tags)');
    this.client = client;
    this.subscriber = subscriber;
    this.prefix = prefix;
    this.timeoutMs = delay('commandTimeout', options.commandTimeout, 250);
    this.confirmMs = delay('confirmTimeout', options.confirmTimeout, 1000);
    this.flushMs = delay('usageFlushInterval', options.usageFlushInterval, 1000);
    this.batchSize = count('usageBatchSize', options.usageBatchSize, 500);
    // PEXPIRE takes whole ms; 0 is documented as "kept until deleted" and never reaches Redis.
    this.usageTtl = option('usageTtl', options.usageTtl, 30 * DAY, 'whole milliseconds (0 keeps usage until deleted)', (n) => Number.isSafeInteger(n) && n >= 0);
    const nearCache = options.nearCache;
    if (nearCache !== undefined && nearCache !== false && (nearCache === null || typeof nearCache !== 'object')) {
      throw new StoreArgumentError('RedisStore: nearCache must be { max?, ttl? } or false');
    }
    // Checked with or without a subscriber: an option that is silently ignored is a mistake waiting to surface.
    const cacheMax = nearCache ? count('nearCache.max', nearCache.max, 10_000) : 10_000;
    // Whole ms: lru-cache refuses a fractional ttl and reads 0 as "never expires".
    const cacheTtl = nearCache ? option('nearCache.ttl', nearCache.ttl, 5000, `whole milliseconds from 1 to ${MAX_DELAY_MS}`, (n) => Number.isInteger(n) && n >= 1 && n <= MAX_DELAY_MS) : 5000;
    // Channels use the same brace-after-prefix shape as keys, so distinct prefixes never share a channel either.
    this.channel = `${prefix}{c}:inv`;
    this.ackChannel = `${prefix}{c}:ack:${this.id}`;

    // Defining the same script again just replaces it: several stores may share one client.
    for (const [name, def] of Object.entries(SCRIPTS)) client.defineCommand(name, def);
    this.cmd = client as unknown as ScriptCommands;

    if (subscriber && nearCache !== false) {
      this.tokenCache = new LRUCache({ max: cacheMax, ttl: cacheTtl });
      this.subjectCache = new LRUCache({ max: cacheMax, ttl: cacheTtl });
    }
    if (subscriber) this.listen(subscriber);
  }

  // --- Plumbing

  /** `t`: a token id's keys; `s`: a subject's; `k`: an API key record (by hash); `o`: a one-time claim; `g`: a group of claims. */
  private key(kind: 't' | 's' | 'k' | 'o' | 'g', id: string, part?: string): string {
    return part === undefined ? `${this.prefix}{${kind}:${esc(id)}}` : `${this.prefix}{${kind}:${esc(id)}}:${part}`;
  }

  /** Bounds a Redis call by commandTimeout and turns every failure into a StoreError. */
  private call<T>(what: string, promise: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new StoreError(`Redis ${what} timed out after ${this.timeoutMs} ms`)), this.timeoutMs);
      promise.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err instanceof StoreError ? err : new StoreError(`Redis ${what} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
        },
      );
    });
  }

  private listen(sub: Redis | Cluster): void {
    const on = (event: string, fn: (...args: never[]) => void): void => {
      // An exception thrown by a listener escapes through the client's emit into the process (uncaught: every
      // instance down). None may: a handler that fails drops the near-cache instead, the safe side.
      const guarded = (...args: never[]): void => {
        try {
          fn(...args);
        } catch {
          this.dropCache();
        }
      };
      sub.on(event, guarded as (...args: unknown[]) => void);
      this.handlers.push([event, guarded]);
    };
    on('message', ((channel: unknown, message: unknown) => this.onMessage(channel, message)) as (...args: never[]) => void);
    // A subscriber that is not connected may miss invalidations: stop trusting the cache until resubscribed.
    const down = (): void => this.cacheOff();
    on('close', down);
    on('end', down);
    on('reconnecting', down);
    on('ready', () => this.resubscribe());
    this.resubscribe();
  }

  /** Subscribes without ever leaving a rejected promise unhandled (which would end the process). */
  private resubscribe(): void {
    this.subscribe().catch(() => this.cacheOff());
  }

  /** Forgets every cached lookup: for when something was revoked and we cannot tell what. */
  private dropCache(): void {
    this.epoch++;
    this.tokenCache?.clear();
    this.subjectCache?.clear();
  }

  private async subscribe(): Promise<void> {
    this.cacheOff();
    // Not the epoch: an invalidation or a local revoke during SUBSCRIBE must not keep the cache off for good.
    const generation = this.generation;
    const sub = this.subscriber;
    if (!sub || this.closed) return;
    try {
      await sub.subscribe(this.channel, this.ackChannel);
    } catch {
      // Not subscribed: the cache stays off; the next 'ready' tries again.
      return;
    }
    // Only a subscription that has not been interrupted since it started makes the cache trustworthy.
    if (generation === this.generation && !this.closed && this.tokenCache) {
      this.cacheOn = true;
      // Reads in flight started before Redis processed SUBSCRIBE: a revocation published in between was never
      // heard here, so none of them may be cached (they also saw cacheOn false; this bump makes it doubly so).
      this.epoch++;
    }
  }

  private cacheOff(): void {
    this.cacheOn = false;
    this.generation++;
    this.epoch++;
    this.tokenCache?.clear();
    this.subjectCache?.clear();
  }

  private onMessage(channel: unknown, message: unknown): void {
    if (channel === this.ackChannel) {
      const seq = typeof message === 'string' && /^\d{1,15}$/.test(message) ? Number(message) : undefined;
      if (seq !== undefined) this.confirmed(seq);
      else this.counters.foreign++;
      return;
    }
    if (channel !== this.channel) return;
    this.counters.invalidations++;
    const msg = readInvalidation(message);
    if (msg === undefined) {
      // Not ours (anyone who can reach Redis can publish here): something may have been revoked and we cannot tell
      // what, so nothing cached can be trusted.
      this.counters.foreign++;
      this.dropCache();
      return;
    }
    this.epoch++;
    if (msg.t !== undefined) this.tokenCache?.delete(msg.t);
    else if (msg.s !== undefined) this.subjectCache?.delete(msg.s);
    // Ours, naming nothing: an id too long to send, so everything goes.
    else this.dropCache();
    if (msg.a !== 1) return;
    if (msg.o === this.id) this.confirmed(msg.n);
    else this.client.publish(`${this.prefix}{c}:ack:${msg.o}`, String(msg.n)).catch(() => undefined);
  }

  private confirmed(seq: number): void {
    const p = this.pending.get(seq);
    if (!p) return;
    p.got++;
    if (p.got >= p.needed) p.done();
  }

  /** How many connections listen to the invalidation channel. On Cluster NUMSUB counts one node only, so ask each. */
  private async countListeners(): Promise<number> {
    const cluster = this.client as Cluster;
    let total = 0;
    await Promise.all(
      cluster.nodes('all').map(async (node) => {
        const reply = (await node.pubsub('NUMSUB', this.channel)) as [string, number];
        total += Number(reply[1]) || 0;
      }),
    );
    return total;
  }

  /**
   * Writes a revocation and publishes its invalidation (one script), then, with a subscriber, waits until every
   * instance listening has dropped its cached lookup, so the next request anywhere reads the revocation.
   */
  private async revocation(what: 't' | 's', id: string, write: (message: string) => Promise<number>): Promise<void> {
    const confirm = this.subscriber !== undefined && !this.closed;
    const seq = ++this.seq;
    const message: Invalidation = { o: this.id, n: seq, a: confirm ? 1 : 0 };
    if (what === 't') message.t = id;
    else message.s = id;
    // Receivers treat a longer message as foreign: name nothing instead, which drops every cached lookup.
    if (JSON.stringify(message).length > MAX_INVALIDATION_CHARS) delete message[what];
    if (!confirm) {
      await this.call('revoke', write(JSON.stringify(message)));
      this.localInvalidate(what, id);
      return;
    }
    let done!: () => void;
    const confirmedAll = new Promise<void>((resolve) => (done = resolve));
    // Registered before the write: an acknowledgement may arrive before the write's own reply.
    const pending: PendingConfirm = { got: 0, needed: Number.POSITIVE_INFINITY, done };
    this.pending.set(seq, pending);
    try {
      const clustered = (this.client as Cluster).isCluster === true;
      // Counted before publishing: a connection that subscribes later has an empty cache and need not answer.
      const expected = clustered ? await this.call('PUBSUB NUMSUB', this.countListeners()) : undefined;
      const listening = await this.call('revoke', write(JSON.stringify(message)));
      this.localInvalidate(what, id);
      pending.needed = expected ?? listening;
      if (pending.got >= pending.needed) return;
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), this.confirmMs)));
      const outcome = await Promise.race([confirmedAll, timedOut]);
      clearTimeout(timer);
      if (outcome === 'timeout') {
        throw new StoreError(
          `revocation stored, but ${pending.needed - pending.got} of ${pending.needed} instance(s) did not confirm within ${this.confirmMs} ms; ` +
            'their near-cache drops it within its ttl',
        );
      }
    } finally {
      this.pending.delete(seq);
    }
  }

  private localInvalidate(what: 't' | 's', id: string): void {
    this.epoch++;
    if (what === 't') this.tokenCache?.delete(id);
    else this.subjectCache?.delete(id);
  }

  // --- API key records

  getApiKey(hash: string): Promise<ApiKeyRecord | undefined> {
    // A promise either way: a bad argument rejects, as every other failure of this method does.
    try {
      checkId('getApiKey', 'hash', hash);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.call('HMGET', this.client.hmget(this.key('k', hash), 'rec', 'rem')).then(([rec, rem]) => this.toRecord(rec ?? null, rem ?? null));
  }

  private toRecord(rec: string | null, rem: string | null): ApiKeyRecord | undefined {
    if (rec === null) return undefined;
    // A record of the wrong shape is returned as it is: the guard refuses it with token.invalid.
    const record = recordJson(rec);
    if (rem !== null) {
      const n = Number(rem);
      if (!Number.isSafeInteger(n)) throw new StoreError('API key uses left in Redis is not an integer');
      if (record && typeof record === 'object') record.remaining = n;
    }
    return record;
  }

  async putApiKey(record: ApiKeyRecord): Promise<void> {
    checkPutApiKey(record);
    const { remaining, ...rest } = record;
    await this.call('put', this.cmd.tokenGuardPut(this.key('k', record.hash), JSON.stringify(rest), usesLeft(remaining)));
  }

  async updateApiKey(hash: string, patch: ApiKeyPatch): Promise<ApiKeyRecord | undefined> {
    checkUpdateApiKey(hash, patch);
    const key = this.key('k', hash);
    const remaining = !('remaining' in patch) ? 'keep' : patch.remaining === undefined ? 'del' : usesLeft(patch.remaining);
    for (let attempt = 0; attempt < UPDATE_ATTEMPTS; attempt++) {
      const [rec] = await this.call('HMGET', this.client.hmget(key, 'rec'));
      if (rec === null || rec === undefined) return undefined;
      // Refused like a read: merging would drop its `remaining` and silently make the key unlimited.
      const current = recordJson(rec);
      const { remaining: _ignored, ...next } = { ...current, ...patch, id: current.id, hash: current.hash, prefix: current.prefix, createdAt: current.createdAt };
      const json = JSON.stringify(next);
      const reply = await this.call('update', this.cmd.tokenGuardUpdate(key, rec, json, remaining));
      if (reply[0] === 0) return undefined;
      if (reply[0] === 2) return this.toRecord(json, typeof reply[1] === 'string' || typeof reply[1] === 'number' ? String(reply[1]) : null);
      // Changed between read and write: read again.
    }
    throw new StoreError(`updateApiKey: the record kept changing; gave up after ${UPDATE_ATTEMPTS} attempts`);
  }

  async deleteApiKey(hash: string): Promise<boolean> {
    checkId('deleteApiKey', 'hash', hash);
    return (await this.call('DEL', this.client.del(this.key('k', hash)))) > 0;
  }

  async useApiKey(hash: string): Promise<number | undefined> {
    checkId('useApiKey', 'hash', hash);
    const left = await this.call('use', this.cmd.tokenGuardUse(this.key('k', hash)));
    return left === null ? undefined : Number(left);
  }

  // --- Revocation

  async revoke(tokenId: string, options: { now: number; expiresAt?: number }): Promise<void> {
    checkRevoke(tokenId, options);
    const { now, expiresAt } = options;
    if (expiresAt !== undefined && expiresAt <= now) return;
    const key = this.key('t', tokenId, 'rev');
    await this.revocation('t', tokenId, (msg) => this.cmd.tokenGuardRevoke(key, now, now, expiresAt ?? '', this.channel, msg));
  }

  async revokeSubject(subject: string, options: { now: number; before: number; expiresAt?: number }): Promise<void> {
    checkRevokeSubject(subject, options);
    const { now, before, expiresAt } = options;
    if (expiresAt !== undefined && expiresAt <= now) return;
    const key = this.key('s', subject, 'rev');
    await this.revocation('s', subject, (msg) => this.cmd.tokenGuardRevokeSubject(key, now, before, expiresAt ?? '', this.channel, msg));
  }

  getRevocation(tokenId: string, subject: string | undefined, now: number): RevocationState | undefined | Promise<RevocationState | undefined> {
    // Synchronous like a cached answer (this method may answer either way).
    checkGetRevocation(tokenId, subject, now);
    if (this.cacheOn) {
      const token = this.tokenCache?.get(tokenId);
      const subj = subject === undefined ? undefined : this.subjectCache?.get(subject);
      // Answered locally, without a promise: the guard's hot path then costs no round trip at all.
      if (token && (subject === undefined || subj)) {
        this.counters.hits++;
        return toState(token.entry, subj?.entry ?? null, now);
      }
    }
    this.counters.misses++;
    return this.readRevocation(tokenId, subject, now);
  }

  private async readRevocation(tokenId: string, subject: string | undefined, now: number): Promise<RevocationState | undefined> {
    // Captured before the read is sent: only a read that started while the subscription was confirmed live can be
    // trusted to be followed by the invalidation of anything revoked after Redis answered it.
    const cacheable = this.cacheOn;
    const epoch = this.epoch;
    // Two keys in two slots (a token's and a subject's): two GETs, sent together.
    const [t, s] = await this.call(
      'GET',
      Promise.all([this.client.get(this.key('t', tokenId, 'rev')), subject === undefined ? Promise.resolve(null) : this.client.get(this.key('s', subject, 'rev'))]),
    );
    const token = parseEntry(t, 'at');
    const subj = parseEntry(s, 'before');
    // An invalidation, disconnect or resubscription since the read started may make what we read stale: use it,
    // do not keep it.
    if (cacheable && this.cacheOn && epoch === this.epoch) {
      this.tokenCache?.set(tokenId, { entry: token });
      if (subject !== undefined) this.subjectCache?.set(subject, { entry: subj });
    }
    return toState(token, subj, now);
  }

  // --- Rate limits

  async consume(tokenId: string, checks: readonly RateLimitCheck[], now: number): Promise<RateLimitResult> {
    checkConsume(tokenId, checks, now);
    if (checks.length === 0) return { allowed: true, retryAfterMs: 0, limits: [] };
    const args: Arg[] = [checks.length];
    for (const c of checks) args.push(this.key('t', tokenId, `rl:${esc(c.name)}`));
    args.push(now);
    for (const c of checks) args.push(c.limit, c.windowMs);
    args.push(COUNTER_TTL_SLACK_MS);
    const reply = await this.call('consume', this.cmd.tokenGuardConsume(...(args as [number, ...Arg[]])));
    if (!Array.isArray(reply) || reply.length !== 2 + 2 * checks.length) throw new StoreError('Redis returned a malformed rate-limit reply');
    const allowed = reply[0] === 1;
    const limits: RateLimitState[] = checks.map((c, i) => ({ name: c.name, limit: c.limit, remaining: num(reply[2 + 2 * i]), resetMs: num(reply[3 + 2 * i]) }));
    return { allowed, retryAfterMs: allowed ? 0 : num(reply[1]), limits };
  }

  // --- One-time claims

  async claimOnce(key: string, options: ClaimOptions): Promise<boolean> {
    const { now, expiresAt, group, maxPerGroup } = options;
    // NaN would reach Lua as a nil comparison error at best, a claim that never holds at worst: a caller bug.
    if (!Number.isFinite(now) || !Number.isFinite(expiresAt)) throw new StoreArgumentError('RedisStore: claimOnce needs finite now and expiresAt');
    checkClaimGroup('RedisStore', group, maxPerGroup);
    // A group's claims share one sorted set (one Cluster slot), so the cap and the claim are one atomic step.
    const won = await this.call(
      'claim',
      group === undefined
        ? this.cmd.tokenGuardClaim(this.key('o', key), now, expiresAt)
        : this.cmd.tokenGuardClaimInGroup(this.key('g', group), now, expiresAt, key, maxPerGroup ?? 0),
    );
    if (won !== 0 && won !== 1) throw new StoreError('Redis returned a malformed claim reply');
    return won === 1;
  }

  // --- Usage

  recordUsage(tokenId: string, usage: UsageEvent): void {
    checkRecordUsage(tokenId, usage);
    // The buffer holds each token's uses since the last flush, merged as a store would merge them.
    this.usage.set(tokenId, mergeUsage(this.usage.get(tokenId), usage));
    if (this.usage.size >= this.batchSize) void this.flush().catch(() => undefined);
    else this.flushTimer ??= setTimeout(() => void this.flush().catch(() => undefined), this.flushMs).unref();
  }

  async getUsage(tokenId: string): Promise<TokenUsage | undefined> {
    checkId('getUsage', 'tokenId', tokenId);
    const fields = await this.call('HMGET', this.client.hmget(this.key('t', tokenId, 'use'), 'count', 'first', 'at', 'ip', 'ua', 'ips', 'min', 'minc'));
    const [count, first, at, ip, ua, ips, minute, minuteCount] = fields;
    if (count === null || count === undefined) return undefined;
    const usage: TokenUsage = {
      count: Number(count),
      firstUsedAt: Number(first ?? at),
      lastUsedAt: Number(at),
      recentIps: typeof ips === 'string' && ips !== '' ? ips.split(',') : [],
      minute: Number(minute ?? 0),
      minuteCount: Number(minuteCount ?? 0),
    };
    if (![usage.count, usage.minuteCount].every(Number.isSafeInteger) || ![usage.firstUsedAt, usage.lastUsedAt, usage.minute].every(Number.isFinite)) {
      throw new StoreError('usage in Redis is malformed');
    }
    if (typeof ip === 'string') usage.lastIp = ip;
    if (typeof ua === 'string') usage.lastUserAgent = ua;
    return usage;
  }

  /** Writes buffered usage now, in one pipeline (on Cluster, one script call per token, sent together). */
  async flush(): Promise<void> {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.usage.size === 0) return;
    const batch = this.usage;
    this.usage = new Map();
    const ttl = this.usageTtl;
    let uses = 0;
    for (const u of batch.values()) uses += u.count;
    const args = (u: TokenUsage): Arg[] => [u.count, u.firstUsedAt, u.lastUsedAt, u.lastIp ?? '', u.lastUserAgent ?? '', u.recentIps.join(','), u.minute, u.minuteCount, ttl, RECENT_IPS_KEPT];
    try {
      if ((this.client as Cluster).isCluster === true) {
        await this.call(
          'usage',
          Promise.all([...batch].map(([id, u]) => this.cmd.tokenGuardUsage(this.key('t', id, 'use'), ...args(u)))),
        );
      } else {
        let pipeline = (this.client as Redis).pipeline() as unknown as UsagePipeline;
        for (const [id, u] of batch) pipeline = pipeline.tokenGuardUsage(this.key('t', id, 'use'), ...args(u));
        const results = await this.call('usage', pipeline.exec());
        const failed = results?.find(([err]) => err);
        if (failed) throw failed[0];
      }
    } catch (err) {
      // Not retried: a batch that may have been partly written would be counted twice.
      this.counters.dropped += uses;
      throw err instanceof StoreError ? err : new StoreError(`Redis usage write failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  // --- Lifecycle

  /** Counters for monitoring: near-cache hits and misses, invalidations and foreign messages, usage buffered and dropped. */
  stats(): RedisStoreStats {
    let usageBuffered = 0;
    for (const u of this.usage.values()) usageBuffered += u.count;
    return {
      nearCacheEnabled: this.cacheOn,
      nearCacheHits: this.counters.hits,
      nearCacheMisses: this.counters.misses,
      invalidations: this.counters.invalidations,
      foreignMessages: this.counters.foreign,
      usageBuffered,
      usageDropped: this.counters.dropped,
    };
  }

  /** Writes buffered usage, stops timers and unsubscribes. Never quits the clients the app passed in. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.cacheOff();
    const sub = this.subscriber;
    if (sub) {
      for (const [event, fn] of this.handlers) sub.off(event, fn as (...args: unknown[]) => void);
      this.handlers.length = 0;
      await this.call('UNSUBSCRIBE', sub.unsubscribe(this.channel, this.ackChannel)).catch(() => undefined);
    }
    await this.flush();
  }
}
