// Where `keys` and `revoke` act: the Redis the options name (redis.ts), or, with `--policy FILE`, the store of the
// app's own policy module, whatever it is (a PostgresStore, composeStores with PostgreSQL durable and Redis in front,
// an adapter of the app's). Through the policy's store a change lands where the app keeps it: a revocation written
// only to a Redis cache in front of PostgreSQL would be lost with the cache, and keys kept in PostgreSQL are not there.
import { createGuard, type Guard } from '../core/guard.js';
import type { TokenStore } from '../leaf/store.js';
import { type CommandContext, type OptionSpec, optional } from './command.js';
import { usage } from './exit.js';
import { loadPolicy } from './policy-module.js';
import { openStore, REDIS_OPTIONS, type StoreUse } from './redis.js';
import { parseClockTolerance } from './values.js';

/** The options of every command that changes or reads the app's store. */
export const STORE_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  ...REDIS_OPTIONS,
  policy: {
    type: 'string',
    value: 'FILE',
    description: "act on the store of this policy module (its PostgresStore, composeStores, …) instead of --redis; needs the module's own connections",
  },
};

/**
 * `--clock-tolerance`, for the commands whose answer depends on the app's clock tolerance: `keys list`, `show` and
 * `rotate` (a key made that long after a subject's cut-off is refused) and `revoke token` / `subject` (a revocation is
 * kept that long past `--expires-at`). Without `--policy` the command cannot know it.
 */
export const CLOCK_TOLERANCE_OPTION: Readonly<Record<string, OptionSpec>> = {
  'clock-tolerance': {
    type: 'string',
    value: 'SECONDS',
    description: "the app's clock tolerance (guard.clockTolerance: its largest jwt.clockTolerance), 0 to 300. Default: 5, the guard's; with --policy, the policy's",
  },
};

/** What a policy module accepts as API keys (`--policy`): keys the command makes must be ones the app accepts. */
export interface PolicyKeys {
  /** The file as given, for messages. */
  file: string;
  /** Its `apiKeys.prefix`, as a list; empty when it accepts no API keys. */
  prefixes: readonly string[];
  /** Its `apiKeys.checksumSecret`, when it has one. */
  checksumSecret: string | Uint8Array | undefined;
}

/** An open store, the guard to revoke through, and how to let go of them. */
export interface Target {
  store: TokenStore;
  /** The policy's guard (its clock tolerance, issuers and onLifecycle), or one made for the store (the default 5 s tolerance). */
  guard: Guard;
  /** The app's clock tolerance in ms: `--clock-tolerance`, else the policy's, else the guard's default (5 s). */
  clockToleranceMs: number;
  /** With `--policy`: the API keys the policy accepts. */
  policy?: PolicyKeys;
  /** Where it is, for messages. */
  where: string;
  close(): Promise<void>;
}

/** Opens what the options name. Throws CliError: usage (both or neither given, a policy without a store), not found, unreachable. */
export async function openTarget(ctx: CommandContext, name: string, use: StoreUse = {}): Promise<Target> {
  const file = optional(ctx, 'policy');
  // Checked before connecting: a bad value is a usage error whether or not the store is up.
  const tolerance = optional(ctx, 'clock-tolerance');
  const given = tolerance === undefined ? undefined : parseClockTolerance('--clock-tolerance', tolerance);
  if (file === undefined) {
    const open = await openStore(ctx, name, use);
    // A guard over the store, only to revoke with: validated, reasoned and reported exactly as an app's own
    // `guard.revoke` (the default 5 s clock tolerance; revocationExpiry makes up the difference to --clock-tolerance).
    // The prefix is a placeholder: it accepts no request here.
    const guard = createGuard({ store: open.store, apiKeys: { prefix: 'tg_' }, trackUsage: false });
    return { ...open, guard, clockToleranceMs: given ?? guard.clockTolerance * 1000 };
  }
  for (const flag of ['redis', 'prefix', 'timeout'] as const) {
    if (ctx.options[flag] !== undefined) throw usage(`${name}: --${flag} does not go with --policy: the policy module's store is used as it is`);
  }
  const { policy } = await loadPolicy(file, ctx.cwd, name);
  if (policy.store === undefined) {
    throw usage(`${name}: the policy in ${file} names no store`, "a command on a store of its own changes nothing the app sees: give the policy's `store`, or use --redis");
  }
  const guard = createGuard({ ...policy, trackUsage: false });
  const own = guard.clockTolerance * 1000;
  // As a checksum secret (key-format.ts): the policy's own is the app's, and another one would show keys and keep
  // revocations otherwise than the app reads them.
  if (given !== undefined && given !== Math.round(own)) {
    await guard.store.close?.();
    throw usage(
      `${name}: --clock-tolerance ${tolerance} is not the clock tolerance of the policy in ${file}, ${own / 1000} s (its largest jwt.clockTolerance, 5 s by default): keys would be shown and revocations kept otherwise than the app reads them`,
      "leave out --clock-tolerance: with --policy the policy's own is used",
    );
  }
  // Read after createGuard: the policy is valid, so each prefix is a valid one and the secret long enough.
  const apiKeys = policy.apiKeys;
  return {
    store: guard.store,
    guard,
    clockToleranceMs: own,
    policy: { file, prefixes: apiKeys === undefined ? [] : [apiKeys.prefix].flat(), checksumSecret: apiKeys?.checksumSecret },
    where: `the store of ${file}`,
    // Its timers only: the module's own connections are its, and the command's process ends when it is done.
    close: async () => {
      await guard.store.close?.();
    },
  };
}

/**
 * The `expiresAt` to hand `target.guard.revoke` / `revokeSubject` for a token that expires at `ms`: the guard keeps a
 * revocation its own tolerance past it (5 s without `--policy`), and the app's (`--clock-tolerance`) may be another.
 */
export function revocationExpiry(target: Target, ms: number): number {
  return ms + target.clockToleranceMs - target.guard.clockTolerance * 1000;
}
