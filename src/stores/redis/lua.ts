// The Lua scripts of RedisStore, one commented constant each: every multi-step update is one atomic script.
import type { Cluster, Redis } from 'ioredis';

// Registered once per client with defineCommand: ioredis sends EVALSHA and falls back to EVAL on NOSCRIPT.

/** `tokenGuardConsume`: one request against every rate limit of one token, GCRA, all counters charged or none. */
export const CONSUME_LUA = `
-- One request against every limit of one token: all counters are charged, or none. GCRA in exact integers, step for
-- step as gcraStep in src/stores/gcra.ts (same operations in the same order, so both give the same doubles): a TAT
-- is q + r/limit ms (0 <= r < limit), stored as the text "q:r:limit".
-- KEYS[i]: counter i; all keys share the token's hash tag (one slot).
-- ARGV[1]: now (whole ms); ARGV[2i], ARGV[2i+1]: limit and window (whole ms) of counter i (validated by the caller);
-- ARGV[2 * #KEYS + 2]: how long a counter is kept past its TAT (ms); ARGV[2 * #KEYS + 3]: '1' to peek (answer as a
-- charge would, charge nothing).
local now = tonumber(ARGV[1])
local slack = tonumber(ARGV[2 * #KEYS + 2])
local peek = ARGV[2 * #KEYS + 3] == '1'
local allowed = true
local retry = 0
local tats = {}
local ttls = {}
-- What each counter reports: charged (when every counter has room) or held (as it stands: nothing is charged).
local out = {}
local held = {}
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
    local remaining = math.floor(((window - dq) * limit - dr) / window)
    out[#out + 1] = string.format('%.17g', remaining)
    out[#out + 1] = string.format('%.17g', dq + dr / limit)
    -- Before the charge one more fits, and the counter is full again at its current TAT (heldRemaining in gcra.ts).
    held[#held + 1] = string.format('%.17g', remaining + 1)
    held[#held + 1] = string.format('%.17g', q - now + r / limit)
  else
    -- No room in this window: nothing is charged; retry once the excess (rounded up to whole ms) has passed.
    allowed = false
    local rt = dq - window + (dr > 0 and 1 or 0)
    if rt > retry then retry = rt end
    out[#out + 1] = '0'
    out[#out + 1] = string.format('%.17g', q - now + r / limit)
    held[#held + 1] = '0'
    held[#held + 1] = out[#out]
  end
end
-- All or nothing: charge only when every counter had room (and this is no peek).
if allowed and not peek then
  for i = 1, #KEYS do
    redis.call('SET', KEYS[i], tats[i], 'PX', string.format('%.17g', ttls[i]))
  end
end
if allowed then return { 1, '0', unpack(out) } end
return { 0, string.format('%.17g', retry), unpack(held) }
`;

/** `tokenGuardUse`: takes one use of an API key atomically, never below zero. */
export const USE_LUA = `
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
-- Rotated (always with grace 0 when limited): its uses went to the successor, so a request still on it spends none.
-- A plain search first, so only a record that may be rotated is decoded.
local rec = redis.call('HGET', KEYS[1], 'rec')
if rec and string.find(rec, '"rotatedTo"', 1, true) then
  local ok, r = pcall(cjson.decode, rec)
  if not ok then return redis.error_reply('TGCORRUPT API key record is not valid JSON') end
  if type(r) == 'table' and r.rotatedTo ~= nil and r.rotatedTo ~= cjson.null then return -1 end
end
return redis.call('HINCRBY', KEYS[1], 'rem', -1)
`;

/** `tokenGuardPut`: stores an API key record, its JSON and its uses left in one step. */
export const PUT_LUA = `
-- Stores an API key record, replacing any: the JSON and the uses left change together.
-- KEYS[1]: the record hash. ARGV[1]: record JSON (without uses left); ARGV[2]: uses left, '' for unlimited.
-- Dropped first: a replaced record must not keep the old one's uses left.
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'rec', ARGV[1])
-- No field at all means unlimited (tokenGuardUse answers nil for it).
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'rem', ARGV[2]) end
return 1
`;

/** `tokenGuardUpdate`: replaces a record's JSON under an optimistic lock, leaving concurrent uses alone. */
export const UPDATE_LUA = `
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
 * A revocation script: stores the entry with a TTL of the token's remaining life plus a clock-skew slack, never shortening a live
 * one, then publishes the invalidation so every instance drops its near-cached lookup. `merge` says how the
 * entry's time field combines with a live one (`first`: keep the first revocation time; `max`: latest cut-off).
 */
export function revocationLua(field: 'at' | 'before', merge: 'first' | 'max'): string {
  return `
-- KEYS[1]: the revocation entry, JSON {"${field}": ms, "exp": ms or null, "r": reason (absent: none)}. ARGV[1]: now;
-- ARGV[2]: ${field}; ARGV[3]: expiry ('' = kept until deleted); ARGV[4]: invalidation channel; ARGV[5]: invalidation
-- message; ARGV[6]: reason ('' = none: a live entry's reason is kept); ARGV[7]: how long the key outlives exp (ms);
-- ARGV[8]: the revoking instance's ack channel. Returns { listeners of ARGV[4], listeners of ARGV[8] }.
local now = tonumber(ARGV[1])
local value = tonumber(ARGV[2])
local exp = tonumber(ARGV[3])
local reason = ARGV[6]
if reason == '' then reason = nil end
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
    -- The latest reason given wins; a revocation without one keeps the earlier one.
    if reason == nil and type(old.r) == 'string' then reason = old.r end
  end
end
local entry = '{"${field}":' .. string.format('%.17g', value) .. ',"exp":' .. (exp and string.format('%.17g', exp) or 'null') ..
  (reason and (',"r":' .. cjson.encode(reason)) or '') .. '}'
if exp then
  -- The entry lives as long as the token could (after that the token is refused as expired anyway), plus a slack:
  -- now is the revoker's clock, and a reader whose clock is behind it still needs the entry until exp on its own.
  -- exp itself stays exact, so readers decide on it.
  redis.call('SET', KEYS[1], entry, 'PX', math.max(1, math.ceil(exp - now + tonumber(ARGV[7]))))
else
  redis.call('SET', KEYS[1], entry)
end
-- Who must confirm: the connections subscribed to the channel now, counted in the same atomic step. (Not PUBLISH's
-- count, which includes pattern subscribers such as a debugging PSUBSCRIBE * that would never confirm.) With them,
-- whether the revoker's own subscriber is one of them: one on a replica hears its echo, yet is not counted here.
local counts = redis.call('PUBSUB', 'NUMSUB', ARGV[4], ARGV[8])
-- In the same script, so no instance can read the new entry before the invalidation is on its way.
redis.call('PUBLISH', ARGV[4], ARGV[5])
return { counts[2], counts[4] }
`;
}

/** `tokenGuardUsage`: merges a buffered batch of uses into one token's usage hash. */
export const USAGE_LUA = `
-- Merges a batch of uses into one token's usage, with the rules of mergeUsage (src/stores/usage.ts).
-- KEYS[1]: the usage hash (count, first, at, ip, ua, ips, min, minc).
-- ARGV: 1 uses; 2 first use (ms); 3 latest use (ms); 4 its IP ('' = none); 5 its User-Agent ('' = none);
--       6 the batch's distinct IPs, most recent first, comma-separated; 7 the latest use's minute; 8 uses in it;
--       9 TTL (ms, 0 = none); 10 how many recent IPs to keep.
local key = KEYS[1]
-- Counts add up whatever order batches land in.
redis.call('HINCRBY', key, 'count', ARGV[1])
-- The first use is the earliest any batch saw.
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
-- Every write restarts the TTL: usage is kept usageTtl after the last use.
if ARGV[9] ~= '0' then redis.call('PEXPIRE', key, ARGV[9]) end
return 1
`;

/** `tokenGuardClaim`: claims a one-time value (a DPoP proof) until it expires, on the caller's clock. */
export const CLAIM_LUA = `
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

/** `tokenGuardClaimInGroup`: claims a one-time value inside a group whose live claims are capped. */
export const CLAIM_IN_GROUP_LUA = `
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

/** `tokenGuardAppendEvent`: appends a lifecycle event once, keeping at most a fixed number. */
export const APPEND_EVENT_LUA = `
-- Appends a lifecycle event unless one with its id is kept, then drops the oldest beyond the cap.
-- KEYS[1]: the log (a list of event JSON, oldest first); KEYS[2]: the set of ids in it (same slot).
-- ARGV[1]: the event's id; ARGV[2]: its JSON; ARGV[3]: most events kept.
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[2])
local max = tonumber(ARGV[3])
while redis.call('LLEN', KEYS[1]) > max do
  -- The id of a dropped event leaves the set with it, so the set never outgrows the log.
  local ok, old = pcall(cjson.decode, redis.call('LPOP', KEYS[1]))
  if ok and type(old) == 'table' and type(old.id) == 'string' then redis.call('SREM', KEYS[2], old.id) end
end
return 1
`;

/** Every script, by the command name defineCommand gives it (no `numberOfKeys`: the caller passes the key count). */
/**
 * `tokenGuardKeepRecord`: caches a record read from the durable store (read-through), unless it changed since the
 * read began: every change there bumps the generation (tokenGuardDropRecord), which the reader took before reading.
 */
export const KEEP_RECORD_LUA = `
-- KEYS[1]: the record hash (rec = JSON); KEYS[2]: its generation (same hash tag, same slot).
-- ARGV[1]: the generation the reader saw before it read the durable store ('' = none); ARGV[2]: record JSON;
-- ARGV[3]: how long to keep it (ms).
local gen = redis.call('GET', KEYS[2]) or ''
-- Changed meanwhile: what the reader holds may be the old record, so it is not kept.
if gen ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'rec', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`;

/** `tokenGuardDropRecord`: drops a cached record after it changed in the durable store, and bumps its generation. */
export const DROP_RECORD_LUA = `
-- KEYS[1]: the record hash; KEYS[2]: its generation. ARGV[1]: how long the generation is kept (ms): longer than
-- any read of the durable store can take, so no read that began before this change can still be kept.
redis.call('DEL', KEYS[1])
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return 1
`;

export const SCRIPTS = {
  tokenGuardConsume: { lua: CONSUME_LUA },
  tokenGuardUse: { lua: USE_LUA, numberOfKeys: 1 },
  tokenGuardPut: { lua: PUT_LUA, numberOfKeys: 1 },
  tokenGuardUpdate: { lua: UPDATE_LUA, numberOfKeys: 1 },
  tokenGuardRevoke: { lua: revocationLua('at', 'first'), numberOfKeys: 1 },
  tokenGuardRevokeSubject: { lua: revocationLua('before', 'max'), numberOfKeys: 1 },
  tokenGuardUsage: { lua: USAGE_LUA, numberOfKeys: 1 },
  tokenGuardClaim: { lua: CLAIM_LUA, numberOfKeys: 1 },
  tokenGuardKeepRecord: { lua: KEEP_RECORD_LUA, numberOfKeys: 2 },
  tokenGuardDropRecord: { lua: DROP_RECORD_LUA, numberOfKeys: 2 },
  tokenGuardClaimInGroup: { lua: CLAIM_IN_GROUP_LUA, numberOfKeys: 1 },
  tokenGuardAppendEvent: { lua: APPEND_EVENT_LUA, numberOfKeys: 2 },
} as const;

/** An argument to a script. */
export type Arg = string | number;
/** A script's reply as ioredis decodes it. */
export type Reply = string | number | null | Reply[];

/** The commands defineCommand adds to a client (and its pipelines). */
export interface ScriptCommands {
  tokenGuardConsume(numKeys: number, ...args: Arg[]): Promise<Reply[]>;
  tokenGuardUse(key: string): Promise<number | null>;
  tokenGuardPut(key: string, json: string, remaining: string): Promise<number>;
  tokenGuardUpdate(key: string, read: string, next: string, remaining: string): Promise<Reply[]>;
  /** `time`: the revocation time (a token) or the cut-off (a subject). Replies [listeners, listeners of `ackChannel`]. */
  tokenGuardRevoke(key: string, now: Arg, time: Arg, exp: Arg, channel: string, message: string, reason: string, slack: Arg, ackChannel: string): Promise<[number, number]>;
  tokenGuardRevokeSubject: ScriptCommands['tokenGuardRevoke'];
  tokenGuardAppendEvent(log: string, ids: string, id: string, json: string, max: Arg): Promise<number>;
  tokenGuardUsage(key: string, ...args: Arg[]): Promise<number>;
  tokenGuardClaim(key: string, now: Arg, expiresAt: Arg): Promise<number>;
  tokenGuardClaimInGroup(key: string, now: Arg, expiresAt: Arg, member: string, max: Arg): Promise<number>;
  tokenGuardKeepRecord(key: string, genKey: string, seen: string, json: string, ttl: Arg): Promise<number>;
  tokenGuardDropRecord(key: string, genKey: string, genTtl: Arg): Promise<number>;
}

/** A pipeline carrying the usage script (standalone Redis: one round trip per batch). */
export interface UsagePipeline {
  tokenGuardUsage(key: string, ...args: Arg[]): UsagePipeline;
  exec(): Promise<[Error | null, unknown][] | null>;
}

/**
 * Registers every script on `client` and returns it typed with the commands they add. Defining the same script again
 * just replaces it, so several stores may share one client.
 */
export function defineScripts(client: Redis | Cluster): ScriptCommands {
  for (const [name, def] of Object.entries(SCRIPTS)) client.defineCommand(name, def);
  return client as unknown as ScriptCommands;
}
