// RedisStore's start-up check of the server's settings: would Redis drop a revocation or a claim (eviction at
// maxmemory, or a restart without an append-only file)? Read with CONFIG GET, which managed services may disable.
import type { Cluster, Redis } from 'ioredis';
import { StoreError } from '../../leaf/errors.js';
import { type TokenGuardWarningCode, warnOnce } from '../../leaf/warnings.js';

/** What RedisStore does when Redis could drop a revocation or a claim. */
export type RedisDurability = 'require' | 'warn' | 'ignore';

/**
 * What the store made of the server's settings, and so whether it serves from that Redis:
 * - `'passed'`: read, and nothing in them would drop state. Served.
 * - `'warned'`: read, something would drop state, and `durability: 'warn'` serves all the same (with a warning).
 * - `'refused'`: read, something would drop state, and `durability: 'require'` refuses: every call fails (503).
 * - `'unverifiable'`: the server answered CONFIG with an error (renamed, disabled, an ACL without it): served with a
 *   warning, whatever the mode.
 * - `'unanswered'`: no answer (Redis down, CONFIG GET hanging, the store closed first): under `'require'` calls fail
 *   until a later check answers (the next call, or `ready()`, asks again); under `'warn'` served.
 * - `'skipped'`: `durability: 'ignore'`, nothing read.
 */
export type RedisDurabilityVerdict = 'passed' | 'warned' | 'refused' | 'unverifiable' | 'unanswered' | 'skipped';

/** What the start-up check found. */
export interface RedisDurabilityReport {
  /** What the store made of it (whether it serves from that Redis): see RedisDurabilityVerdict. */
  verdict: RedisDurabilityVerdict;
  /** False when CONFIG GET was refused or failed (managed services often disable it): nothing could be verified. */
  checked: boolean;
  /** The settings read (per node on a Cluster: `host:port maxmemory-policy`), e.g. `{ 'maxmemory-policy': 'noeviction' }`. */
  settings: Record<string, string>;
  /** Each way Redis could drop state, with the setting that fixes it; empty when there is none. */
  issues: string[];
  /** Why nothing could be verified, when `checked` is false. */
  error?: string;
}

/**
 * The store was created with `durability: 'require'` and may not serve from this Redis: it could drop a revocation or
 * a claim (`report.verdict` `'refused'`, see `report.issues`), or its settings got no answer yet (`'unanswered'`; the
 * next call asks again). `ready()` rejects with it, and calls fail with it (503) instead of trusting Redis.
 *
 * Exported from `token-guard/redis`.
 */
export class RedisDurabilityError extends StoreError {
  /** What the check found. */
  readonly report: RedisDurabilityReport;

  constructor(report: RedisDurabilityReport) {
    super(
      report.verdict === 'unanswered'
        ? `RedisStore could not read the Redis settings (${report.error}), which durability: 'require' must verify before it serves; calls fail until a check gets an answer, and the next call asks again`
        : `Redis could drop revocations or claims: ${report.issues.join('; ')} (or set durability: 'warn' if this Redis only caches durable state)`,
    );
    this.name = 'RedisDurabilityError';
    this.report = report;
  }
}

const SETTINGS = ['maxmemory-policy', 'maxmemory', 'appendonly', 'appendfsync', 'save'] as const;

type NodeSettings = Partial<Record<(typeof SETTINGS)[number], string>>;

/** One way a node's settings could drop state: in full (why, and the fix), and in brief (the setting and its fix). */
interface Finding {
  issue: string;
  brief: string;
}

function findings(s: NodeSettings, where: string): Finding[] {
  const found: Finding[] = [];
  const policy = s['maxmemory-policy'];
  if (policy !== undefined && policy !== 'noeviction') {
    const limit = s['maxmemory'] === '0' ? ' (maxmemory is 0 now, but the policy applies as soon as a limit is set)' : '';
    found.push({
      issue: `${where}maxmemory-policy is ${policy}${limit}: at maxmemory Redis evicts keys, and revocations and claims carry a TTL, so volatile-* policies pick them too; set maxmemory-policy noeviction`,
      brief: `${where}maxmemory-policy is ${policy} (set noeviction)`,
    });
  }
  if (s['appendonly'] !== undefined && s['appendonly'] !== 'yes') {
    const save = s['save'] ? `only the RDB snapshots (save "${s['save']}") survive` : 'nothing survives (no RDB snapshots either)';
    found.push({
      issue: `${where}appendonly is ${s['appendonly']}: on a restart ${save}, so revocations and claims written since are lost; set appendonly yes`,
      brief: `${where}appendonly is ${s['appendonly']} (set appendonly yes)`,
    });
  } else if (s['appendonly'] === 'yes' && s['appendfsync'] === 'no') {
    found.push({
      issue: `${where}appendfsync is no: the OS decides when the append-only file reaches disk (often 30 s of writes lost on a crash); set appendfsync everysec or always`,
      brief: `${where}appendfsync is no (set everysec)`,
    });
  }
  return found;
}

/** The issues of one node's settings. */
export function durabilityIssues(s: NodeSettings, where = ''): string[] {
  return findings(s, where).map((f) => f.issue);
}

/** The same issues of one node's settings in brief, each the setting and its fix (`appendonly is no (set appendonly yes)`), for one line of output. */
export function durabilityBriefs(s: NodeSettings): string[] {
  return findings(s, '').map((f) => f.brief);
}

async function readNode(node: Redis): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  // Sent together (one round trip): calls under 'require' wait for this check.
  const replies = await Promise.all(SETTINGS.map((name) => node.config('GET', name) as Promise<unknown>));
  SETTINGS.forEach((name, i) => {
    const reply = replies[i];
    // [name, value], or [] when the server does not know the setting (an old or trimmed-down server).
    if (Array.isArray(reply) && typeof reply[1] === 'string') out[name] = reply[1];
  });
  return out;
}

// An error reply that is the server's answer to CONFIG for good (renamed or disabled command, an ACL without it);
// LOADING, BUSY, MASTERDOWN, TRYAGAIN and the like are a server not ready yet.
const CONFIG_REFUSED = /^(?:ERR|NOPERM)\b/;

/** How a check is asked for: what settings that could drop state make of the verdict, and what ends it early. */
export interface CheckOptions {
  /** `'require'`: such settings are `'refused'`; `'warn'`: `'warned'`. Default: `'warn'`. */
  mode?: 'require' | 'warn';
  /** Ends the check at once, unanswered, when it settles (the store closing). */
  abort?: Promise<unknown>;
}

/**
 * Reads the settings of every node (each master of a Cluster) within `timeoutMs`, and what they would lose; the
 * verdict tells a failure without an answer (worth asking again) from the server's refusal of CONFIG (final).
 * Never rejects.
 */
export async function checkDurability(client: Redis | Cluster, timeoutMs: number, options: CheckOptions = {}): Promise<RedisDurabilityReport> {
  const cluster = (client as Cluster).isCluster === true;
  let timer: NodeJS.Timeout | undefined;
  let onReady: (() => void) | undefined;
  try {
    // A Cluster knows its masters only once connected: an empty list read too early would check nothing.
    const ready =
      cluster && (client as Cluster).status !== 'ready'
        ? new Promise<void>((resolve) => {
            onReady = resolve;
            (client as Cluster).once('ready', onReady);
          })
        : Promise.resolve();
    const read = ready.then(() => {
      const nodes = cluster ? (client as Cluster).nodes('master') : [client as Redis];
      if (nodes.length === 0) throw new Error('the Cluster has no master node');
      return Promise.all(nodes.map(async (node) => [node, await readNode(node)] as const));
    });
    const timedOut = new Promise<never>((_r, reject) => {
      timer = setTimeout(() => reject(new Error(`CONFIG GET did not answer within ${timeoutMs} ms`)), timeoutMs);
    });
    const aborted = (options.abort ?? new Promise<never>(() => undefined)).then(() => {
      throw new Error('the store was closed first');
    });
    const results = await Promise.race([read, timedOut, aborted]);
    const settings: Record<string, string> = {};
    const issues: string[] = [];
    for (const [node, s] of results) {
      const where = cluster ? `${node.options.host}:${node.options.port} ` : '';
      for (const [k, v] of Object.entries(s)) settings[`${where}${k}`] = v;
      issues.push(...durabilityIssues(s, where));
    }
    const verdict = issues.length === 0 ? 'passed' : options.mode === 'require' ? 'refused' : 'warned';
    return { verdict, checked: true, settings, issues };
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    const refused = e instanceof Error && e.name === 'ReplyError' && CONFIG_REFUSED.test(message);
    return { verdict: refused ? 'unverifiable' : 'unanswered', checked: false, settings: {}, issues: [], error: message };
  } finally {
    clearTimeout(timer);
    if (onReady) (client as Cluster).off('ready', onReady);
  }
}

const NEEDED = 'maxmemory-policy noeviction and appendonly yes (appendfsync everysec or always)';

/** What a DurabilityGate checks and how it names the store in its warnings. */
export interface DurabilityGateOptions {
  client: Redis | Cluster;
  mode: RedisDurability;
  /** Whether `mode` is the default (not given): the refusal's warning then says where it came from. */
  defaulted: boolean;
  /** The longest one check may take, in ms. */
  timeoutMs: number;
  /** The store's prefix, naming it in its warnings. */
  prefix: string;
}

/**
 * The store's verdict on the server's settings, and what a call does until there is one. Under `'require'` a call
 * waits for the verdict (within its own commandTimeout, like a call that waits for ioredis to connect) before it is
 * sent, and fails unsent with RedisDurabilityError if Redis could drop state; a check that got no answer (Redis down or
 * silent) is asked again by the next call instead of being taken as a pass. `'warn'` and `'ignore'` never hold a call.
 */
export class DurabilityGate {
  /** Set once `'require'` found a setting that would drop state: every call then fails with it. */
  error: RedisDurabilityError | undefined;
  /** Whether calls go straight through: not under `'require'` until a check passed (or the server refused CONFIG). */
  private open: boolean;
  /** What ready() answers once it is settled for good: the report that opened the gate, or (`'warn'`, `'ignore'`) the first one. */
  private settled: Promise<RedisDurabilityReport> | undefined;
  /** The check calls wait for (`'require'`, no verdict yet); rejects when they must fail. */
  private pending: Promise<RedisDurabilityReport> | undefined;
  /** Whether this store's warning about a check without an answer was emitted (once per store). */
  private unansweredWarned = false;
  private closed = false;
  /** The latest check, which close() ends and waits for (it never rejects). */
  private latest: Promise<RedisDurabilityReport> | undefined;
  private stop!: () => void;
  private readonly stopped = new Promise<void>((resolve) => (this.stop = resolve));

  constructor(private readonly o: DurabilityGateOptions) {
    this.open = o.mode !== 'require';
    if (o.mode === 'ignore') this.settled = Promise.resolve({ verdict: 'skipped', checked: false, settings: {}, issues: [], error: "durability: 'ignore'" });
    else if (o.mode === 'warn') this.settled = this.warn();
    else this.pending = this.verify();
  }

  /**
   * The verdict: under `'require'` it resolves once calls go through, and rejects with RedisDurabilityError when they
   * fail (refused, or no answer: a call made later, or ready() again, asks again); otherwise the first check's report.
   */
  ready(): Promise<RedisDurabilityReport> {
    if (this.settled) return this.settled;
    const verdict = this.wait() as Error | Promise<RedisDurabilityReport>;
    return verdict instanceof Error ? Promise.reject(verdict) : verdict;
  }

  /** Before a call: `undefined` to send it now, an error to fail with unsent, or a promise to wait for (it rejects when the call must fail). */
  wait(): undefined | StoreError | Promise<RedisDurabilityReport> {
    if (this.open) return undefined;
    if (this.error) return this.error;
    if (this.closed) return new StoreError("RedisStore was closed before the Redis settings were verified (durability: 'require')");
    this.pending ??= this.verify();
    return this.pending;
  }

  /** Whether anything the store holds may still be written: not when it refuses this Redis or never got a verdict. */
  get writable(): boolean {
    return this.open;
  }

  /** Ends a check in flight, and resolves once it has let go of its timer; a call made later under `'require'` without a verdict fails. */
  async close(): Promise<void> {
    this.closed = true;
    this.stop();
    await this.latest;
  }

  private check(mode: 'require' | 'warn'): Promise<RedisDurabilityReport> {
    this.latest = checkDurability(this.o.client, this.o.timeoutMs, { mode, abort: this.stopped });
    return this.latest;
  }

  private verify(): Promise<RedisDurabilityReport> {
    const origin = this.o.defaulted ? "durability: 'require', the default under NODE_ENV=production" : "durability: 'require'";
    const store = `RedisStore (prefix ${JSON.stringify(this.o.prefix)})`;
    const verdict = this.check('require').then((report) => {
      if (report.verdict === 'refused') {
        this.error = new RedisDurabilityError(report);
        emitWarning(
          'TOKEN_GUARD_REDIS_DURABILITY_REFUSED',
          `${store} refuses every call, so guards on it answer 503 store.unavailable (${origin}; lookups that composeStores reads through it go to the durable store alone): ${this.error.message}`,
        );
        throw this.error;
      }
      if (report.verdict === 'unanswered') {
        // Nothing known yet: the next call asks again. Taken as a pass, a Redis that was down at start-up would never be checked.
        this.pending = undefined;
        if (!this.closed && !this.unansweredWarned) {
          // Per store, with a code of its own: the once-per-process TOKEN_GUARD_REDIS_DURABILITY may have gone to
          // another store already, and says that a store serves.
          this.unansweredWarned = true;
          emitWarning(
            'TOKEN_GUARD_REDIS_DURABILITY_UNVERIFIED',
            `${store} could not read the Redis settings (${report.error}), which ${origin} must verify before it serves: calls fail (503 store.unavailable) until a check gets an answer, and each call asks again. Make sure Redis is reachable and runs with ${NEEDED}`,
          );
        }
        throw new RedisDurabilityError(report);
      }
      // The server refused CONFIG (managed services often do): nothing can be verified, which is warned about, never refused.
      if (report.verdict === 'unverifiable')
        warnOnce('TOKEN_GUARD_REDIS_DURABILITY', `RedisStore could not read the Redis settings (${report.error}); make sure Redis runs with ${NEEDED}`);
      this.open = true;
      this.pending = undefined;
      this.settled = Promise.resolve(report);
      return report;
    });
    // Rejects for the calls waiting on it; nobody may be (ready() is optional, and every call reports the refusal too).
    verdict.catch(() => undefined);
    return verdict;
  }

  private async warn(): Promise<RedisDurabilityReport> {
    const report = await this.check('warn');
    if (this.closed) return report;
    if (!report.checked) warnOnce('TOKEN_GUARD_REDIS_DURABILITY', `RedisStore could not read the Redis settings (${report.error}); make sure Redis runs with ${NEEDED}`);
    else if (report.issues.length > 0) warnOnce('TOKEN_GUARD_REDIS_DURABILITY', `Redis could drop revocations or claims: ${report.issues.join('; ')}`);
    return report;
  }
}

/**
 * A process warning every time, not once per process: a store that refuses (or cannot yet verify) its Redis is one
 * that does not work at all, and each one (another prefix, another Redis) is named. A no-op where
 * `process.emitWarning` is missing (edge runtimes).
 */
function emitWarning(code: TokenGuardWarningCode, message: string): void {
  const proc = (globalThis as { process?: { emitWarning?: (message: string, options: { type: string; code: string }) => void } }).process;
  if (typeof proc?.emitWarning === 'function') proc.emitWarning(message, { type: 'TokenGuardWarning', code });
}
