// `--clock-tolerance SECONDS`: without `--policy` the command could only assume the guard's default 5 s, so against an
// app reading with more, `keys list` / `keys show` showed active (and `keys rotate` rotated) a key the app refuses under
// a subject revocation (made within its tolerance after the cut-off), and `revoke token` / `revoke subject
// --expires-at` dropped a revocation while the app still accepted the token. With `--policy` the policy's tolerance
// is taken; a different flag is refused. Values no app reads with are usage errors (exit 2) before anything connects.
import { describe, expect, it } from 'vitest';
import { type ApiKeySummary, createApiKey, createGuard, findApiKey } from '../../src/index.js';
import { useCliRedis } from '../helpers/cli-redis.js';
import { REDIS_URL, redisUp } from '../helpers/redis.js';
import { cli, json } from './run.js';

interface Failure {
  error: { code: string; exit: number; message: string; help?: string };
}

const TAKING = [
  ['keys', 'list', 'svc'],
  ['keys', 'show', 'key_x'],
  ['keys', 'rotate', 'key_x'],
  ['revoke', 'token', 'jti-x'],
  ['revoke', 'subject', 'alice'],
] as const;

describe('token-guard --clock-tolerance refuses a value no app reads with', () => {
  it.each(['-1', 'abc', '', '5s', '1e2', '1e400', 'NaN', 'Infinity', '301', '300.001', '0.0001'])(
    'keys list --clock-tolerance=%j: exit 2, naming the flag and its range',
    async (value) => {
      // No Redis given: the value is refused first, whether or not a store is up.
      const r = await cli(['keys', 'list', 'svc', `--clock-tolerance=${value}`, '--json']);
      expect(r.code).toBe(2);
      const { error } = json<Failure>(r);
      expect(error).toMatchObject({ code: 'cli.usage', exit: 2 });
      expect(error.message).toMatch(/^--clock-tolerance: (expected seconds from 0 to 300, like 5 or 0\.5|at most 300 seconds)/);
      expect(r.stderr).toBe('');
    },
  );

  it.each(TAKING.map((words) => words.join(' ')))('%s: refuses 1e400 before connecting to anything (exit 2)', async (command) => {
    const r = await cli([...command.split(' '), '--clock-tolerance', '1e400']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'token-guard: --clock-tolerance: expected seconds from 0 to 300, like 5 or 0.5 (got "1e400")\n  give the app\'s guard.clockTolerance (its largest jwt.clockTolerance, in seconds)\n',
    );
    expect(r.stdout).toBe('');
  });

  it('answers a bare negative value with one line saying how to give it (exit 2)', async () => {
    const r = await cli(['keys', 'show', 'key_x', '--clock-tolerance', '-1']);
    expect(r.code).toBe(2);
    const [message, help, ...rest] = r.stderr.split('\n');
    expect(message).toContain("--clock-tolerance' argument is ambiguous");
    expect(message).toContain("use '--clock-tolerance=-XYZ'");
    expect(message).not.toContain('\\u000a');
    expect([help, rest]).toEqual([expect.stringContaining('--help'), ['']]);
  });

  it('is offered by the commands whose answer depends on it, and by no other', async () => {
    for (const words of TAKING) {
      const r = await cli([...words.slice(0, 2), '--help']);
      expect([words.join(' '), r.stdout]).toEqual([words.join(' '), expect.stringContaining('--clock-tolerance SECONDS')]);
    }
    for (const words of [
      ['keys', 'issue'],
      ['keys', 'revoke', 'key_x'],
    ]) {
      const r = await cli([...words, '--clock-tolerance', '5', '--json']);
      expect(json<Failure>(r).error.message).toContain("Unknown option '--clock-tolerance'");
    }
  });
});

describe.skipIf(!redisUp)('token-guard --clock-tolerance against Redis', () => {
  const redis = useCliRedis('cli-tol');
  const { prefix } = redis;
  const env = { REDIS_URL };

  /** The app: a guard over the same store whose clock tolerance is `tolerance`. */
  const app = (tolerance: `${number}s`) =>
    createGuard({
      jwt: { issuer: 'https://id.example.com/', audience: 'api://orders', algorithms: ['HS256'], secret: 'cli-test-secret-cli-test-secret-0123', clockTolerance: tolerance },
      apiKeys: { prefix: 'tg_' },
      rules: [{ path: '/**' }],
      store: redis.store,
      trackUsage: false,
    });
  const decide = async (guard: ReturnType<typeof app>, key: string) =>
    (await guard.evaluate({ method: 'GET', path: '/x', headers: { authorization: `Bearer ${key}` }, remoteAddress: '127.0.0.1' })).reason;
  const states = async (...extra: string[]) => {
    const r = await cli(['keys', 'list', 'svc-tol', '--prefix', prefix, '--json', ...extra], { env });
    expect([extra.join(' '), r.code, r.stderr]).toEqual([extra.join(' '), 0, expect.not.stringContaining('token-guard:')]);
    return json<{ keys: ApiKeySummary[] }>(r).keys.map((k) => k.state);
  };

  it('keys list, show and rotate read a subject revocation with the given tolerance, as an app with that tolerance refuses', async () => {
    const cut = Date.now() - 120_000;
    await redis.store.revokeSubject('svc-tol', { now: cut, before: cut, reason: 'offboarded' });
    // Newest first in listings: 30 s after the cut-off (inside 60 s, beyond the 5 s default), then 2 s after it.
    const late = await createApiKey(redis.store, { prefix: 'tg_', subject: 'svc-tol', scopes: [], expiresIn: '1d', now: new Date(cut + 30_000) });
    const early = await createApiKey(redis.store, { prefix: 'tg_', subject: 'svc-tol', scopes: [], expiresIn: '1d', now: new Date(cut + 2_000) });
    expect([await decide(app('60s'), late.key), await decide(app('60s'), early.key)]).toEqual(['token.revoked', 'token.revoked']);
    expect([await decide(app('5s'), late.key), await decide(app('5s'), early.key)]).toEqual(['ok', 'token.revoked']);
    expect([await decide(app('0s'), late.key), await decide(app('0s'), early.key)]).toEqual(['ok', 'ok']);

    expect(await states()).toEqual(['active', 'revoked']);
    expect(await states('--clock-tolerance', '60')).toEqual(['revoked', 'revoked']);
    expect(await states('--clock-tolerance', '0')).toEqual(['active', 'active']);

    const shown = await cli(['keys', 'show', late.record.id, '--prefix', prefix, '--clock-tolerance', '60', '--json'], { env });
    expect(json<{ key: ApiKeySummary }>(shown).key).toMatchObject({ state: 'revoked', revocationReason: 'offboarded' });
    const refused = await cli(['keys', 'rotate', late.record.id, '--prefix', prefix, '--clock-tolerance', '60', '--json'], { env });
    expect([refused.code, json<Failure>(refused).error.code]).toEqual([8, 'api_key.revoked']);
    expect((await findApiKey(redis.store, late.record.id))?.rotatedTo).toBeUndefined();
  });

  it('revoke token and subject keep a revocation the given tolerance past --expires-at, while the app still accepts the token', async () => {
    const exp = Date.now() + 3_600_000;
    const at = new Date(exp).toISOString();
    // Whether the store still holds each revocation `after` ms past the token's expiry.
    const kept = async (after: number) => [
      (await redis.store.getRevocation('tol-jti', undefined, exp + after)) !== undefined,
      (await redis.store.getRevocation('tol-jti-default', undefined, exp + after)) !== undefined,
      (await redis.store.getRevocation('any', 'tol-sub', exp + after))?.subjectRevokedBefore !== undefined,
    ];
    for (const args of [
      ['revoke', 'token', 'tol-jti', '--clock-tolerance', '60'],
      ['revoke', 'token', 'tol-jti-default'],
      ['revoke', 'subject', 'tol-sub', '--clock-tolerance', '60'],
    ]) {
      const r = await cli([...args, '--expires-at', at, '--prefix', prefix, '--json'], { env });
      expect([args.join(' '), r.code, r.stderr]).toEqual([args.join(' '), 0, expect.not.stringContaining('token-guard:')]);
    }
    expect(await kept(4_000)).toEqual([true, true, true]);
    expect(await kept(30_000)).toEqual([true, false, true]);
    expect(await kept(61_000)).toEqual([false, false, false]);
  });

  it("with --policy takes the policy's tolerance, accepts the same one, and refuses another (exit 2) before changing anything", async () => {
    const policyEnv = { ...env, TG_PREFIX: prefix, TG_KEY_PREFIXES: 'tg_', TG_CLOCK_TOLERANCE: '30s' };
    const cut = Date.now() - 120_000;
    await redis.store.revokeSubject('svc-tol-pol', { now: cut, before: cut });
    const inside = await createApiKey(redis.store, { prefix: 'tg_', subject: 'svc-tol-pol', scopes: [], expiresIn: '1d', now: new Date(cut + 20_000) });
    for (const extra of [[], ['--clock-tolerance', '30'], ['--clock-tolerance', '30.000']]) {
      const r = await cli(['keys', 'show', inside.record.id, '--policy', 'keys-policy.mjs', '--json', ...extra], { env: policyEnv });
      expect([extra.join(' '), r.code, json<{ key: ApiKeySummary }>(r).key?.state]).toEqual([extra.join(' '), 0, 'revoked']);
    }
    const other = await cli(['revoke', 'token', 'tol-pol-jti', '--policy', 'keys-policy.mjs', '--clock-tolerance', '5', '--json'], { env: policyEnv });
    expect(other.code).toBe(2);
    expect(json<Failure>(other).error).toMatchObject({
      code: 'cli.usage',
      message: expect.stringContaining('--clock-tolerance 5 is not the clock tolerance of the policy in keys-policy.mjs, 30 s'),
      help: expect.stringContaining('leave out --clock-tolerance'),
    });
    expect(await redis.store.getRevocation('tol-pol-jti', undefined, Date.now())).toBeUndefined();
  });
});
