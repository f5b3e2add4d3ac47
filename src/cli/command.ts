// The command table's shape, the argument parser (node's util.parseArgs per command, after the command words
// have picked the command) and the help text, generated from the same table so it cannot drift from the parser.
import { parseArgs } from 'node:util';
import { closest } from '../leaf/suggest.js';
import { usage } from './exit.js';
import type { Output } from './output.js';

/** One option of a command. */
export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** May be given several times; the values come as an array. */
  multiple?: boolean;
  /** Placeholder shown in help: `URL`, `DURATION`. */
  value?: string;
  description: string;
}

/** One positional argument. */
export interface PositionalSpec {
  name: string;
  description: string;
}

/** What a command's `run` receives: its parsed arguments and where to write. */
export interface CommandContext {
  options: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  out: Output;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

/** A command that runs (`keys issue`, `explain`). */
export interface Command {
  summary: string;
  /** Paragraphs after the usage line. */
  description?: string;
  positionals?: readonly PositionalSpec[];
  options?: Readonly<Record<string, OptionSpec>>;
  examples?: readonly string[];
  /** Resolves to the exit code. Throws CliError (or a token-guard error) for a failure. */
  run(ctx: CommandContext): Promise<number>;
}

/** A group of commands (`keys`, `revoke`). */
export interface Group {
  summary: string;
  commands: Readonly<Record<string, Command | Group>>;
}

const isGroup = (c: Command | Group): c is Group => 'commands' in c;

/** Options every command takes. */
export const COMMON_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  json: { type: 'boolean', description: 'print one JSON document on stdout (errors too) instead of tables' },
  help: { type: 'boolean', short: 'h', description: 'show this help' },
};

/** What the argument words select: a command with its remaining words, a group's help, or the version. */
export type Selection =
  | { kind: 'command'; name: string; command: Command; args: string[] }
  | { kind: 'help'; name: string; node: Command | Group /** No command given: help on stderr, exit 2. */; missing: boolean }
  | { kind: 'version' };

const wantsHelp = (args: readonly string[]): boolean => {
  const end = args.indexOf('--');
  return (end === -1 ? args : args.slice(0, end)).some((a) => a === '--help' || a === '-h');
};

/** Walks the command words: `keys issue --subject x` selects `keys issue`. Throws CliError (usage) for an unknown word. */
export function select(root: Group, argv: readonly string[], program: string): Selection {
  let node: Command | Group = root;
  let name = program;
  let i = 0;
  for (; isGroup(node) && i < argv.length; i++) {
    const word = argv[i] as string;
    if (word.startsWith('-')) break;
    const next: Command | Group | undefined = Object.hasOwn(node.commands, word) ? node.commands[word] : undefined;
    if (!next) {
      const hint = closest(word, Object.keys(node.commands));
      throw usage(`unknown command "${word}" for ${name}`, hint ? `did you mean "${name} ${hint}"? See ${name} --help` : `see ${name} --help`);
    }
    node = next;
    name = `${name} ${word}`;
  }
  const args = argv.slice(i);
  if (node === root && (args[0] === '--version' || args[0] === '-v')) return { kind: 'version' };
  if (isGroup(node)) {
    if (args.length === 0 || wantsHelp(args)) return { kind: 'help', name, node, missing: !wantsHelp(args) };
    throw usage(`${name}: expected a command, got "${args[0]}"`, `see ${name} --help`);
  }
  if (wantsHelp(args)) return { kind: 'help', name, node, missing: false };
  return { kind: 'command', name, command: node, args };
}

/** Parses a command's words strictly: an unknown option, a missing value or a wrong number of positionals is a usage error. */
export function parseCommand(name: string, command: Command, args: string[]): { options: CommandContext['options']; positionals: string[] } {
  const specs = { ...command.options, ...COMMON_OPTIONS };
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const [key, s] of Object.entries(specs)) {
    options[key] = { type: s.type, ...(s.short !== undefined && { short: s.short }), ...(s.multiple !== undefined && { multiple: s.multiple }) };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw usage(`${name}: ${parseArgsMessage(err, Object.keys(specs))}`, `see ${name} --help`);
  }
  const expected = command.positionals ?? [];
  const got = parsed.positionals;
  if (got.length !== expected.length) {
    const names = expected.map((p) => p.name).join(' ');
    const message =
      got.length < expected.length
        ? `missing ${expected
            .slice(got.length)
            .map((p) => p.name)
            .join(' ')}`
        : `unexpected argument "${got[expected.length]}"`;
    throw usage(`${name}: ${message}`, `usage: ${name}${names ? ` ${names}` : ''} [options] (see ${name} --help)`);
  }
  return { options: parsed.values as CommandContext['options'], positionals: got };
}

/** util.parseArgs's messages, shortened, with a "did you mean" for a misspelt option. */
function parseArgsMessage(err: unknown, known: readonly string[]): string {
  const e = err as { code?: string; message?: string };
  // Some of node's messages run over several lines (an ambiguous `--flag -1`): one line, as every CLI message is.
  const message = (e.message ?? String(err))
    .replace(/\. To specify a positional argument.*$/s, '')
    .replace(/\.$/, '')
    .replace(/\s*\n\s*/g, ' ');
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const m = /'(-{1,2})([^'=]+)/.exec(message);
    const hint = m?.[2] && m[1] === '--' ? closest(m[2], known) : undefined;
    return hint ? `${message} (did you mean --${hint}?)` : message;
  }
  return message;
}

/** A required string option, or a usage error naming it. */
export function required(ctx: CommandContext, key: string, name: string): string {
  const v = ctx.options[key];
  if (typeof v !== 'string' || v === '') throw usage(`${name}: --${key} is required`, `see ${name} --help`);
  return v;
}

/** An optional string option. */
export function optional(ctx: CommandContext, key: string): string | undefined {
  const v = ctx.options[key];
  return typeof v === 'string' ? v : undefined;
}

/** A repeatable option, each value also split at commas: `--scopes a,b --scopes c` → `[a, b, c]`. */
export function list(ctx: CommandContext, key: string): string[] {
  const v = ctx.options[key];
  const values = Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
  return values
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** A repeatable option's raw values. */
export function many(ctx: CommandContext, key: string): string[] {
  const v = ctx.options[key];
  return Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
}

/** Help for a group or a command, from the table. */
export function helpText(name: string, node: Command | Group): string {
  const lines: string[] = [];
  if (isGroup(node)) {
    lines.push(node.summary, '', `Usage: ${name} <command> [options]`, '', 'Commands:');
    const rows = Object.entries(node.commands).map(([k, c]) => [`${k}${isGroup(c) ? ' <command>' : ''}`, c.summary] as const);
    const width = Math.max(...rows.map(([k]) => k.length));
    for (const [k, s] of rows) lines.push(`  ${k.padEnd(width)}  ${s}`);
    lines.push('', `Run "${name} <command> --help" for a command's options.`);
    return lines.join('\n');
  }
  const positionals = node.positionals ?? [];
  lines.push(node.summary, '', `Usage: ${name}${positionals.map((p) => ` ${p.name}`).join('')} [options]`);
  if (node.description) lines.push('', node.description);
  if (positionals.length) {
    lines.push('', 'Arguments:');
    const width = Math.max(...positionals.map((p) => p.name.length));
    for (const p of positionals) lines.push(`  ${p.name.padEnd(width)}  ${p.description}`);
  }
  const specs = { ...node.options, ...COMMON_OPTIONS };
  const rows = Object.entries(specs).map(([k, s]) => {
    const flag = `${s.short ? `-${s.short}, ` : '    '}--${k}${s.type === 'string' ? ` ${s.value ?? 'VALUE'}` : ''}`;
    return [flag, `${s.description}${s.multiple ? ' (repeatable)' : ''}`] as const;
  });
  const width = Math.max(...rows.map(([f]) => f.length));
  lines.push('', 'Options:');
  for (const [f, d] of rows) lines.push(`  ${f.padEnd(width)}  ${d}`);
  if (node.examples?.length) {
    lines.push('', 'Examples:');
    for (const e of node.examples) lines.push(`  ${e}`);
  }
  return lines.join('\n');
}
