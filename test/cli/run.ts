// Runs the built `token-guard` command (dist/cli.js) in a child process, with a time bound: a hang fails the test.
import { execFile } from 'node:child_process';
import path from 'node:path';

/** The repository root. */
export const ROOT = path.resolve(import.meta.dirname, '../..');
/** The built bin, as package.json `bin` names it. */
export const BIN = path.join(ROOT, 'dist/cli.js');
/** Fixture policy modules. */
export const FIXTURES = path.join(import.meta.dirname, 'fixtures');

/** What one run of the command gave. */
export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The command was killed after `timeout` ms. */
  timedOut: boolean;
}

/** Runs `token-guard ...args`; env replaces REDIS_URL and friends (the parent's are not inherited). */
export function cli(args: readonly string[], options: { env?: Record<string, string>; timeout?: number; cwd?: string } = {}): Promise<CliRun> {
  // Generous: on a loaded machine eight Node processes started together each take seconds; a hang still fails.
  const timeout = options.timeout ?? 45_000;
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [BIN, ...args],
      { cwd: options.cwd ?? FIXTURES, env: { PATH: process.env['PATH'] ?? '', ...options.env }, timeout, killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        const killed = (err as { killed?: boolean } | null)?.killed === true;
        resolve({ code: killed ? null : (child.exitCode ?? 0), stdout, stderr, timedOut: killed });
      },
    );
  });
}

/** stdout parsed as the one JSON document `--json` promises. */
export function json<T = Record<string, unknown>>(run: CliRun): T {
  return JSON.parse(run.stdout) as T;
}
