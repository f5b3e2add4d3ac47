// RedisStore's start-up check: would this Redis drop a revocation or a claim? Real servers started with the settings
// under test (eviction policy, append-only file, CONFIG disabled), and the three modes of `durability`.
import { afterAll, afterEach, beforeAll, describe, expect, it, type MockInstance, vi } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { RedisDurabilityError, RedisStore } from '../../src/stores/redis.js';
import { durabilityIssues } from '../../src/stores/redis/durability.js';
import { freePort, redisBinaries, type RedisServer, startRedisServer } from '../helpers/redis.js';

const T0 = Date.UTC(2026, 10, 25, 10, 0, 0);

describe('durabilityIssues', () => {
  it('accepts noeviction with an append-only file synced every second or always', () => {
    expect(durabilityIssues({ 'maxmemory-policy': 'noeviction', appendonly: 'yes', appendfsync: 'everysec' })).toEqual([]);
    expect(durabilityIssues({ 'maxmemory-policy': 'noeviction', appendonly: 'yes', appendfsync: 'always' })).toEqual([]);
  });

  it('names every eviction policy but noeviction, even with maxmemory 0 (a limit can be set at run time)', () => {
    for (const policy of ['allkeys-lru', 'volatile-lru', 'volatile-ttl', 'allkeys-random', 'volatile-lfu']) {
      expect(durabilityIssues({ 'maxmemory-policy': policy, maxmemory: '0', appendonly: 'yes' })).toEqual([expect.stringContaining(`maxmemory-policy is ${policy}`)]);
    }
  });

  it('names a server without an append-only file (RDB snapshots lose what came since) and appendfsync no', () => {
    expect(durabilityIssues({ appendonly: 'no', save: '3600 1' })).toEqual([expect.stringMatching(/appendonly is no: on a restart only the RDB snapshots .* survive/)]);
    expect(durabilityIssues({ appendonly: 'no', save: '' })).toEqual([expect.stringContaining('nothing survives')]);
    expect(durabilityIssues({ appendonly: 'yes', appendfsync: 'no' })).toEqual([expect.stringContaining('appendfsync is no')]);
  });
});

describe.skipIf(!redisBinaries)('RedisStore durability at start-up, on real servers', () => {
  const servers: RedisServer[] = [];
  const clients: Redis[] = [];
  let emitWarning: MockInstance<typeof process.emitWarning>;
  const aofDir = mkdtempSync(join(tmpdir(), 'tg-aof-'));

  async function server(args: string[]): Promise<Redis> {
    const s = await startRedisServer(await freePort(), args);
    servers.push(s);
    const c = new Redis({ host: '127.0.0.1', port: s.port, maxRetriesPerRequest: 1 });
    c.on('error', () => undefined);
    clients.push(c);
    return c;
  }

  let volatile: Redis;
  let safe: Redis;
  let noConfig: Redis;
  beforeAll(async () => {
    [volatile, safe, noConfig] = await Promise.all([
      server(['--maxmemory-policy', 'volatile-lru']),
      server(['--maxmemory-policy', 'noeviction', '--appendonly', 'yes', '--appendfsync', 'everysec', '--dir', aofDir]),
      server(['--rename-command', 'CONFIG', '']),
    ]);
  }, 30_000);
  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await Promise.all(servers.map((s) => s.kill()));
    rmSync(aofDir, { recursive: true, force: true });
  });
  afterEach(() => {
    emitWarning?.mockRestore();
    vi.unstubAllEnvs();
  });

  it("'require' on a server that can evict and keeps no append-only file: ready() rejects and every call fails with RedisDurabilityError", async () => {
    const store = new RedisStore({ client: volatile, prefix: 'dur:', durability: 'require' });
    const err = await store.ready().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RedisDurabilityError);
    expect(err).toMatchObject({ name: 'RedisDurabilityError', code: 'store.unavailable', status: 503 });
    expect((err as RedisDurabilityError).report.issues).toEqual([expect.stringContaining('maxmemory-policy is volatile-lru'), expect.stringContaining('appendonly is no')]);
    await expect(store.revoke('t', { now: T0 })).rejects.toBeInstanceOf(RedisDurabilityError);
    await expect(store.claimOnce('k', { now: T0, expiresAt: T0 + 1000 })).rejects.toBeInstanceOf(RedisDurabilityError);
    expect(() => store.getRevocation('t', undefined, T0)).toThrow(RedisDurabilityError);
    await store.close();
  });

  it("'require' on noeviction with an append-only file: ready() resolves with the settings read", async () => {
    const store = new RedisStore({ client: safe, prefix: 'dur:', durability: 'require' });
    const report = await store.ready();
    expect(report).toMatchObject({ checked: true, issues: [], settings: { 'maxmemory-policy': 'noeviction', appendonly: 'yes', appendfsync: 'everysec' } });
    await store.revoke('t', { now: T0 });
    expect(await store.getRevocation('t', undefined, T0)).toEqual({ revokedAt: T0 });
    await store.close();
  });

  it("'require' on a server with CONFIG disabled: nothing can be verified, so it warns instead of refusing", async () => {
    emitWarning = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const store = new RedisStore({ client: noConfig, prefix: 'dur:', durability: 'require' });
    expect(await store.ready()).toMatchObject({ checked: false, issues: [] });
    expect(emitWarning).toHaveBeenCalledWith(expect.stringContaining('could not read the Redis settings'), { type: 'TokenGuardWarning', code: 'TOKEN_GUARD_REDIS_DURABILITY' });
    await store.revoke('t', { now: T0 });
    await store.close();
  });

  it("'ignore' asks nothing; 'warn' (the default outside production) serves; production defaults to 'require'", async () => {
    expect(await new RedisStore({ client: volatile, prefix: 'dur:', durability: 'ignore' }).ready()).toMatchObject({ checked: false });
    const warned = new RedisStore({ client: volatile, prefix: 'dur:' });
    expect((await warned.ready()).issues).toHaveLength(2);
    await warned.revoke('t', { now: T0 });
    vi.stubEnv('NODE_ENV', 'production');
    await expect(new RedisStore({ client: volatile, prefix: 'dur:' }).ready()).rejects.toBeInstanceOf(RedisDurabilityError);
    expect(() => new RedisStore({ client: volatile, durability: 'sometimes' as never })).toThrow(/durability must be/);
  });
});
