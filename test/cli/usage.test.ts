// The command line itself: help on every command, and bad arguments answered with a message and exit 2, never a stack.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, cli, json, ROOT } from './run.js';

const COMMANDS = [
  ['keys'],
  ['keys', 'issue'],
  ['keys', 'list'],
  ['keys', 'show'],
  ['keys', 'rotate'],
  ['keys', 'revoke'],
  ['revoke'],
  ['revoke', 'token'],
  ['revoke', 'subject'],
  ['policy'],
  ['policy', 'check'],
  ['explain'],
] as const;

const noStack = (text: string) => expect(text).not.toMatch(/\n\s+at .+:\d+:\d+/);

describe('the bin', () => {
  it('is package.json `bin.token-guard`, an ES module with a shebang', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string>; type: string };
    expect(path.resolve(ROOT, pkg.bin['token-guard'] as string)).toBe(BIN);
    expect(pkg.type).toBe('module');
    expect(readFileSync(BIN, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
  });
});

describe('token-guard --help', () => {
  it('lists every command group at the top', async () => {
    const r = await cli(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['keys', 'revoke', 'policy', 'explain']) expect(r.stdout).toContain(`  ${c}`);
    expect(r.stderr).toBe('');
  });

  it.each(COMMANDS.map((c) => c.join(' ')))('answers --help for %s', async (command) => {
    const words = command.split(' ');
    const r = await cli([...words, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Usage: token-guard ${words.join(' ')}`);
    if (words.length === 2 || words[0] === 'explain') expect(r.stdout).toContain('--json');
  });

  it('answers -h after other options, even ones that would not parse', async () => {
    const r = await cli(['keys', 'issue', '--no-such-option', '-h']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('--subject SUBJECT');
  });

  it('prints the version', async () => {
    const r = await cli(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe('bad arguments exit 2 with a message and no stack trace', () => {
  it('prints the help on stderr when no command is given', async () => {
    const r = await cli([]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('Usage: token-guard <command>');
  });

  it('names an unknown command and suggests the close one', async () => {
    const r = await cli(['kyes', 'issue']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown command "kyes"');
    expect(r.stderr).toContain('did you mean "token-guard keys"');
    noStack(r.stderr);
  });

  it('names an unknown subcommand', async () => {
    const r = await cli(['revoke', 'tokens', 'abc']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('did you mean "token-guard revoke token"');
  });

  it('names an unknown option and suggests the close one', async () => {
    const r = await cli(['keys', 'issue', '--subjet', 'alice']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("Unknown option '--subjet'");
    expect(r.stderr).toContain('did you mean --subject?');
    noStack(r.stderr);
  });

  it('refuses a missing option value', async () => {
    const r = await cli(['revoke', 'token', 'abc', '--redis']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("'--redis");
  });

  it('refuses a missing positional and an extra one', async () => {
    const missing = await cli(['revoke', 'subject']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('missing SUBJECT');
    const extra = await cli(['revoke', 'subject', 'alice', 'bob']);
    expect(extra.code).toBe(2);
    expect(extra.stderr).toContain('unexpected argument "bob"');
  });

  it('refuses a required option left out, before touching Redis', async () => {
    const r = await cli(['keys', 'issue', '--subject', 'alice', '--expires-in', '1d']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--key-prefix is required');
  });

  it('refuses bad values with what was expected', async () => {
    const cases: [string[], string][] = [
      [['keys', 'issue', '--subject', 'a', '--key-prefix', 'tg_', '--expires-in', 'soon'], 'expected a duration'],
      [['keys', 'issue', '--subject', 'a', '--key-prefix', 'tg_', '--expires-in', '1d', '--rate-limit', '10'], 'expected LIMIT/WINDOW'],
      [['keys', 'issue', '--subject', 'a', '--key-prefix', 'bad prefix', '--expires-in', '1d'], 'prefix'],
      [['revoke', 'subject', 'alice', '--before', 'yesterday-ish', '--redis', 'redis://127.0.0.1:1'], 'expected an ISO 8601 time'],
      // Regression: each of these was taken (exit 0) and stored nothing, or a cut-off in 1970.
      [['revoke', 'token', 'abc', '--expires-at', '2020-01-01T00:00:00Z', '--redis', 'redis://127.0.0.1:1'], 'has already passed'],
      [['revoke', 'token', 'abc', '--expires-at', '1767268800', '--redis', 'redis://127.0.0.1:1'], 'epoch seconds'],
      [['revoke', 'subject', 'bob', '--expires-at', '2027', '--redis', 'redis://127.0.0.1:1'], 'epoch seconds'],
      [['revoke', 'subject', 'carol', '--before', '1767268800', '--redis', 'redis://127.0.0.1:1'], 'epoch seconds'],
      [['revoke', 'token', 'abc', '--redis', 'http://127.0.0.1:6379'], 'redis:// or rediss://'],
      // Regression: a bare % in the password was an internal error (exit 1); a database that is no number went to 0.
      [['revoke', 'token', 'abc', '--redis', 'redis://:hunter2%pw@127.0.0.1:1'], 'must be written %25'],
      [['revoke', 'token', 'abc', '--redis', 'redis://127.0.0.1:1/two'], 'must be a number'],
      [['revoke', 'token', 'abc', '--redis', 'redis://127.0.0.1:6379', '--timeout', '0'], '--timeout'],
      [['explain', '--policy', 'good.mjs', 'GET', 'orders'], 'PATH must start with /'],
      [['explain', '--policy', 'good.mjs', '--header', 'nocolon', 'GET', '/x'], 'expected NAME:VALUE'],
    ];
    const runs = await Promise.all(cases.map(([args]) => cli(args)));
    cases.forEach(([args, message], i) => {
      const r = runs[i] as Awaited<ReturnType<typeof cli>>;
      expect([args.join(' '), r.code]).toEqual([args.join(' '), 2]);
      expect(r.stderr).toContain(message);
      noStack(r.stderr);
    });
  }, 60_000);

  it('asks for a Redis when neither --redis nor REDIS_URL is given', async () => {
    const r = await cli(['revoke', 'token', 'abc']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no Redis given');
    expect(r.stderr).toContain('REDIS_URL');
  });

  it('reports a usage error as JSON under --json', async () => {
    const r = await cli(['revoke', 'subject', '--json']);
    expect(r.code).toBe(2);
    expect(json(r)).toEqual({ error: expect.objectContaining({ code: 'cli.usage', exit: 2, message: expect.stringContaining('missing SUBJECT') }) });
    expect(r.stderr).toBe('');
  });
});
