// `token-guard keys …`: API keys in the app's Redis, through the library's lifecycle calls (createApiKey,
// listApiKeys, findApiKey, rotateApiKey, revokeApiKey), so every change leaves the same lifecycle event an app's
// own call would.
import { issueApiKey, type IssueApiKeyOptions } from '../../core/issue-api-key.js';
import { type ApiKeySummary, createApiKey, findApiKey, listApiKeys, listLifecycleEvents, revokeApiKey, rotateApiKey, summarize } from '../../core/key-lifecycle.js';
import { parseDuration } from '../../leaf/duration.js';
import { LifecycleEventError } from '../../leaf/errors.js';
import type { HoursRule } from '../../leaf/hours-rule.js';
import type { LifecycleEvent } from '../../leaf/lifecycle.js';
import type { TokenStore } from '../../leaf/store.js';
import { type Command, type CommandContext, type Group, list, many, optional, required } from '../command.js';
import { CliError, EXIT, usage } from '../exit.js';
import { issueFormat, rotateFormat } from '../key-format.js';
import { ACTOR_OPTION, actorOf, REASON_OPTION, reasonOf } from '../lifecycle-options.js';
import { when } from '../output.js';
import { noteDurability } from '../redis.js';
import { CLOCK_TOLERANCE_OPTION, openTarget, STORE_OPTIONS, type Target } from '../target.js';
import { parseDurationFlag, parseJson, parsePairs, parseRateLimit } from '../values.js';

const date = (d: Date | null | undefined): string => (d === null ? 'never' : d === undefined ? '-' : d.toISOString());

/** What a call made, and the failure to report of its lifecycle event when that could not be kept. */
interface Made<T> {
  value: T;
  unrecorded: LifecycleEventError | undefined;
}

/**
 * Runs a call that makes a key. A key made whose event the store could not keep is in the store and works, and its
 * plaintext is in the error alone: it is printed like any other, and the command then fails (exit 4).
 */
async function making<T>(call: () => Promise<T>): Promise<Made<T>> {
  try {
    return { value: await call(), unrecorded: undefined };
  } catch (err) {
    if (err instanceof LifecycleEventError && err.result !== undefined) return { value: err.result as T, unrecorded: err };
    throw err;
  }
}

/** The failure after a key was made and shown but its event not kept; `result` for `--json`, which shows both. */
function unrecorded(err: LifecycleEventError, result?: unknown): CliError {
  return new CliError('cli.store_unreachable', `store failed: ${err.message}; the key ${result === undefined ? 'shown above' : 'in "result"'} is stored and works`, {
    cause: err,
    help: 'keep a record of the change yourself, or revoke the key (token-guard keys revoke) once the store is back',
    ...(result !== undefined && { result }),
  });
}

/** A key's summary as FIELD / VALUE rows. */
export function summaryRows(k: ApiKeySummary): [string, string][] {
  const rows: [string, string][] = [
    ['id', k.id],
    ['state', k.state],
    ['subject', k.subject],
    ['scopes', k.scopes.join(' ') || '-'],
    ['key', `${k.prefix}…${k.lastFour ?? ''}`],
    ['created', date(k.createdAt)],
    ['expires', date(k.expiresAt)],
  ];
  if (k.name !== undefined) rows.push(['name', k.name]);
  if (k.lastUsedAt) rows.push(['last used', date(k.lastUsedAt)]);
  if (k.remaining !== undefined) rows.push(['uses left', String(k.remaining)]);
  if (k.revokedAt) rows.push([k.state === 'grace' ? 'sunset' : 'revoked', date(k.revokedAt)]);
  if (k.revocationReason !== undefined) rows.push(['reason', k.revocationReason]);
  if (k.rotatedAt) rows.push(['rotated', date(k.rotatedAt)]);
  if (k.rotatedFrom !== undefined) rows.push(['rotated from', k.rotatedFrom]);
  if (k.rotatedTo !== undefined) rows.push(['rotated to', k.rotatedTo]);
  if (k.metadata) rows.push(['metadata', JSON.stringify(k.metadata)]);
  return rows;
}

function eventRow(e: LifecycleEvent): string[] {
  const extra = [e.successorId ? `successor ${e.successorId}` : '', e.sunsetAt !== undefined ? `sunset ${when(e.sunsetAt)}` : ''].filter(Boolean).join('; ');
  return [when(e.at), e.type, e.actor ?? '-', e.reason ?? '-', extra || '-'];
}

/** The checksum secret named by `--checksum-secret-env`, read from the environment (never argv: shell history, ps). */
function checksumSecret(ctx: CommandContext): { secret: string; variable: string } | undefined {
  const variable = optional(ctx, 'checksum-secret-env');
  if (variable === undefined) return undefined;
  const secret = ctx.env[variable];
  if (!secret) throw usage(`--checksum-secret-env: the environment variable ${variable} is not set`);
  return { secret, variable };
}

/** The options of the summaries: the app's clock tolerance, so a key is shown revoked exactly when the app refuses it. */
const readAs = (open: Target) => ({ clockTolerance: open.clockToleranceMs });

/** Why `--clock-tolerance` matters to a command that reads a key's state, for its help. */
const TOLERANCE_NOTE =
  "A key made within the app's clock tolerance after a subject revocation's cut-off is refused by the app, and shown\n" +
  "revoked: give the app's tolerance with --clock-tolerance (without --policy the command assumes the default 5 s).";

const SECRET_OPTION = {
  'checksum-secret-env': {
    type: 'string',
    value: 'VAR',
    description: "environment variable holding the policy's apiKeys.checksumSecret. Default with --policy: the policy's",
  },
} as const;

/** Prints a new key once, with the warning that it cannot be shown again. */
function printKey(ctx: CommandContext, key: string): void {
  ctx.out.line();
  ctx.out.line(`  ${key}`);
  ctx.out.line();
  ctx.out.line('Copy the key now: it is shown once and stored nowhere (the store keeps only its SHA-256).');
  ctx.out.line();
}

const issue: Command = {
  summary: 'issue a new API key and store its record (the key is printed once)',
  description:
    'Mints a key and stores its record with createApiKey (a key.issued lifecycle event). Only the SHA-256 of the key is\n' +
    'stored: copy the printed key now, it cannot be shown again. A keyed checksum secret is read from an environment\n' +
    'variable, never from the command line (shell history).',
  options: {
    subject: { type: 'string', value: 'SUBJECT', description: 'who the key belongs to (required)' },
    scopes: { type: 'string', multiple: true, value: 'A,B', description: 'scopes the key grants, comma-separated' },
    'key-prefix': {
      type: 'string',
      value: 'PREFIX',
      description: "the key's prefix, one of the policy's apiKeys.prefix, e.g. tg_ (required; with --policy: its prefix, or one of its several)",
    },
    'expires-in': { type: 'string', value: 'DURATION', description: 'lifetime: 90d, 12h, … or "never" (required)' },
    name: { type: 'string', value: 'NAME', description: 'a label for humans' },
    'ip-allow': { type: 'string', multiple: true, value: 'CIDR', description: 'client addresses the key may be used from' },
    'ip-deny': { type: 'string', multiple: true, value: 'CIDR', description: 'client addresses the key may not be used from' },
    hours: { type: 'string', value: 'JSON', description: 'hours rule, e.g. \'{"timezone":"UTC","windows":[{"from":"08:00","to":"18:00"}]}\'' },
    'rate-limit': { type: 'string', value: 'N/WINDOW', description: "the key's own rate limit, e.g. 100/1m" },
    uses: { type: 'string', value: 'N', description: 'number of uses, after which the key is refused' },
    metadata: { type: 'string', multiple: true, value: 'K=V', description: 'metadata returned on req.auth.token.metadata' },
    ...SECRET_OPTION,
    ...ACTOR_OPTION,
    ...STORE_OPTIONS,
  },
  examples: [
    'token-guard keys issue --redis redis://127.0.0.1:6379 --subject svc-billing --scopes orders:read --key-prefix tg_ --expires-in 90d',
    'REDIS_URL=redis://cache:6379 token-guard keys issue --subject ci --key-prefix tg_ --expires-in 1d --uses 10 --json',
  ],
  async run(ctx) {
    const name = 'token-guard keys issue';
    const expires = required(ctx, 'expires-in', name);
    // With --policy the policy's apiKeys say which prefix (and secret) its keys have: read once it is loaded.
    const prefix = optional(ctx, 'policy') === undefined ? required(ctx, 'key-prefix', name) : optional(ctx, 'key-prefix');
    const options: IssueApiKeyOptions = {
      prefix: prefix ?? 'tg_',
      subject: required(ctx, 'subject', name),
      scopes: list(ctx, 'scopes'),
      expiresIn: expires === 'never' ? null : parseDurationFlag('--expires-in', expires),
    };
    const allow = list(ctx, 'ip-allow');
    const deny = list(ctx, 'ip-deny');
    if (allow.length || deny.length) options.ip = { ...(allow.length && { allow }), ...(deny.length && { deny }) };
    const hours = optional(ctx, 'hours');
    if (hours !== undefined) options.hours = parseJson('--hours', hours) as HoursRule;
    const rate = optional(ctx, 'rate-limit');
    if (rate !== undefined) options.rateLimit = parseRateLimit('--rate-limit', rate) as IssueApiKeyOptions['rateLimit'] & object;
    const uses = optional(ctx, 'uses');
    if (uses !== undefined) {
      if (!/^\d+$/.test(uses)) throw usage(`--uses: expected a positive integer (got ${JSON.stringify(uses)})`);
      options.uses = Number(uses);
    }
    const label = optional(ctx, 'name');
    if (label !== undefined) options.name = label;
    const metadata = many(ctx, 'metadata');
    if (metadata.length) options.metadata = parsePairs('--metadata', metadata);
    const secret = checksumSecret(ctx);
    if (secret !== undefined) options.checksumSecret = secret.secret;
    const actor = actorOf(ctx);
    // Checked before connecting (the key minted here is dropped): a bad option is a usage error whether or not Redis is up.
    issueApiKey(options);
    const open = await openTarget(ctx, name, { writes: true });
    let made: Made<Awaited<ReturnType<typeof createApiKey>>>;
    try {
      if (open.policy) {
        const format = issueFormat(name, open.policy, prefix, secret);
        options.prefix = format.prefix;
        if (format.checksumSecret === undefined) delete options.checksumSecret;
        else options.checksumSecret = format.checksumSecret;
      }
      made = await making(() => createApiKey(open.store, { ...options, actor }));
    } finally {
      await open.close();
    }
    const { key, record } = made.value;
    if (ctx.out.json) {
      // The key once, by design; its record as listings show it: never the hash, which works as a lookup key.
      const result = { key, record: summarize(record, record.createdAt) };
      if (made.unrecorded) {
        // The key is stored all the same: the note is owed, ahead of the failure (the last word).
        await noteDurability(ctx, open);
        throw unrecorded(made.unrecorded, result);
      }
      ctx.out.result(result);
      await noteDurability(ctx, open);
      return EXIT.ok;
    }
    ctx.out.line(`Issued ${record.id} for ${record.subject} in ${open.where}.`);
    printKey(ctx, key);
    ctx.out.table(
      ['FIELD', 'VALUE'],
      [
        ['id', record.id],
        ['subject', record.subject],
        ['scopes', record.scopes.join(' ') || '-'],
        ['expires', when(record.expiresAt)],
        ...(record.remaining === undefined ? [] : [['uses left', String(record.remaining)]]),
      ],
    );
    await noteDurability(ctx, open);
    if (made.unrecorded) throw unrecorded(made.unrecorded);
    return EXIT.ok;
  },
};

const listCommand: Command = {
  summary: "list a subject's keys (metadata only: never a key or its hash)",
  description: TOLERANCE_NOTE,
  positionals: [{ name: 'SUBJECT', description: 'whose keys' }],
  options: { ...CLOCK_TOLERANCE_OPTION, ...STORE_OPTIONS },
  examples: ['token-guard keys list svc-billing --redis redis://127.0.0.1:6379'],
  async run(ctx) {
    const name = 'token-guard keys list';
    const subject = ctx.positionals[0] as string;
    const open = await openTarget(ctx, name);
    let keys: ApiKeySummary[];
    try {
      keys = await listApiKeys(open.store, subject, readAs(open));
    } finally {
      await open.close();
    }
    if (ctx.out.json) {
      ctx.out.result({ subject, keys });
      return EXIT.ok;
    }
    if (keys.length === 0) {
      ctx.out.line(`No keys for ${subject} in ${open.where}.`);
      return EXIT.ok;
    }
    ctx.out.table(
      ['ID', 'STATE', 'KEY', 'SCOPES', 'CREATED', 'EXPIRES', 'LAST USED', 'NAME'],
      keys.map((k) => [k.id, k.state, `${k.prefix}…${k.lastFour ?? ''}`, k.scopes.join(' ') || '-', date(k.createdAt), date(k.expiresAt), date(k.lastUsedAt), k.name ?? '-']),
    );
    return EXIT.ok;
  },
};

const show: Command = {
  summary: 'show one key by id, with its lifecycle events',
  description: TOLERANCE_NOTE,
  positionals: [{ name: 'ID', description: 'the key record id, key_…' }],
  options: { ...CLOCK_TOLERANCE_OPTION, ...STORE_OPTIONS },
  examples: ['token-guard keys show key_3f2a… --redis redis://127.0.0.1:6379'],
  async run(ctx) {
    const name = 'token-guard keys show';
    const id = ctx.positionals[0] as string;
    const open = await openTarget(ctx, name);
    let key: ApiKeySummary | undefined;
    let events: LifecycleEvent[] = [];
    try {
      key = await findApiKey(open.store, id, readAs(open));
      if (key && (open.store as TokenStore).listLifecycleEvents) events = await listLifecycleEvents(open.store, { tokenId: id });
    } finally {
      await open.close();
    }
    if (!key) throw new CliError('cli.not_found', `${name}: no key ${id} in ${open.where}`, { help: 'keys list SUBJECT shows the ids of a subject’s keys' });
    if (ctx.out.json) {
      ctx.out.result({ key, events });
      return EXIT.ok;
    }
    ctx.out.table(['FIELD', 'VALUE'], summaryRows(key));
    if (events.length) {
      ctx.out.line();
      ctx.out.table(['AT', 'EVENT', 'ACTOR', 'REASON', 'DETAIL'], events.map(eventRow));
    }
    return EXIT.ok;
  },
};

const rotate: Command = {
  summary: 'issue a successor for a key; the old one keeps working for --grace, then is revoked',
  description:
    'rotateApiKey: the successor gets the same subject, scopes and constraints; the old key answers with Deprecation and\n' +
    'Sunset headers during the grace period and is refused after it. The new key is printed once. A key the app refuses\n' +
    'under a subject revocation (made within its clock tolerance after the cut-off: --clock-tolerance) is not rotated.',
  positionals: [{ name: 'ID', description: 'the key record id to rotate, key_…' }],
  options: {
    grace: { type: 'string', value: 'DURATION', description: 'how long the old key keeps working, 0 to 30d (0 for a key with --uses). Default: 0 (refused at once)' },
    'expires-in': { type: 'string', value: 'DURATION', description: 'lifetime of the successor, or "never". Default: the old key\'s lifetime' },
    ...REASON_OPTION,
    ...SECRET_OPTION,
    ...ACTOR_OPTION,
    ...CLOCK_TOLERANCE_OPTION,
    ...STORE_OPTIONS,
  },
  examples: ['token-guard keys rotate key_3f2a… --grace 24h --actor alice --redis redis://127.0.0.1:6379'],
  async run(ctx) {
    const name = 'token-guard keys rotate';
    const id = ctx.positionals[0] as string;
    const grace = optional(ctx, 'grace');
    const expires = optional(ctx, 'expires-in');
    const reason = reasonOf(ctx);
    const secret = checksumSecret(ctx);
    const options: Parameters<typeof rotateApiKey>[2] = { actor: actorOf(ctx) };
    if (grace !== undefined) {
      // Zero is a grace too (refused at once); the range (at most 30 days) is rotateApiKey's to check.
      const ms = parseDuration(/^\d+$/.test(grace) ? Number(grace) : grace);
      if (ms === undefined) throw usage(`--grace: expected a duration like 0, 30m, 24h, 7d (got ${JSON.stringify(grace)})`);
      options.grace = ms;
    }
    if (expires !== undefined) options.expiresIn = expires === 'never' ? null : parseDurationFlag('--expires-in', expires);
    if (reason !== undefined) options.reason = reason;
    if (secret !== undefined) options.checksumSecret = secret.secret;
    const open = await openTarget(ctx, name, { writes: true });
    let made: Made<Awaited<ReturnType<typeof rotateApiKey>>>;
    try {
      Object.assign(options, readAs(open));
      const old = open.policy ? await findApiKey(open.store, id, readAs(open)) : undefined;
      // An unknown key is rotateApiKey's to report (exit 3).
      if (open.policy && old) {
        const own = rotateFormat(name, open.policy, id, old.prefix, secret);
        if (own === undefined) delete options.checksumSecret;
        else options.checksumSecret = own;
      }
      made = await making(() => rotateApiKey(open.store, id, options));
    } finally {
      await open.close();
    }
    const rotated = made.value;
    if (ctx.out.json) {
      // As `issue`: the successor's key once, its record without the hash.
      const result = { ...rotated, record: summarize(rotated.record, rotated.record.createdAt) };
      if (made.unrecorded) {
        await noteDurability(ctx, open);
        throw unrecorded(made.unrecorded, result);
      }
      ctx.out.result(result);
      await noteDurability(ctx, open);
      return EXIT.ok;
    }
    ctx.out.line(`Rotated ${id} to ${rotated.record.id} in ${open.where}; ${id} stops working at ${date(rotated.sunsetAt)}.`);
    printKey(ctx, rotated.key);
    ctx.out.table(['FIELD', 'VALUE'], summaryRows(rotated.previous));
    await noteDurability(ctx, open);
    if (made.unrecorded) throw unrecorded(made.unrecorded);
    return EXIT.ok;
  },
};

const revoke: Command = {
  summary: 'revoke an API key by id at once, with a reason',
  description: 'revokeApiKey: the key is refused from the next request on, on every instance sharing the Redis; the reason is kept on its record.',
  positionals: [{ name: 'ID', description: 'the key record id, key_…' }],
  options: { ...REASON_OPTION, ...ACTOR_OPTION, ...STORE_OPTIONS },
  examples: ['token-guard keys revoke key_3f2a… --reason compromised --actor alice --redis redis://127.0.0.1:6379'],
  async run(ctx) {
    const name = 'token-guard keys revoke';
    const id = ctx.positionals[0] as string;
    const reason = reasonOf(ctx);
    const actor = actorOf(ctx);
    // Revokes: with a subscriber, to wait for the instances' confirmations as `revoke token` does.
    const open = await openTarget(ctx, name, { revokes: true });
    let summary: ApiKeySummary;
    try {
      summary = await revokeApiKey(open.store, id, reason === undefined ? { actor } : { actor, reason });
    } finally {
      await open.close();
    }
    if (ctx.out.json) ctx.out.result({ key: summary });
    else ctx.out.line(`Revoked ${id} (${summary.subject}) in ${open.where}${summary.revocationReason ? `: ${summary.revocationReason}` : ''}.`);
    await noteDurability(ctx, open);
    return EXIT.ok;
  },
};

/** `token-guard keys`. */
export const keys: Group = {
  summary: 'issue, list, show, rotate and revoke API keys in Redis',
  commands: { issue, list: listCommand, show, rotate, revoke },
};
