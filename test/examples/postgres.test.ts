// The PostgreSQL example: two instances on PostgreSQL + Redis; its printed curl lines answer as they say (the key
// works on A and B; revoked on A, B refuses it on the very next request). Runs in a database of its own.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase, dropTestDatabase, pgUp } from '../helpers/postgres.js';
import { deletePrefix, randomPrefix, REDIS_URL, redisClient, redisUp } from '../helpers/redis.js';

const root = path.resolve(import.meta.dirname, '../..');

describe.skipIf(!pgUp || !redisUp)('examples/postgres', () => {
  let child: ChildProcess | undefined;
  let db: { name: string; url: string } | undefined;
  const redisPrefix = randomPrefix('example-pg');
  afterAll(async () => {
    child?.kill();
    if (child && child.exitCode === null) await new Promise((r) => child?.once('exit', r));
    if (db) await dropTestDatabase(db.name);
    const c = redisClient();
    await deletePrefix(c, redisPrefix);
    c.disconnect();
  });

  it('prints curl lines that answer as their comments say, across two instances', async () => {
    db = await createTestDatabase('example');
    const proc = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'examples/postgres/server.ts')], {
      cwd: root,
      env: { ...process.env, DATABASE_URL: db.url, REDIS_URL, TG_REDIS_PREFIX: redisPrefix, PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    let err = '';
    proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    const curls = await new Promise<{ method: string; url: string; authorization: string }[]>((resolve, reject) => {
      let out = '';
      proc.on('exit', (code) => reject(new Error(`example exited (${code}): ${err}`)));
      proc.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        const found = [...out.matchAll(/^curl -i (?:-X (\w+) )?(http:\/\/127\.0\.0\.1:\d+\S*) -H "Authorization: (Bearer \S+)"/gm)];
        if (found.length >= 3) resolve(found.map((m) => ({ method: m[1] ?? 'GET', url: m[2] as string, authorization: m[3] as string })));
      });
    });
    const call = (c: { method: string; url: string; authorization: string }) => fetch(c.url, { method: c.method, headers: { authorization: c.authorization } });
    const [onA, onB, revoke] = curls as [(typeof curls)[0], (typeof curls)[0], (typeof curls)[0]];
    expect(new URL(onA.url).port).not.toBe(new URL(onB.url).port);
    expect(await (await call(onA)).json()).toEqual({ instance: 'A', order: '42' });
    expect(await (await call(onB)).json()).toEqual({ instance: 'B', order: '42' });
    expect((await call(onB)).status).toBe(200);
    expect((await call(revoke)).status).toBe(204);
    const after = await call(onB);
    expect([after.status, ((await after.json()) as { reason: string }).reason]).toEqual([401, 'token.revoked']);
    expect((await call(onA)).status).toBe(401);
  }, 60_000);
});
