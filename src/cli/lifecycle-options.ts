// The options lifecycle commands share: who acts (`--actor`) and why (`--reason`), checked as the library checks them.
import { isRevocationReason, type RevocationReason } from '../leaf/lifecycle.js';
import type { CommandContext, OptionSpec } from './command.js';
import { usage } from './exit.js';

/** `--actor` and `--reason`. */
export const ACTOR_OPTION: Readonly<Record<string, OptionSpec>> = {
  actor: { type: 'string', value: 'WHO', description: 'who makes the change, recorded in the lifecycle event. Default: cli' },
};

/** `--reason`. */
export const REASON_OPTION: Readonly<Record<string, OptionSpec>> = {
  reason: { type: 'string', value: 'REASON', description: 'why: compromised, offboarded, superseded, … (a lower-case word), kept with the revocation' },
};

/** `--actor`, default `cli`. */
export function actorOf(ctx: CommandContext): string {
  const a = ctx.options['actor'];
  if (a === undefined) return 'cli';
  if (typeof a !== 'string' || a.trim() === '' || a.length > 256) throw usage('--actor: expected a non-empty name of at most 256 characters');
  return a;
}

/** `--reason`, when given: a lower-case word, as stores accept it. */
export function reasonOf(ctx: CommandContext): RevocationReason | undefined {
  const r = ctx.options['reason'];
  if (r === undefined) return undefined;
  if (!isRevocationReason(r))
    throw usage(`--reason: expected a lower-case word (a-z, 0-9, _ . -, at most 64 characters, starting with a letter), e.g. compromised (got ${JSON.stringify(r)})`);
  return r;
}
