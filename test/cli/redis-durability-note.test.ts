// Regression: against a stock Redis (appendonly no) every `keys` and `revoke` command could print RedisStore's two-line
// TOKEN_GUARD_REDIS_DURABILITY Node warning (whenever its start-up check answered before the command ended), read-only
// ones included. Now a command that writes prints one short note on stderr, after its result, a read-only one nothing,
// and exit codes stay the command's, also under NODE_ENV=production (where the store would refuse that Redis).
// Then (review): the note was printed while the store was closed, in the commands' `finally`, so it came before the
// result line and also for commands that changed nothing (an unknown key, exit 3; a usage error, exit 2). Now the
// command prints it after its own output, only once its change is made.
import { execFile } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { useCliRedis } from '../helpers/cli-redis.js';
import { REDIS_URL, stockRedisFor } from '../helpers/redis.js';
import { BIN, type CliRun, cli, FIXTURES, json } from './run.js';

const stockRedis = await stockRedisFor('redis-durability-note');

const NOTE = /^note: Redis at \S+ may lose this change: appendonly is no \(set appendonly yes\)$/;

/** stderr's lines, without the empty one after the last newline. */
const lines = (run: CliRun): string[] => run.stderr.split('\n').filter((l) => l !== '');

/** Runs the command with stderr on stdout's pipe, so the lines come in the order they were written; its exit code and lines. */
function cliInOrder(args: readonly string[], env: Record<string, string>): Promise<{ code: number | null; lines: string[] }> {
  return new Promise((resolve) => {
    // `exec "$0" "$@" 2>&1`: the shell hands its arguments on untouched.
    const child = execFile(
      '/bin/sh',
      ['-c', 'exec "$0" "$@" 2>&1', process.execPath, BIN, ...args],
      { cwd: FIXTURES, env: { PATH: process.env['PATH'] ?? '', ...env }, timeout: 45_000 },
      (_err, stdout) => resolve({ code: child.exitCode, lines: stdout.split('\n').filter((l) => l !== '') }),
    );
  });
}

describe.skipIf(!stockRedis)('token-guard on a Redis that may lose what it is given', () => {
  const redis = useCliRedis('cli-durability');
  const { prefix } = redis;
  const env = { REDIS_URL };

  it('prints one note line for each command that writes, none for those that only read, and no Node warning', async () => {
    const issued = await cli(['keys', 'issue', '--prefix', prefix, '--subject', 'svc-a', '--key-prefix', 'tg_', '--expires-in', '30d', '--json'], { env });
    expect(issued.code).toBe(0);
    expect(lines(issued)).toEqual([expect.stringMatching(NOTE)]);
    const id = json<{ record: { id: string } }>(issued).record.id;

    const rotated = await cli(['keys', 'rotate', id, '--grace', '1h', '--prefix', prefix], { env });
    expect(rotated.code).toBe(0);
    expect(lines(rotated)).toEqual([expect.stringMatching(NOTE)]);

    for (const args of [
      ['keys', 'revoke', id, '--reason', 'compromised'],
      ['revoke', 'token', 'jti-1', '--reason', 'compromised'],
      ['revoke', 'subject', 'svc-b'],
    ]) {
      const run = await cli([...args, '--prefix', prefix], { env });
      expect(run.code, args.join(' ')).toBe(0);
      expect(lines(run), args.join(' ')).toEqual([expect.stringMatching(NOTE)]);
    }

    for (const args of [
      ['keys', 'list', 'svc-a'],
      ['keys', 'show', id],
    ]) {
      const run = await cli([...args, '--prefix', prefix], { env });
      expect(run.code, args.join(' ')).toBe(0);
      expect(run.stderr, args.join(' ')).toBe('');
    }
  });

  it('under NODE_ENV=production a revocation is still written (exit 0) with the note, and --json keeps stdout one document', async () => {
    const run = await cli(['revoke', 'token', 'jti-2', '--prefix', prefix, '--json'], { env: { ...env, NODE_ENV: 'production' } });
    expect(run.code).toBe(0);
    expect(json(run)).toMatchObject({ revoked: { tokenId: 'jti-2' } });
    expect(lines(run)).toEqual([expect.stringMatching(NOTE)]);
    expect(await redis.store.getRevocation('jti-2', undefined, Date.now())).toMatchObject({ revokedAt: expect.any(Number) });
  });

  it('prints the note after the result, and only once a change was made: not for an unknown key (3), a usage error (2) or a conflict (8)', async () => {
    const issued = await cliInOrder(['keys', 'issue', '--prefix', prefix, '--subject', 'svc-c', '--key-prefix', 'tg_', '--expires-in', '30d'], env);
    expect(issued.code).toBe(0);
    expect(issued.lines[0]).toMatch(/^Issued key_\S+ for svc-c in /);
    expect(issued.lines.at(-1)).toMatch(NOTE);
    expect(issued.lines.filter((l) => NOTE.test(l))).toHaveLength(1);
    const id = /^Issued (key_\S+) /.exec(issued.lines[0] ?? '')?.[1] as string;

    const revoked = await cliInOrder(['revoke', 'token', 'jti-3', '--prefix', prefix, '--json'], env);
    expect(revoked.code).toBe(0);
    expect(revoked.lines.at(-1)).toMatch(NOTE);
    expect(JSON.parse(revoked.lines.slice(0, -1).join('\n'))).toMatchObject({ revoked: { tokenId: 'jti-3' } });

    for (const [args, code] of [
      [['keys', 'rotate', 'key_unknown'], 3],
      [['keys', 'revoke', 'key_unknown'], 3],
      // Past the connection: rotateApiKey refuses the grace (at most 30 days) and rotates nothing.
      [['keys', 'rotate', id, '--grace', '40d'], 2],
    ] as const) {
      const run = await cli([...args, '--prefix', prefix], { env });
      expect(run.code, args.join(' ')).toBe(code);
      expect(lines(run), args.join(' ')).toEqual([expect.stringMatching(/^token-guard: /), ...(code === 2 ? [expect.stringContaining('See the README')] : [])]);
    }
    expect((await cli(['keys', 'revoke', id, '--prefix', prefix], { env })).code).toBe(0);
    const again = await cli(['keys', 'revoke', id, '--prefix', prefix], { env });
    expect(again.code).toBe(8);
    expect(lines(again)).toEqual([expect.stringMatching(/already revoked/)]);
  });
});
