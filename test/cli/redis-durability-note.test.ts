// Regression: against a stock Redis (appendonly no) every `keys` and `revoke` command could print RedisStore's two-line
// TOKEN_GUARD_REDIS_DURABILITY Node warning (whenever its start-up check answered before the command ended), read-only
// ones included. Now a command that writes prints one short note on stderr, after its result, a read-only one nothing,
// and exit codes stay the command's, also under NODE_ENV=production (where the store would refuse that Redis).
import { describe, expect, it } from 'vitest';
import { useCliRedis } from '../helpers/cli-redis.js';
import { REDIS_URL, redisClient, redisUp } from '../helpers/redis.js';
import { type CliRun, cli, json } from './run.js';

/** Whether the shared Redis is a stock one (appendonly no), which these tests need. */
const stockRedis: boolean =
  redisUp &&
  (await (async () => {
    const c = redisClient();
    try {
      const reply = (await c.config('GET', 'appendonly')) as unknown;
      return Array.isArray(reply) && reply[1] === 'no';
    } catch {
      return false;
    } finally {
      c.disconnect();
    }
  })());
if (redisUp && !stockRedis) console.warn('⚠️  redis-durability-note skipped: the shared Redis runs with an append-only file (these tests need appendonly no)');

const NOTE = /^note: Redis at \S+ may lose this change: appendonly is no \(set appendonly yes\)$/;

/** stderr's lines, without the empty one after the last newline. */
const lines = (run: CliRun): string[] => run.stderr.split('\n').filter((l) => l !== '');

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
});
