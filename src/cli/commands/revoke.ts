// `token-guard revoke token|subject`: revocations in the app's store (its Redis, or its policy's store), for JWTs and API keys alike, through
// guard.revoke / guard.revokeSubject (reasons, lifecycle events and the clock-tolerance margin as an app gets them).
import type { Command, Group } from '../command.js';
import { optional } from '../command.js';
import { EXIT, usage } from '../exit.js';
import { ACTOR_OPTION, actorOf, REASON_OPTION, reasonOf } from '../lifecycle-options.js';
import { when } from '../output.js';
import { noteDurability } from '../redis.js';
import { CLOCK_TOLERANCE_OPTION, openTarget, revocationExpiry, STORE_OPTIONS } from '../target.js';
import { parseFutureTime, parseTime } from '../values.js';

const token: Command = {
  summary: 'revoke one token by id (JWT jti or derived id, API key id)',
  description:
    'guard.revoke: every guard sharing the store refuses the token on its next request with 401 token.revoked. Give\n' +
    "--expires-at the token's own expiry so the entry is dropped once it no longer matters: it is kept the app's clock\n" +
    'tolerance longer (--clock-tolerance), as the app accepts the token until then.',
  positionals: [{ name: 'ID', description: 'the token id: JWT jti (or the id decisions show), API key id key_…' }],
  options: {
    'expires-at': { type: 'string', value: 'TIME', description: "keep the revocation until this time (the token's exp). Default: until deleted" },
    ...REASON_OPTION,
    ...ACTOR_OPTION,
    ...CLOCK_TOLERANCE_OPTION,
    ...STORE_OPTIONS,
  },
  examples: ['token-guard revoke token 7f1c2a9e --expires-at 2026-12-01T00:00:00Z --reason compromised --redis redis://127.0.0.1:6379'],
  async run(ctx) {
    const name = 'token-guard revoke token';
    const id = ctx.positionals[0] as string;
    if (id.trim() === '') throw usage(`${name}: the id is empty`);
    const now = new Date();
    const at = optional(ctx, 'expires-at');
    const expiresAt = at === undefined ? undefined : parseFutureTime('--expires-at', at, now.getTime());
    const reason = reasonOf(ctx);
    const actor = actorOf(ctx);
    const open = await openTarget(ctx, name, { revokes: true });
    try {
      const until = expiresAt === undefined ? {} : { expiresAt: revocationExpiry(open, expiresAt) };
      await open.guard.revoke(id, { now, actor, ...until, ...(reason !== undefined && { reason }) });
    } finally {
      await open.close();
    }
    if (ctx.out.json) ctx.out.result({ revoked: { tokenId: id, at: now, until: expiresAt === undefined ? null : new Date(expiresAt), reason: reason ?? null } });
    else ctx.out.line(`Revoked ${id} in ${open.where}${expiresAt === undefined ? '' : ` until ${when(expiresAt)}`}${reason ? `: ${reason}` : ''}.`);
    await noteDurability(ctx, open);
    return EXIT.ok;
  },
};

const subject: Command = {
  summary: 'revoke every token of a subject issued before a time (default: now)',
  description:
    'guard.revokeSubject: tokens of SUBJECT issued before --before are refused; later ones pass. With --expires-at, the\n' +
    "revocation is kept the app's clock tolerance longer (--clock-tolerance), as the app accepts tokens until then.",
  positionals: [{ name: 'SUBJECT', description: 'the subject: JWT sub, API key record subject' }],
  options: {
    before: { type: 'string', value: 'TIME', description: 'revoke tokens issued before this time. Default: now' },
    'expires-at': { type: 'string', value: 'TIME', description: 'keep the revocation until this time (when the last such token expires). Default: until deleted' },
    ...REASON_OPTION,
    ...ACTOR_OPTION,
    ...CLOCK_TOLERANCE_OPTION,
    ...STORE_OPTIONS,
  },
  examples: ['token-guard revoke subject alice --reason offboarded --redis redis://127.0.0.1:6379', 'token-guard revoke subject svc-ci --before 2026-11-30T12:00:00Z --json'],
  async run(ctx) {
    const name = 'token-guard revoke subject';
    const who = ctx.positionals[0] as string;
    if (who.trim() === '') throw usage(`${name}: the subject is empty`);
    const now = new Date();
    const beforeFlag = optional(ctx, 'before');
    const before = beforeFlag === undefined ? now.getTime() : parseTime('--before', beforeFlag, now.getTime());
    const at = optional(ctx, 'expires-at');
    const expiresAt = at === undefined ? undefined : parseFutureTime('--expires-at', at, now.getTime());
    const reason = reasonOf(ctx);
    const actor = actorOf(ctx);
    const open = await openTarget(ctx, name, { revokes: true });
    try {
      const until = expiresAt === undefined ? {} : { expiresAt: revocationExpiry(open, expiresAt) };
      await open.guard.revokeSubject(who, { now, before, actor, ...until, ...(reason !== undefined && { reason }) });
    } finally {
      await open.close();
    }
    if (ctx.out.json) {
      ctx.out.result({ revoked: { subject: who, before: new Date(before), until: expiresAt === undefined ? null : new Date(expiresAt), reason: reason ?? null } });
    } else {
      ctx.out.line(
        `Revoked every token of ${who} issued before ${when(before)} in ${open.where}${expiresAt === undefined ? '' : ` (kept until ${when(expiresAt)})`}${reason ? `: ${reason}` : ''}.`,
      );
    }
    await noteDurability(ctx, open);
    return EXIT.ok;
  },
};

/** `token-guard revoke`. */
export const revoke: Group = {
  summary: 'revoke tokens by id or by subject in Redis',
  commands: { token, subject },
};
