// Regression: `--redis redis://host:6379/99` on a server with 16 databases connected, ioredis's failed SELECT was only
// an 'error' event, and the command wrote to database 0 (exit 0): a revocation the app, on database 99, never sees.
// Such a database now ends the command with exit code 4 and writes nothing.
import { describe, expect, it } from 'vitest';
import { REDIS_URL, redisUp, useSharedRedis } from '../helpers/redis.js';
import { cli } from './run.js';

describe.skipIf(!redisUp)('token-guard and a Redis database the server does not have', () => {
  const redis = useSharedRedis('cli-db');
  const { prefix } = redis;

  it('exits 4 naming the refusal, and writes nothing in database 0', async () => {
    const url = `${REDIS_URL.replace(/\/\d*$/, '')}/99999`;
    const r = await cli(['revoke', 'token', 'db-probe', '--prefix', prefix, '--redis', url]);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/DB index|out of range|invalid/i);
    expect(await redis.client.keys(`${prefix}*`)).toEqual([]);
  });
});
