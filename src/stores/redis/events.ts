// RedisStore's lifecycle audit: a capped list of event JSON with a set of their ids, appended by a script and read
// whole (the cap bounds it). Apart from the store so that reading an event back sits with its one parser.
import { StoreError } from '../../leaf/errors.js';
import type { LifecycleEvent, LifecycleQuery } from '../../leaf/lifecycle.js';
import { checkLifecycleEvent, checkLifecycleQuery, DEFAULT_EVENT_LIMIT, matchesQuery } from '../validate.js';
import type { RedisContext } from './command.js';

/** A kept lifecycle event; one we cannot read is a store failure, never skipped silently. */
function parseEvent(raw: string): LifecycleEvent {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch (e) {
    throw new StoreError('lifecycle event in Redis is not valid JSON', { cause: e });
  }
  if (!v || typeof v !== 'object' || typeof (v as LifecycleEvent).id !== 'string' || typeof (v as LifecycleEvent).at !== 'number') {
    throw new StoreError('lifecycle event in Redis is malformed');
  }
  return v as LifecycleEvent;
}

/** RedisStore.appendLifecycleEvent: keeps one event, at most `maxEvents` of them (oldest dropped first). */
export async function appendLifecycleEvent(ctx: RedisContext, event: LifecycleEvent, maxEvents: number): Promise<void> {
  checkLifecycleEvent(event);
  await ctx.call('append', () => ctx.cmd.tokenGuardAppendEvent(ctx.keys.eventLog, ctx.keys.eventIds, event.id, JSON.stringify(event), maxEvents));
}

/** RedisStore.listLifecycleEvents: the latest events matching `query`, oldest first. */
export async function listLifecycleEvents(ctx: RedisContext, query: LifecycleQuery): Promise<LifecycleEvent[]> {
  checkLifecycleQuery(query);
  const limit = query.limit ?? DEFAULT_EVENT_LIMIT;
  // The log is capped (maxLifecycleEvents), so reading it whole is bounded; filtering happens here.
  const raw = await ctx.call('LRANGE', () => ctx.client.lrange(ctx.keys.eventLog, 0, -1));
  const out: LifecycleEvent[] = [];
  for (let i = raw.length - 1; i >= 0 && out.length < limit; i--) {
    const e = parseEvent(raw[i] as string);
    if (matchesQuery(e, query)) out.push(e);
  }
  return out.reverse();
}
