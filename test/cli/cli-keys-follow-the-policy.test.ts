// Regression: with `--policy FILE`, `keys issue` and `keys rotate` act on the app's own store, but minted keys with
// whatever `--key-prefix` and `--checksum-secret-env` were typed: a prefix the policy's `apiKeys.prefix` does not accept,
// or no keyed checksum where the policy has `apiKeys.checksumSecret`, gave a key the app refuses (unknown prefix,
// "forged") while the command reported success. Now the policy's `apiKeys` decide: its prefix and secret by default,
// and a prefix or secret it would refuse is a usage error (exit 2) before anything is stored. And `keys list` / `keys
// show` read a subject revocation with the policy's clock tolerance, so they show revoked exactly what the app refuses.
import { describe, expect, it } from 'vitest';
import { type ApiKeySummary, createApiKey, createGuard, type Duration, findApiKey, listApiKeys, type TokenGuardPolicy } from '../../src/index.js';
import { useCliRedis } from '../helpers/cli-redis.js';
import { REDIS_URL, redisUp } from '../helpers/redis.js';
import { cli, json } from './run.js';

const SECRET = 'cli-policy-checksum-secret-0123456789-abcdef';
const OTHER_SECRET = 'another-deployments-secret-0123456789-abcdef';

describe.skipIf(!redisUp)('token-guard keys issue and rotate --policy mint keys the policy accepts', () => {
  const redis = useCliRedis('cli-keyfmt');
  const { prefix } = redis;

  /** The CLI's environment for the fixture policy, and the app's guard over the same store and settings. */
  function app(settings: { prefixes: string[]; secret?: string; clockTolerance?: string }) {
    const env: Record<string, string> = { REDIS_URL, TG_PREFIX: prefix, TG_KEY_PREFIXES: settings.prefixes.join(',') };
    if (settings.secret !== undefined) env['TG_CHECKSUM_SECRET'] = settings.secret;
    if (settings.clockTolerance !== undefined) env['TG_CLOCK_TOLERANCE'] = settings.clockTolerance;
    const policy: TokenGuardPolicy = {
      apiKeys: {
        prefix: settings.prefixes.length === 1 ? (settings.prefixes[0] as string) : settings.prefixes,
        ...(settings.secret !== undefined && { checksumSecret: settings.secret }),
      },
      ...(settings.clockTolerance !== undefined && {
        jwt: {
          issuer: 'https://id.example.com/',
          audience: 'api://orders',
          algorithms: ['HS256'],
          secret: 'cli-test-secret-cli-test-secret-0123',
          clockTolerance: settings.clockTolerance as Duration,
        },
      }),
      rules: [{ path: '/**' }],
      store: redis.store,
      trackUsage: false,
    };
    const guard = createGuard(policy);
    const decide = async (key: string) => (await guard.evaluate({ method: 'GET', path: '/x', headers: { authorization: `Bearer ${key}` }, remoteAddress: '127.0.0.1' })).reason;
    return { env, guard, decide };
  }

  const issue = (subject: string, env: Record<string, string>, ...extra: string[]) =>
    cli(['keys', 'issue', '--subject', subject, '--expires-in', '1d', '--policy', 'keys-policy.mjs', '--json', ...extra], { env });

  it("issue: takes the policy's one prefix and its checksum secret when none is given; the app accepts the key", async () => {
    const { env, decide } = app({ prefixes: ['sk_live_'], secret: SECRET });
    const r = await issue('svc-fmt-1', env);
    expect([r.code, r.stderr]).toEqual([0, expect.not.stringContaining('token-guard:')]);
    const { key } = json<{ key: string }>(r);
    expect(key.startsWith('sk_live_')).toBe(true);
    expect(await decide(key)).toBe('ok');
  });

  it('issue: refuses a --key-prefix the policy does not accept (exit 2, listing its prefixes), storing nothing', async () => {
    const { env } = app({ prefixes: ['sk_live_', 'sk_test_'] });
    const r = await issue('svc-fmt-2', env, '--key-prefix', 'tg_');
    expect(r.code).toBe(2);
    expect(json<{ error: { message: string } }>(r).error.message).toMatch(
      /--key-prefix "tg_" is not accepted by the policy in keys-policy\.mjs \(apiKeys\.prefix: sk_live_, sk_test_\)/,
    );
    expect(await listApiKeys(redis.store, 'svc-fmt-2')).toEqual([]);
  });

  it('issue: with several prefixes and no --key-prefix, asks for one of them (exit 2); with one of them, the app accepts the key', async () => {
    const { env, decide } = app({ prefixes: ['sk_live_', 'sk_test_'] });
    const none = await issue('svc-fmt-3', env);
    expect(none.code).toBe(2);
    expect(json<{ error: { message: string } }>(none).error.message).toContain('accepts several key prefixes (sk_live_, sk_test_): choose one with --key-prefix');
    expect(await listApiKeys(redis.store, 'svc-fmt-3')).toEqual([]);
    const chosen = await issue('svc-fmt-3', env, '--key-prefix', 'sk_test_');
    expect(chosen.code).toBe(0);
    const { key } = json<{ key: string }>(chosen);
    expect(key.startsWith('sk_test_')).toBe(true);
    expect(await decide(key)).toBe('ok');
  });

  it("issue: refuses a checksum secret other than the policy's (exit 2), and takes a matching one", async () => {
    const { env, decide } = app({ prefixes: ['sk_live_'], secret: SECRET });
    const wrong = await issue('svc-fmt-4', { ...env, OTHER: OTHER_SECRET }, '--checksum-secret-env', 'OTHER');
    expect(wrong.code).toBe(2);
    expect(json<{ error: { message: string } }>(wrong).error.message).toContain('OTHER does not hold the apiKeys.checksumSecret of the policy');
    expect(await listApiKeys(redis.store, 'svc-fmt-4')).toEqual([]);
    const same = await issue('svc-fmt-4', { ...env, SAME: SECRET }, '--checksum-secret-env', 'SAME');
    expect(same.code).toBe(0);
    expect(await decide(json<{ key: string }>(same).key)).toBe('ok');
  });

  it("rotate: mints the successor with the policy's checksum secret, also for a key made before the policy had one", async () => {
    const { env, decide } = app({ prefixes: ['sk_live_'], secret: SECRET });
    const keyed = await createApiKey(redis.store, { prefix: 'sk_live_', checksumSecret: SECRET, subject: 'svc-fmt-5', scopes: [], expiresIn: '1d' });
    const plain = await createApiKey(redis.store, { prefix: 'sk_live_', subject: 'svc-fmt-5', scopes: [], expiresIn: '1d' });
    for (const id of [keyed.record.id, plain.record.id]) {
      const r = await cli(['keys', 'rotate', id, '--grace', '1h', '--policy', 'keys-policy.mjs', '--json'], { env });
      expect([id, r.code, r.stderr]).toEqual([id, 0, expect.not.stringContaining('token-guard:')]);
      const successor = json<{ key: string }>(r).key;
      expect(successor.startsWith('sk_live_')).toBe(true);
      expect([id, await decide(successor)]).toEqual([id, 'ok']);
    }
  });

  it('rotate: refuses a key whose prefix the policy no longer accepts (exit 2, saying to issue a new key), and leaves it as it was', async () => {
    const { env } = app({ prefixes: ['sk_live_'] });
    const old = await createApiKey(redis.store, { prefix: 'tg_', subject: 'svc-fmt-6', scopes: [], expiresIn: '1d' });
    const r = await cli(['keys', 'rotate', old.record.id, '--policy', 'keys-policy.mjs', '--json'], { env });
    expect(r.code).toBe(2);
    const { error } = json<{ error: { message: string; help: string } }>(r);
    expect(error.message).toContain('has the prefix "tg_", which the policy in keys-policy.mjs no longer accepts (apiKeys.prefix: sk_live_)');
    expect(error.help).toContain('keys issue');
    expect(await findApiKey(redis.store, old.record.id)).toMatchObject({ state: 'active' });
    expect((await findApiKey(redis.store, old.record.id))?.rotatedTo).toBeUndefined();
  });

  it("list and show: a key made within the policy's clock tolerance (30 s) after a subject revocation is shown revoked, as the app refuses it", async () => {
    const { env, guard, decide } = app({ prefixes: ['tg_'], clockTolerance: '30s' });
    const cut = Date.now() - 120_000;
    await guard.revokeSubject('svc-fmt-7', { now: new Date(cut) });
    // 20 s after the cut-off (inside 30 s; beyond the 5 s default) and 40 s after it.
    const inside = await createApiKey(redis.store, { prefix: 'tg_', subject: 'svc-fmt-7', scopes: [], expiresIn: '1d', now: new Date(cut + 20_000) });
    const beyond = await createApiKey(redis.store, { prefix: 'tg_', subject: 'svc-fmt-7', scopes: [], expiresIn: '1d', now: new Date(cut + 40_000) });
    expect([await decide(inside.key), await decide(beyond.key)]).toEqual(['token.revoked', 'ok']);
    const listed = await cli(['keys', 'list', 'svc-fmt-7', '--policy', 'keys-policy.mjs', '--json'], { env });
    expect(listed.code).toBe(0);
    expect(json<{ keys: ApiKeySummary[] }>(listed).keys.map((k) => [k.id, k.state])).toEqual([
      [beyond.record.id, 'active'],
      [inside.record.id, 'revoked'],
    ]);
    const shown = await cli(['keys', 'show', inside.record.id, '--policy', 'keys-policy.mjs', '--json'], { env });
    expect(json<{ key: ApiKeySummary }>(shown).key.state).toBe('revoked');
    const rotated = await cli(['keys', 'rotate', inside.record.id, '--policy', 'keys-policy.mjs', '--json'], { env });
    expect([rotated.code, json<{ error: { code: string } }>(rotated).error.code]).toEqual([8, 'api_key.revoked']);
  });
});
