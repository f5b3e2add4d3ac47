// `token-guard keys …`: API keys in the app's Redis, issued and revoked with the library's own calls.
import { issueApiKey, type IssueApiKeyOptions } from '../../core/issue-api-key.js';
import type { ApiKeyRecord } from '../../leaf/store.js';
import type { HoursRule } from '../../leaf/hours-rule.js';
import { type Command, type CommandContext, type Group, list, many, optional, required } from '../command.js';
import { EXIT, usage } from '../exit.js';
import { when } from '../output.js';
import { openStore, REDIS_OPTIONS } from '../redis.js';
import { parseDurationFlag, parseJson, parsePairs, parseRateLimit, parseTime } from '../values.js';

/** A record for display: everything but the hash (not secret, but of no use to a reader). */
export function recordRows(r: ApiKeyRecord): [string, string][] {
  const rows: [string, string][] = [
    ['id', r.id],
    ['subject', r.subject],
    ['scopes', r.scopes.join(' ') || '-'],
    ['prefix', r.prefix],
    ['created', when(r.createdAt)],
    ['expires', when(r.expiresAt)],
  ];
  if (r.name !== undefined) rows.push(['name', r.name]);
  if (r.ip) rows.push(['ip', JSON.stringify(r.ip)]);
  if (r.hours) rows.push(['hours', JSON.stringify(r.hours)]);
  if (r.rateLimit) rows.push(['rate limit', `${r.rateLimit.limit}/${String(r.rateLimit.window)}`]);
  if (r.remaining !== undefined) rows.push(['uses left', String(r.remaining)]);
  if (r.revokedAt !== undefined) rows.push(['revoked', when(r.revokedAt)]);
  if (r.rotatedFrom !== undefined) rows.push(['rotated from', r.rotatedFrom]);
  if (r.rotatedTo !== undefined) rows.push(['rotated to', r.rotatedTo]);
  if (r.metadata) rows.push(['metadata', JSON.stringify(r.metadata)]);
  return rows;
}

const issue: Command = {
  summary: 'issue a new API key and store its record (the key is printed once)',
  description:
    'Mints a key with issueApiKey and stores its record with RedisStore.putApiKey. Only the SHA-256 of the key is stored:\n' +
    'copy the printed key now, it cannot be shown again. A keyed checksum secret is read from an environment variable,\n' +
    'never from the command line (shell history).',
  options: {
    subject: { type: 'string', value: 'SUBJECT', description: 'who the key belongs to (required)' },
    scopes: { type: 'string', multiple: true, value: 'A,B', description: 'scopes the key grants, comma-separated' },
    'key-prefix': { type: 'string', value: 'PREFIX', description: "the key's prefix, one of the policy's apiKeys.prefix (required), e.g. tg_" },
    'expires-in': { type: 'string', value: 'DURATION', description: 'lifetime: 90d, 12h, … or "never" (required)' },
    name: { type: 'string', value: 'NAME', description: 'a label for humans' },
    'ip-allow': { type: 'string', multiple: true, value: 'CIDR', description: 'client addresses the key may be used from' },
    'ip-deny': { type: 'string', multiple: true, value: 'CIDR', description: 'client addresses the key may not be used from' },
    hours: { type: 'string', value: 'JSON', description: 'hours rule, e.g. \'{"timezone":"UTC","windows":[{"from":"08:00","to":"18:00"}]}\'' },
    'rate-limit': { type: 'string', value: 'N/WINDOW', description: "the key's own rate limit, e.g. 100/1m" },
    uses: { type: 'string', value: 'N', description: 'number of uses, after which the key is refused' },
    metadata: { type: 'string', multiple: true, value: 'K=V', description: 'metadata returned on req.auth.token.metadata' },
    'checksum-secret-env': { type: 'string', value: 'VAR', description: "environment variable holding the policy's apiKeys.checksumSecret" },
    ...REDIS_OPTIONS,
  },
  examples: [
    'token-guard keys issue --redis redis://127.0.0.1:6379 --subject svc-billing --scopes orders:read --key-prefix tg_ --expires-in 90d',
    'REDIS_URL=redis://cache:6379 token-guard keys issue --subject ci --key-prefix tg_ --expires-in 1d --uses 10 --json',
  ],
  async run(ctx) {
    const name = 'token-guard keys issue';
    const expires = required(ctx, 'expires-in', name);
    const options: IssueApiKeyOptions = {
      prefix: required(ctx, 'key-prefix', name),
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
    const secretVar = optional(ctx, 'checksum-secret-env');
    if (secretVar !== undefined) {
      const secret = ctx.env[secretVar];
      if (!secret) throw usage(`--checksum-secret-env: the environment variable ${secretVar} is not set`);
      options.checksumSecret = secret;
    }
    // Before connecting: a bad option is a usage error whether or not Redis is up.
    const { key, record } = issueApiKey(options);
    const open = await openStore(ctx, name);
    try {
      await open.store.putApiKey(record);
    } finally {
      await open.close();
    }
    if (ctx.out.json) {
      ctx.out.result({ key, record });
      return EXIT.ok;
    }
    ctx.out.line(`Issued ${record.id} for ${record.subject} in ${open.where}.`);
    ctx.out.line();
    ctx.out.line(`  ${key}`);
    ctx.out.line();
    ctx.out.line('Copy the key now: it is shown once and stored nowhere (the store keeps only its SHA-256).');
    ctx.out.line();
    ctx.out.table(['FIELD', 'VALUE'], recordRows(record));
    return EXIT.ok;
  },
};

const revoke: Command = {
  summary: 'revoke an API key by its id (key_…), on every instance sharing the Redis',
  description: 'Stores a revocation for the key id (RedisStore.revoke), which every guard sharing the store honours on the next request.',
  positionals: [{ name: 'ID', description: 'the key record id, key_…' }],
  options: {
    'expires-at': { type: 'string', value: 'TIME', description: "keep the revocation until this time (the key's own expiry). Default: until deleted" },
    ...REDIS_OPTIONS,
  },
  examples: ['token-guard keys revoke key_3f2a… --redis redis://127.0.0.1:6379'],
  run: (ctx) => revokeToken(ctx, 'token-guard keys revoke'),
};

/** `keys revoke` and `revoke token`: a revocation by token id. */
export async function revokeToken(ctx: CommandContext, name: string): Promise<number> {
  const id = ctx.positionals[0] as string;
  if (id.trim() === '') throw usage(`${name}: the id is empty`);
  const now = Date.now();
  const at = optional(ctx, 'expires-at');
  const expiresAt = at === undefined ? undefined : parseTime('--expires-at', at, now);
  const open = await openStore(ctx, name);
  try {
    await open.store.revoke(id, expiresAt === undefined ? { now } : { now, expiresAt });
  } finally {
    await open.close();
  }
  if (ctx.out.json) ctx.out.result({ revoked: { tokenId: id, at: new Date(now), until: expiresAt === undefined ? null : new Date(expiresAt) } });
  else ctx.out.line(`Revoked ${id} in ${open.where}${expiresAt === undefined ? '' : ` until ${when(expiresAt)}`}.`);
  return EXIT.ok;
}

/** `token-guard keys`. */
export const keys: Group = {
  summary: 'issue and revoke API keys in Redis',
  commands: { issue, revoke },
};
