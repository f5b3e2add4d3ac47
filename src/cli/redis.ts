// The Redis behind `keys` and `revoke`: the URL and prefix from the options or REDIS_URL, a connection that fails fast
// (no retry loop, no offline queue) so an unreachable Redis ends the command in `--timeout`, never a hang, and, for the
// commands that revoke, a second one to listen on, as an app's `subscriber`: a revocation returns only once every
// listening instance confirmed it. For the commands that write, one line on stderr when that Redis may lose what they
// wrote (no append-only file, an eviction policy), printed by the command after its result once the change is made
// (noteDurability): never the store's process warning, which is noise on every call.
import type { Redis, RedisOptions } from 'ioredis';
import { parseTimerDuration } from '../leaf/duration.js';
import { RedisStore } from '../stores/redis.js';
import { checkDurability, durabilityBriefs, type RedisDurabilityReport } from '../stores/redis/durability.js';
import type { OptionSpec, CommandContext } from './command.js';
import { CliError, usage } from './exit.js';

/** The options of every command that talks to Redis. */
export const REDIS_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  redis: { type: 'string', value: 'URL', description: 'Redis URL (redis:// or rediss://). Default: $REDIS_URL' },
  prefix: { type: 'string', value: 'PREFIX', description: "the app's RedisStore prefix. Default: tg:" },
  timeout: { type: 'string', value: 'DURATION', description: 'longest wait for Redis to connect or answer (5s, 500ms). Default: 5s' },
};

/** How a command uses the store. */
export interface StoreUse {
  /**
   * Whether it revokes (`revoke …`, `keys revoke`): only then is a subscriber opened, to wait for the instances'
   * confirmations. Default: false.
   */
  revokes?: boolean;
  /**
   * Whether it writes (`keys issue`, `keys rotate`; a command that revokes does too): only then are Redis's settings
   * read, for the note the command prints with noteDurability once its change is made. Default: false.
   */
  writes?: boolean;
}

/** An open store and how to let go of it. */
export interface OpenStore {
  store: RedisStore;
  /** Where it is, for messages: the URL without its password. */
  where: string;
  close(): Promise<void>;
}

// Query parameters masked in messages: ioredis reads its options from the query too (`?password=…&username=…`).
const SECRET_PARAM = /pass|user|secret|token|auth|key|cred/i;

/** The URL with any password replaced, in the userinfo or the query: URLs go into messages, passwords never do. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    for (const name of new Set(u.searchParams.keys())) if (SECRET_PARAM.test(name)) u.searchParams.set(name, '***');
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}

/** Connects to the Redis the options name and wraps it in a RedisStore. Throws CliError: usage (no or bad URL), store unreachable. */
export async function openStore(ctx: CommandContext, name: string, use: StoreUse = {}): Promise<OpenStore> {
  const url = (typeof ctx.options['redis'] === 'string' ? ctx.options['redis'] : undefined) ?? ctx.env['REDIS_URL'];
  if (!url) throw usage(`${name}: no Redis given`, 'pass --redis redis://host:6379 or set REDIS_URL');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw usage(`${name}: --redis is not a URL`, 'expected redis://[user:password@]host[:port][/db] or rediss://…');
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') throw usage(`${name}: --redis must be a redis:// or rediss:// URL (got ${parsed.protocol})`);
  // The database: ioredis reports a failed SELECT only as an 'error' event and goes on in database 0, so the command
  // would read and write another database than the app's. Checked here, and selected explicitly once connected.
  const dbPath = parsed.pathname === '' || parsed.pathname === '/' ? '0' : parsed.pathname.slice(1);
  if (!/^\d{1,5}$/.test(dbPath)) throw usage(`${name}: the database in --redis must be a number (redis://host:6379/2; got ${JSON.stringify(dbPath.slice(0, 32))})`);
  const db = Number(dbPath);
  const prefix = typeof ctx.options['prefix'] === 'string' ? ctx.options['prefix'] : 'tg:';
  let timeoutMs: number;
  try {
    timeoutMs = parseTimerDuration('--timeout', ctx.options['timeout'] ?? '5s');
  } catch (err) {
    throw usage(`${name}: ${(err as Error).message}`);
  }
  const where = redactUrl(url);

  let RedisClass: new (url: string, options: RedisOptions) => Redis;
  try {
    // ioredis is an optional peer dependency: loaded only by the commands that need it.
    ({ Redis: RedisClass } = await import('ioredis'));
  } catch (err) {
    throw usage(`${name}: ioredis is not installed (${(err as Error).message.split('\n')[0]})`, 'install it next to token-guard: npm install ioredis');
  }
  let client: Redis;
  try {
    client = new RedisClass(url, {
      lazyConnect: true,
      connectTimeout: timeoutMs,
      commandTimeout: timeoutMs,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    });
  } catch (err) {
    // ioredis percent-decodes the user and password in its constructor: a bare `%` there throws URIError.
    throw usage(`${name}: --redis cannot be read (${err instanceof URIError ? 'a `%` in the user or password must be written %25' : (err as Error).message})`);
  }
  // Only for a command that revokes: a subscriber on the prefix joins the revocation protocol, where every instance's
  // revoke counts it among the listeners that must confirm (PUBSUB NUMSUB), so a `keys list` listening while an app
  // revokes would make that revoke wait on it. The same options: it fails as fast, and never reconnects behind the
  // command's back.
  const subscriber = use.revokes === true ? client.duplicate() : undefined;
  let lastError: Error | undefined;
  const failed = (err: Error) => {
    lastError = err;
  };
  client.on('error', failed);
  subscriber?.on('error', failed);
  const disconnect = () => {
    client.disconnect();
    subscriber?.disconnect();
  };
  let timer: NodeJS.Timeout | undefined;
  try {
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    });
    await Promise.race([Promise.all([client.connect(), subscriber?.connect()]), timedOut]);
    // Refused (a database the server does not have): an error here, not database 0 behind the command's back.
    await Promise.race([client.select(db), timedOut]);
  } catch (err) {
    disconnect();
    const reason = (err as Error).message.startsWith('ERR') ? (err as Error).message : (lastError?.message ?? (err as Error).message);
    throw new CliError('cli.store_unreachable', `cannot reach Redis at ${where}: ${reason}`, {
      help: 'check --redis / REDIS_URL and that Redis is up; --timeout sets how long to wait',
    });
  } finally {
    clearTimeout(timer);
  }
  let store: RedisStore;
  try {
    // To revoke, a subscriber, as the app's instances have: without one a revocation is published unconfirmed, and the
    // command would succeed while an instance still answers "not revoked" from its near-cache. It waits `--timeout` for
    // the confirmations; nothing is cached here (a command makes a lookup or two), so there is no heartbeat to stop.
    // Durability 'ignore': the store's check would print a two-line process warning on every command, or under
    // NODE_ENV=production ('require') refuse a revocation, which is better written to a Redis that may lose it than not
    // at all. A command that writes reads the settings itself, below, and says so in one line.
    store = new RedisStore({
      client,
      ...(subscriber && { subscriber }),
      prefix,
      commandTimeout: timeoutMs,
      confirmTimeout: timeoutMs,
      nearCache: false,
      durability: 'ignore',
    });
  } catch (err) {
    disconnect();
    throw usage(`${name}: ${(err as Error).message}`);
  }
  // Read while the command runs (it never rejects, and gives up within --timeout); noted by the command once its change is made.
  const durability = use.writes === true || use.revokes === true ? checkDurability(client, timeoutMs) : undefined;
  if (durability) owed.set(store, { where, report: durability });
  /** Waits for `p` at most `--timeout`; a failure or a late answer is let go: the command is ending either way. */
  const bounded = async (p: Promise<unknown>): Promise<void> => {
    let t: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => (t = setTimeout(resolve, timeoutMs)));
    await Promise.race([p.then(noop, noop), late]);
    clearTimeout(t);
  };
  return {
    store,
    where,
    async close() {
      try {
        // Out of the protocol before the store's handlers go: an app's revoke that counted this subscriber before the
        // UNSUBSCRIBE reached Redis has its invalidation delivered ahead of the UNSUBSCRIBE's reply, and the handlers,
        // still in place, confirm it. Removed first (store.close), they would leave that revoke waiting on us in vain.
        if (subscriber) await bounded(subscriber.unsubscribe());
        await store.close();
        // Answered before QUIT (it cannot be asked after), for the note the command prints if its change was made.
        await durability;
      } finally {
        // QUIT, not a bare disconnect: Redis runs what was sent before it (a confirmation just published) first.
        await bounded(client.quit());
        disconnect();
      }
    },
  };
}

const noop = (): void => undefined;

/** The settings check of each store opened for a command that writes, by store: what noteDurability reports. */
const owed = new WeakMap<object, { where: string; report: Promise<RedisDurabilityReport> }>();

/**
 * After a command's change is made and its result printed: one line on stderr when the Redis written to may lose it
 * (`note:`, not `token-guard:`, which starts an error). Nothing for a command that failed or changed nothing (it does
 * not call this), for a store not opened to write (or with `--policy`), or for settings that cannot be read (CONFIG
 * disabled, as on managed services): the line would be noise on every command. Says it once per store.
 */
export async function noteDurability(ctx: CommandContext, target: { store: object }): Promise<void> {
  const check = owed.get(target.store);
  if (check === undefined) return;
  owed.delete(target.store);
  const report = await check.report;
  if (!report.checked || report.issues.length === 0) return;
  ctx.out.note(`note: Redis at ${check.where} may lose this change: ${durabilityBriefs(report.settings).join(', ')}`);
}
