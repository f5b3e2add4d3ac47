// `token-guard keys` and `revoke` against a real Redis (own prefix, cleaned up), and against one that is not there.
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashApiKey, issueApiKey } from '../../src/index.js';
import { useCliRedis } from '../helpers/cli-redis.js';
import { REDIS_URL, redisUp } from '../helpers/redis.js';
import { cli, json } from './run.js';

interface Issued {
  key: string;
  record: { id: string; subject: string; scopes: string[]; prefix: string; expiresAt: string | null; remaining?: number; metadata?: Record<string, string> };
}

describe.skipIf(!redisUp)('token-guard keys and revoke against Redis', () => {
  const redis = useCliRedis('cli');
  const { prefix } = redis;
  const env = { REDIS_URL };

  it('issues a key whose record lands in the store under its hash, and prints the key once', async () => {
    const r = await cli(
      [
        'keys',
        'issue',
        '--prefix',
        prefix,
        '--subject',
        'svc-billing',
        '--scopes',
        'orders:read,orders:write',
        '--key-prefix',
        'tg_',
        '--expires-in',
        '30d',
        '--uses',
        '5',
        '--metadata',
        'team=billing',
        '--json',
      ],
      { env },
    );
    expect(r.code).toBe(0);
    const { key, record } = json<Issued>(r);
    expect(key).toMatch(/^tg_[0-9A-Za-z]{30,}$/);
    // The key once, by design; never its hash.
    expect(record).not.toHaveProperty('hash');
    expect(r.stdout).not.toContain(hashApiKey(key));
    expect(record).toMatchObject({ state: 'active', lastFour: key.slice(-4) });
    expect(record).toMatchObject({ subject: 'svc-billing', scopes: ['orders:read', 'orders:write'], prefix: 'tg_', remaining: 5, metadata: { team: 'billing' } });
    expect(await redis.store.getApiKey(hashApiKey(key))).toMatchObject({ id: record.id, subject: 'svc-billing', remaining: 5 });

    const text = await cli(['keys', 'issue', '--redis', REDIS_URL, '--prefix', prefix, '--subject', 'ci', '--key-prefix', 'tg_', '--expires-in', 'never']);
    expect(text.code).toBe(0);
    const shown = /^\s+(tg_\S+)$/m.exec(text.stdout)?.[1] as string;
    expect(text.stdout.split(shown).length - 1).toBe(1);
    expect(text.stdout).toMatch(/expires\s+never/);
    expect((await redis.store.getApiKey(hashApiKey(shown)))?.expiresAt).toBeNull();
  });

  it('lists, shows, rotates and revokes keys through the lifecycle calls, never printing a hash', async () => {
    const issued = await cli(
      ['keys', 'issue', '--prefix', prefix, '--subject', 'svc-orders', '--scopes', 'orders:read', '--key-prefix', 'tg_', '--expires-in', '30d', '--json'],
      { env },
    );
    expect(issued.code).toBe(0);
    const a = json<Issued>(issued);
    const hash = hashApiKey(a.key);
    expect(issued.stdout).not.toContain(hash);

    const listed = await cli(['keys', 'list', 'svc-orders', '--prefix', prefix, '--json'], { env });
    expect(listed.code).toBe(0);
    expect(json(listed)).toEqual({ subject: 'svc-orders', keys: [expect.objectContaining({ id: a.record.id, state: 'active', scopes: ['orders:read'] })] });
    expect(listed.stdout).not.toContain(hash);
    const table = await cli(['keys', 'list', 'svc-orders', '--prefix', prefix], { env });
    expect(table.stdout).toMatch(new RegExp(`${a.record.id}\\s+active\\s+tg_…${a.key.slice(-4)}\\s+orders:read`));

    const rotated = await cli(['keys', 'rotate', a.record.id, '--grace', '1h', '--actor', 'alice', '--prefix', prefix, '--json'], { env });
    expect(rotated.code).toBe(0);
    const r = json<{ key: string; record: { id: string }; previous: { state: string; rotatedTo: string }; sunsetAt: string }>(rotated);
    expect(r.key).toMatch(/^tg_/);
    expect(rotated.stdout).not.toContain(hashApiKey(r.key));
    expect(r.record).not.toHaveProperty('hash');
    expect(r.previous).toMatchObject({ state: 'grace', rotatedTo: r.record.id });
    expect(Date.parse(r.sunsetAt) - Date.now()).toBeGreaterThan(50 * 60_000);

    const shown = await cli(['keys', 'show', a.record.id, '--prefix', prefix], { env });
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/state\s+grace/);
    expect(shown.stdout).toMatch(/key\.issued\s+cli/);
    expect(shown.stdout).toMatch(/key\.rotated\s+alice/);

    const revoked = await cli(['keys', 'revoke', r.record.id, '--reason', 'compromised', '--prefix', prefix], { env });
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toContain(`Revoked ${r.record.id} (svc-orders)`);
    const after = await cli(['keys', 'show', r.record.id, '--prefix', prefix, '--json'], { env });
    expect(json(after)).toMatchObject({ key: { state: 'revoked', revocationReason: 'compromised' } });

    const again = await cli(['keys', 'revoke', r.record.id, '--prefix', prefix], { env });
    expect(again.code).toBe(8);
    expect(again.stderr).not.toMatch(/\n\s+at .+:\d+:\d+/);
  }, 120_000);

  it('refuses to rotate a use-limited key with a grace (exit 2, saying to use grace 0), and rotates it with none', async () => {
    const issued = await cli(['keys', 'issue', '--prefix', prefix, '--subject', 'svc-uses', '--key-prefix', 'tg_', '--expires-in', '1d', '--uses', '3', '--json'], { env });
    expect(issued.code).toBe(0);
    const a = json<Issued>(issued);
    const refused = await cli(['keys', 'rotate', a.record.id, '--grace', '1h', '--prefix', prefix], { env });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('has a use limit');
    expect(refused.stderr).toContain('grace 0');
    expect(refused.stderr).not.toMatch(/\n\s+at .+:\d+:\d+/);
    expect(await redis.store.getApiKey(hashApiKey(a.key))).not.toHaveProperty('rotatedTo');
    const rotated = await cli(['keys', 'rotate', a.record.id, '--prefix', prefix, '--json'], { env });
    expect(rotated.code).toBe(0);
    expect(json<{ record: { remaining: number } }>(rotated).record.remaining).toBe(3);
  });

  it('masks a password given in the URL query in its success lines too', async () => {
    const url = new URL(REDIS_URL);
    url.searchParams.set('password', 's3cr3t-query');
    const r = await cli(['keys', 'list', 'nobody', '--redis', url.toString(), '--prefix', prefix]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('?password=***');
    expect(r.stdout + r.stderr).not.toContain('s3cr3t-query');
  });

  it('exits 3 for a key that is not there', async () => {
    for (const command of ['show', 'rotate', 'revoke']) {
      const r = await cli(['keys', command, 'key_nothere', '--prefix', prefix], { env });
      expect([command, r.code]).toEqual([command, 3]);
    }
  });

  it('revokes a token id with a reason, until a given time', async () => {
    const r = await cli(['revoke', 'token', 'jti-123', '--prefix', prefix, '--expires-at', '2099-01-01T00:00:00Z', '--reason', 'compromised', '--json'], { env });
    expect(r.code).toBe(0);
    expect(json(r)).toEqual({ revoked: { tokenId: 'jti-123', at: expect.any(String), until: '2099-01-01T00:00:00.000Z', reason: 'compromised' } });
    expect(await redis.store.getRevocation('jti-123', undefined, Date.now())).toMatchObject({ revokedAt: expect.any(Number), reason: 'compromised' });
    expect(await redis.client.pttl(`${prefix}{t:jti-123}:rev`)).toBeGreaterThan(0);
    expect(await redis.store.listLifecycleEvents({ tokenId: 'jti-123' })).toEqual([expect.objectContaining({ type: 'token.revoked', actor: 'cli', reason: 'compromised' })]);
  });

  it('refuses a raw JWT given as the id (exit 2), and stores nothing under it', async () => {
    const raw = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl';
    const r = await cli(['revoke', 'token', raw, '--prefix', prefix], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('got a raw token, not its id');
    expect(await redis.store.getRevocation(raw, undefined, Date.now())).toBeUndefined();
  });

  it('refuses a JWT pasted with its scheme ("Bearer eyJ…") as the id (exit 2), without echoing it or storing anything', async () => {
    const raw = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl';
    const r = await cli(['revoke', 'token', `Bearer ${raw}`, '--prefix', prefix], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('got a raw token, not its id');
    expect(r.stdout + r.stderr).not.toContain(raw);
    expect(await redis.client.keys(`${prefix}*${raw}*`)).toEqual([]);
  });

  it('refuses a raw API key of another prefix than tg_ given as the id (exit 2), and stores nothing under it', async () => {
    const raw = issueApiKey({ prefix: 'sk_live_', subject: 'x', scopes: [], expiresIn: '1h' }).key;
    const r = await cli(['revoke', 'token', raw, '--prefix', prefix], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('got a raw token, not its id');
    expect(r.stdout + r.stderr).not.toContain(raw);
    expect(await redis.store.getRevocation(raw, undefined, Date.now())).toBeUndefined();
    expect(await redis.client.keys(`${prefix}*${raw}*`)).toEqual([]);
  });

  it('revokes a subject before a time', async () => {
    const r = await cli(['revoke', 'subject', 'alice', '--prefix', prefix, '--before', '2026-01-01T00:00:00Z', '--reason', 'offboarded'], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Revoked every token of alice issued before 2026-01-01T00:00:00.000Z');
    expect(await redis.store.getRevocation('any', 'alice', Date.now())).toMatchObject({
      subjectRevokedBefore: Date.parse('2026-01-01T00:00:00Z'),
      subjectReason: 'offboarded',
    });
  });

  it('refuses a reason stores would refuse, before touching Redis', async () => {
    const r = await cli(['revoke', 'token', 'x', '--reason', 'Because I said so', '--redis', 'redis://127.0.0.1:1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--reason: expected a lower-case word');
  });

  it('refuses a prefix RedisStore refuses, as a usage error', async () => {
    const r = await cli(['revoke', 'token', 'x', '--prefix', 'a{b}'], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('prefix');
  });
});

describe('token-guard with a Redis that does not answer', () => {
  let blackHole: Server;
  const sockets: Socket[] = [];
  let port = 0;

  beforeAll(async () => {
    // Accepts connections and never says a word: the command must give up after --timeout.
    blackHole = createServer((s) => sockets.push(s));
    await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
    port = (blackHole.address() as { port: number }).port;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => blackHole.close(resolve));
  });

  it('exits 4 when nothing listens, with the URL but not its password', async () => {
    const closed = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const r = await cli(['revoke', 'token', 'abc', '--redis', `redis://:hunter2@127.0.0.1:${closed}`], { timeout: 10_000 });
    expect(r.timedOut).toBe(false);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain(`cannot reach Redis at redis://:***@127.0.0.1:${closed}`);
    expect(r.stderr).not.toContain('hunter2');
    // ioredis reads the password (and username) from the query as well.
    const q = await cli(['keys', 'list', 'nobody', '--redis', `redis://127.0.0.1:${closed}/0?username=ops&password=s3cr3t-query&db=0`], { timeout: 10_000 });
    expect(q.code).toBe(4);
    expect(q.stderr).toContain(`cannot reach Redis at redis://127.0.0.1:${closed}/0?username=***&password=***&db=0`);
    expect(q.stderr).not.toContain('s3cr3t-query');
  });

  it('exits 4 after --timeout when Redis accepts but never answers, instead of hanging', async () => {
    const r = await cli(['keys', 'issue', '--subject', 'a', '--key-prefix', 'tg_', '--expires-in', '1d', '--timeout', '300ms', '--json'], {
      env: { REDIS_URL: `redis://127.0.0.1:${port}` },
      timeout: 10_000,
    });
    expect(r.timedOut).toBe(false);
    expect(r.code).toBe(4);
    expect(json(r)).toEqual({ error: expect.objectContaining({ code: 'cli.store_unreachable', exit: 4, message: expect.stringContaining('no answer within 300 ms') }) });
  });
});
