// The CLI's exit codes and its one error class: every failure the command reports ends as a CliError with a
// code, so scripts can tell a typo from a missing key from a Redis that does not answer.

/**
 * Exit codes of `token-guard`, documented in docs/cli.md. Stable: scripts switch on them.
 * - 0 ok; 1 internal error (a bug: please report it); 2 usage error (unknown command or option, a bad or missing
 *   value); 3 not found (no such key, no such policy file); 4 store unreachable (Redis did not connect or answer in
 *   time); 5 invalid policy (PolicyError, or a module that fails to load or exports no policy); 6 `policy check
 *   --strict` found shadowed rules or public holes; 7 `explain`: the decision is not `allow`; 8 conflict: the key's state
 *   does not allow the change (already revoked, already rotated, expired).
 */
export const EXIT = {
  ok: 0,
  internal: 1,
  usage: 2,
  notFound: 3,
  storeUnreachable: 4,
  policyInvalid: 5,
  findings: 6,
  refused: 7,
  conflict: 8,
} as const;

/** One of the exit codes above. */
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** Stable string codes of CLI failures, shown in `--json` error output. */
export type CliErrorCode = 'cli.usage' | 'cli.not_found' | 'cli.store_unreachable' | 'cli.policy_invalid' | 'cli.conflict' | 'cli.internal';

const EXIT_OF: Record<CliErrorCode, ExitCode> = {
  'cli.usage': EXIT.usage,
  'cli.not_found': EXIT.notFound,
  'cli.store_unreachable': EXIT.storeUnreachable,
  'cli.policy_invalid': EXIT.policyInvalid,
  'cli.conflict': EXIT.conflict,
  'cli.internal': EXIT.internal,
};

/** A failure the CLI reports as one message (never a stack trace) and an exit code. */
export class CliError extends Error {
  /** Stable machine-readable code. */
  readonly code: CliErrorCode;
  /** The process exit code it ends with. */
  readonly exitCode: ExitCode;
  /** One line on what to do instead, when there is one. */
  readonly help: string | undefined;
  /** What the command made despite the failure (a key issued whose event was not kept): `--json` shows it beside the error. */
  readonly result: unknown;

  constructor(code: CliErrorCode, message: string, options: { help?: string; cause?: unknown; result?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CliError';
    this.code = code;
    this.exitCode = EXIT_OF[code];
    this.help = options.help;
    this.result = options.result;
  }
}

/** A usage mistake: exit 2. */
export function usage(message: string, help?: string): CliError {
  return new CliError('cli.usage', message, help === undefined ? {} : { help });
}
