// RedisStore's start-up check of the server's settings: would Redis drop a revocation or a claim (eviction at
// maxmemory, or a restart without an append-only file)? Read with CONFIG GET, which managed services may disable.
import type { Cluster, Redis } from 'ioredis';
import { StoreError } from '../../leaf/errors.js';

/** What RedisStore does when Redis could drop a revocation or a claim. */
export type RedisDurability = 'require' | 'warn' | 'ignore';

/** What the start-up check found. */
export interface RedisDurabilityReport {
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
 * Redis could drop a revocation or a claim (see `report.issues`) and the store was created with
 * `durability: 'require'`: `ready()` rejects with it, and every call fails with it (503) instead of trusting Redis.
 *
 * Exported from `token-guard/redis`.
 */
export class RedisDurabilityError extends StoreError {
  /** What the check found. */
  readonly report: RedisDurabilityReport;

  constructor(report: RedisDurabilityReport) {
    super(`Redis could drop revocations or claims: ${report.issues.join('; ')} (or set durability: 'warn' if this Redis only caches durable state)`);
    this.name = 'RedisDurabilityError';
    this.report = report;
  }
}

const SETTINGS = ['maxmemory-policy', 'maxmemory', 'appendonly', 'appendfsync', 'save'] as const;

/** The issues of one node's settings. */
export function durabilityIssues(s: Partial<Record<(typeof SETTINGS)[number], string>>, where = ''): string[] {
  const issues: string[] = [];
  const policy = s['maxmemory-policy'];
  if (policy !== undefined && policy !== 'noeviction') {
    const limit = s['maxmemory'] === '0' ? ' (maxmemory is 0 now, but the policy applies as soon as a limit is set)' : '';
    issues.push(
      `${where}maxmemory-policy is ${policy}${limit}: at maxmemory Redis evicts keys, and revocations and claims carry a TTL, so volatile-* policies pick them too; set maxmemory-policy noeviction`,
    );
  }
  if (s['appendonly'] !== undefined && s['appendonly'] !== 'yes') {
    const save = s['save'] ? `only the RDB snapshots (save "${s['save']}") survive` : 'nothing survives (no RDB snapshots either)';
    issues.push(`${where}appendonly is ${s['appendonly']}: on a restart ${save}, so revocations and claims written since are lost; set appendonly yes`);
  } else if (s['appendonly'] === 'yes' && s['appendfsync'] === 'no') {
    issues.push(`${where}appendfsync is no: the OS decides when the append-only file reaches disk (often 30 s of writes lost on a crash); set appendfsync everysec or always`);
  }
  return issues;
}

async function readNode(node: Redis): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of SETTINGS) {
    const reply = (await node.config('GET', name)) as unknown;
    // [name, value], or [] when the server does not know the setting (an old or trimmed-down server).
    if (Array.isArray(reply) && typeof reply[1] === 'string') out[name] = reply[1];
  }
  return out;
}

/** Reads the settings of every node (each master of a Cluster) within `timeoutMs`, and what they would lose. */
export async function checkDurability(client: Redis | Cluster, timeoutMs: number): Promise<RedisDurabilityReport> {
  const cluster = (client as Cluster).isCluster === true;
  let timer: NodeJS.Timeout | undefined;
  try {
    // A Cluster knows its masters only once connected: an empty list read too early would check nothing.
    const ready = cluster && (client as Cluster).status !== 'ready' ? new Promise<void>((resolve) => (client as Cluster).once('ready', () => resolve())) : Promise.resolve();
    const read = ready.then(() => {
      const nodes = cluster ? (client as Cluster).nodes('master') : [client as Redis];
      if (nodes.length === 0) throw new Error('the Cluster has no master node');
      return Promise.all(nodes.map(async (node) => [node, await readNode(node)] as const));
    });
    const timedOut = new Promise<never>((_r, reject) => {
      timer = setTimeout(() => reject(new Error(`CONFIG GET did not answer within ${timeoutMs} ms`)), timeoutMs);
    });
    const results = await Promise.race([read, timedOut]);
    const settings: Record<string, string> = {};
    const issues: string[] = [];
    for (const [node, s] of results) {
      const where = cluster ? `${node.options.host}:${node.options.port} ` : '';
      for (const [k, v] of Object.entries(s)) settings[`${where}${k}`] = v;
      issues.push(...durabilityIssues(s, where));
    }
    return { checked: true, settings, issues };
  } catch (e) {
    return { checked: false, settings: {}, issues: [], error: e instanceof Error ? e.message : String(e) };
  } finally {
    clearTimeout(timer);
  }
}
