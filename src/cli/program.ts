// The `token-guard` program: its command table, and `runCli`, which turns argv into output and an exit code.
// Every failure ends as one message and a documented exit code (exit.ts); a stack trace only with TOKEN_GUARD_DEBUG=1.
import { ApiKeyError, ApiKeyStateError, type PolicyError, StoreError, TokenGuardError, UsageError } from '../leaf/errors.js';
import { StoreArgumentError } from '../stores/validate.js';
import { type Group, helpText, parseCommand, select } from './command.js';
import { CliError, EXIT, type ExitCode } from './exit.js';
import { createOutput, printable, type Output } from './output.js';
import { explain } from './commands/explain.js';
import { keys } from './commands/keys.js';
import { policy } from './commands/policy.js';
import { revoke } from './commands/revoke.js';

const PROGRAM = 'token-guard';

/** Every command, as `token-guard --help` lists them. */
export const ROOT: Group = {
  summary: 'token-guard: manage API keys and revocations in Redis, check policies, explain decisions.',
  commands: { keys, revoke, policy, explain },
};

/** What the CLI runs in: arguments, environment and where output goes. */
export interface CliIo {
  argv: readonly string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  stdout(text: string): void;
  stderr(text: string): void;
  version: string;
}

/** A failure as the CLI reports it. */
interface Failure {
  code: string;
  exit: ExitCode;
  message: string;
  help?: string | undefined;
  issues?: { path: string; message: string }[];
  /** What the command made despite the failure (CliError's `result`). */
  result?: unknown;
}

/**
 * Maps any thrown value to a reported failure: the library's typed errors keep their message, anything else is a bug.
 * Matched by `code`, not only by class: a policy module that imports `token-guard` brings its own copy of the classes.
 */
function failureOf(err: unknown): Failure {
  if (err instanceof CliError) return { code: err.code, exit: err.exitCode, message: err.message, help: err.help, ...(err.result !== undefined && { result: err.result }) };
  const e = (err ?? {}) as { code?: unknown; message?: unknown; help?: unknown; issues?: unknown };
  const code = typeof e.code === 'string' ? e.code : undefined;
  const message = typeof e.message === 'string' ? e.message : String(err);
  const help = typeof e.help === 'string' ? e.help : undefined;
  if (err instanceof Error && code !== undefined) {
    if (code === 'policy.invalid') return { code, exit: EXIT.policyInvalid, message, issues: (err as PolicyError).issues };
    if (code === 'api_key.not_found') return { code, exit: EXIT.notFound, message };
    if (err instanceof ApiKeyStateError || (code.startsWith('api_key.') && code !== 'api_key.invalid')) return { code, exit: EXIT.conflict, message };
    if (code === 'store.unavailable' || err instanceof StoreError) return { code, exit: EXIT.storeUnreachable, message: `store failed: ${message}` };
    if (
      err instanceof UsageError ||
      err instanceof ApiKeyError ||
      err instanceof StoreArgumentError ||
      code.startsWith('usage.') ||
      code.startsWith('store.') ||
      code === 'api_key.invalid'
    ) {
      return { code, exit: EXIT.usage, message, help };
    }
    if (err instanceof TokenGuardError) return { code, exit: EXIT.internal, message };
  }
  const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return { code: 'cli.internal', exit: EXIT.internal, message: `internal error: ${text}`, help: 'set TOKEN_GUARD_DEBUG=1 for the stack trace, and please report it' };
}

function report(out: Output, io: CliIo, f: Failure): void {
  if (out.json) {
    const error = { code: f.code, exit: f.exit, message: f.message, ...(f.help && { help: f.help }), ...(f.issues && { issues: f.issues }) };
    out.result(f.result === undefined ? { error } : { error, result: f.result });
    return;
  }
  // A message may quote what was given or stored (an id, a subject, a key's successor): escaped as output is, line
  // breaks too, so that a stored value cannot forge lines. An invalid policy's one issue per line is its layout.
  const breaks = f.code === 'policy.invalid';
  io.stderr(`${f.message.startsWith(`${PROGRAM} `) ? '' : `${PROGRAM}: `}${printable(f.message, breaks)}\n`);
  if (f.help) io.stderr(`  ${printable(f.help, false)}\n`);
}

/** Runs one command line; resolves to its exit code. Never throws. */
export async function runCli(io: CliIo): Promise<number> {
  // Known before parsing, so that a usage error is reported as JSON too.
  const end = io.argv.indexOf('--');
  const json = (end === -1 ? io.argv : io.argv.slice(0, end)).includes('--json');
  const out = createOutput(json, io.stdout, io.stderr);
  try {
    const selection = select(ROOT, io.argv, PROGRAM);
    if (selection.kind === 'version') {
      io.stdout(`${io.version}\n`);
      return EXIT.ok;
    }
    if (selection.kind === 'help') {
      if (!selection.missing) {
        io.stdout(`${helpText(selection.name, selection.node)}\n`);
        return EXIT.ok;
      }
      if (json) throw new CliError('cli.usage', `${selection.name}: expected a command`, { help: `see ${selection.name} --help` });
      io.stderr(`${helpText(selection.name, selection.node)}\n`);
      return EXIT.usage;
    }
    const { options, positionals } = parseCommand(selection.name, selection.command, selection.args);
    return await selection.command.run({ options, positionals, out, env: io.env, cwd: io.cwd });
  } catch (err) {
    const f = failureOf(err);
    report(out, io, f);
    if (io.env['TOKEN_GUARD_DEBUG'] === '1' && err instanceof Error && err.stack) io.stderr(`${err.stack}\n`);
    return f.exit;
  }
}
