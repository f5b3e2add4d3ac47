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

/** The options of every command that changes or reads the app's store. */
export const STORE_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  ...REDIS_OPTIONS,
  policy: {
    type: 'string',
    value: 'FILE',
    description: "act on the store of this policy module (its PostgresStore, composeStores, …) instead of --redis; needs the module's own connections",
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
  /** With `--policy`: the API keys the policy accepts. */
  policy?: PolicyKeys;
  /** Where it is, for messages. */
  where: string;
  close(): Promise<void>;
}

/** Opens what the options name. Throws CliError: usage (both or neither given, a policy without a store), not found, unreachable. */
export async function openTarget(ctx: CommandContext, name: string, use: StoreUse = {}): Promise<Target> {
  const file = optional(ctx, 'policy');
  if (file === undefined) {
    const open = await openStore(ctx, name, use);
    // A guard over the store, only to revoke with: validated, reasoned and reported exactly as an app's own
    // `guard.revoke` (the default 5 s clock tolerance). The prefix is a placeholder: it accepts no request here.
    return { ...open, guard: createGuard({ store: open.store, apiKeys: { prefix: 'tg_' }, trackUsage: false }) };
  }
  for (const flag of ['redis', 'prefix', 'timeout'] as const) {
    if (ctx.options[flag] !== undefined) throw usage(`${name}: --${flag} does not go with --policy: the policy module's store is used as it is`);
  }
  const { policy } = await loadPolicy(file, ctx.cwd, name);
  if (policy.store === undefined) {
    throw usage(`${name}: the policy in ${file} names no store`, "a command on a store of its own changes nothing the app sees: give the policy's `store`, or use --redis");
  }
  const guard = createGuard({ ...policy, trackUsage: false });
  // Read after createGuard: the policy is valid, so each prefix is a valid one and the secret long enough.
  const apiKeys = policy.apiKeys;
  return {
    store: guard.store,
    guard,
    policy: { file, prefixes: apiKeys === undefined ? [] : [apiKeys.prefix].flat(), checksumSecret: apiKeys?.checksumSecret },
    where: `the store of ${file}`,
    // Its timers only: the module's own connections are its, and the command's process ends when it is done.
    close: async () => {
      await guard.store.close?.();
    },
  };
}
