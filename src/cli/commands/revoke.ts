// `token-guard revoke token|subject`: revocations in the app's Redis, for JWTs and API keys alike.
import type { Command, Group } from '../command.js';
import { optional } from '../command.js';
import { EXIT, usage } from '../exit.js';
import { when } from '../output.js';
import { openStore, REDIS_OPTIONS } from '../redis.js';
import { parseTime } from '../values.js';
import { revokeToken } from './keys.js';

const token: Command = {
  summary: 'revoke one token by id (JWT jti or derived id, API key id)',
  description:
    'Stores a revocation for the token id (RedisStore.revoke): every guard sharing the store refuses it on the next request\n' +
    "with 401 token.revoked. Give --expires-at the token's own expiry so the entry is dropped once it no longer matters.",
  positionals: [{ name: 'ID', description: 'the token id: JWT jti (or the id decisions show), API key id key_…' }],
  options: {
    'expires-at': { type: 'string', value: 'TIME', description: "keep the revocation until this time (the token's exp). Default: until deleted" },
    ...REDIS_OPTIONS,
  },
  examples: ['token-guard revoke token 7f1c2a9e --expires-at 2026-12-01T00:00:00Z --redis redis://127.0.0.1:6379'],
  run: (ctx) => revokeToken(ctx, 'token-guard revoke token'),
};

const subject: Command = {
  summary: 'revoke every token of a subject issued before a time (default: now)',
  description: 'Stores a subject revocation (RedisStore.revokeSubject): tokens of SUBJECT issued before --before are refused; later ones pass.',
  positionals: [{ name: 'SUBJECT', description: 'the subject: JWT sub, API key record subject' }],
  options: {
    before: { type: 'string', value: 'TIME', description: 'revoke tokens issued before this time. Default: now' },
    'expires-at': { type: 'string', value: 'TIME', description: 'keep the revocation until this time (when the last such token expires). Default: until deleted' },
    ...REDIS_OPTIONS,
  },
  examples: ['token-guard revoke subject alice --redis redis://127.0.0.1:6379', 'token-guard revoke subject svc-ci --before 2026-11-30T12:00:00Z --json'],
  async run(ctx) {
    const name = 'token-guard revoke subject';
    const who = ctx.positionals[0] as string;
    if (who.trim() === '') throw usage(`${name}: the subject is empty`);
    const now = Date.now();
    const beforeFlag = optional(ctx, 'before');
    const before = beforeFlag === undefined ? now : parseTime('--before', beforeFlag, now);
    const at = optional(ctx, 'expires-at');
    const expiresAt = at === undefined ? undefined : parseTime('--expires-at', at, now);
    const open = await openStore(ctx, name);
    try {
      await open.store.revokeSubject(who, expiresAt === undefined ? { now, before } : { now, before, expiresAt });
    } finally {
      await open.close();
    }
    if (ctx.out.json) ctx.out.result({ revoked: { subject: who, before: new Date(before), until: expiresAt === undefined ? null : new Date(expiresAt) } });
    else ctx.out.line(`Revoked every token of ${who} issued before ${when(before)} in ${open.where}${expiresAt === undefined ? '' : ` (kept until ${when(expiresAt)})`}.`);
    return EXIT.ok;
  },
};

/** `token-guard revoke`. */
export const revoke: Group = {
  summary: 'revoke tokens by id or by subject in Redis',
  commands: { token, subject },
};
