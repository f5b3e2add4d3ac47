// The multi-instance revocation scenario, shared by the standalone and Cluster suites: instance A in this process,
// instance B in a child process, each with its own Redis connections; revoke on A, the very next request to B is refused.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import express from 'express';
import request from 'supertest';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Cluster, Redis } from 'ioredis';
import { issueApiKey } from '../../src/index.js';
import { tokenGuard, type TokenGuardMiddleware } from '../../src/adapters/express.js';
import { RedisStore } from '../../src/stores/redis.js';
import { AUDIENCE, ISSUER, NOW, NOW_S, signToken, testKeys } from '../helpers/tokens.js';
import { deletePrefix, randomPrefix } from '../helpers/redis.js';

/** How the scenario reaches Redis: in this process, and in the child. */
export interface RedisTarget {
  /** A new connection; the scenario closes what it opens. */
  connect(): Redis | Cluster;
  /** Environment for the child: `TG_REDIS_URL`, or `TG_REDIS_NODES` (JSON list of `{ host, port }`) for a Cluster. */
  env: Record<string, string>;
}

/** A running instance B. */
interface Child {
  url: string;
  stop(): Promise<void>;
}

const FIXTURE = fileURLToPath(new URL('./fixtures/instance.ts', import.meta.url));

/** Starts instance B in its own process and resolves once it serves. */
export async function startInstance(env: Record<string, string>): Promise<Child> {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`instance B did not start within 30 s: ${stderr}`)), 30_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`instance B exited with ${code}: ${stderr}`));
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    async stop() {
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Registers the scenario's tests in the caller's `describe`. `target` is read in `beforeAll`, so a suite may start
 * its Redis there first. With `nearCache`, both instances run with a subscriber and near-cache.
 */
export function twoInstanceScenario(target: () => RedisTarget, options: { nearCache: boolean }): void {
  const prefix = randomPrefix('two');
  const opened: (Redis | Cluster)[] = [];
  let client: Redis | Cluster | undefined;
  let b: Child;
  let guardA: TokenGuardMiddleware;
  let appA: express.Express;
  let storeA: RedisStore;
  let seq = 0;

  const expiresAt = new Date((NOW_S + 3600) * 1000);
  const jwt = (claims: Record<string, unknown> = {}, sub = 'alice') => signToken({ jti: `two-${seq++}`, scope: 'orders:read', ...claims }, { sub });
  const onB = async (token: string) => {
    const res = await fetch(`${b.url}/orders/1`, { headers: { authorization: `Bearer ${token}` } });
    return { status: res.status, body: (await res.json()) as { reason?: string; instance?: string } };
  };
  const onA = (token: string) => request(appA).get('/orders/1').set('Authorization', `Bearer ${token}`);
  const statsB = async () => (await (await fetch(`${b.url}/_stats`)).json()) as { nearCacheHits: number; nearCacheEnabled: boolean };

  beforeAll(async () => {
    const t = target();
    const connect = () => {
      const c = t.connect();
      opened.push(c);
      return c;
    };
    client = connect();
    const subscriber = options.nearCache ? connect() : undefined;
    storeA = new RedisStore({ client, prefix, ...(subscriber && { subscriber }) });
    const keys = await testKeys();
    guardA = tokenGuard({
      jwt: { issuer: ISSUER, audience: AUDIENCE, algorithms: ['RS256'], keys: [keys.rsaPublicJwk] },
      apiKeys: { prefix: 'tg_' },
      store: storeA,
      clock: () => NOW,
      rules: [{ methods: ['GET'], path: '/orders/**', scopes: ['orders:read'] }],
    });
    appA = express();
    appA.use(guardA);
    appA.get('/orders/:id', (_req, res) => void res.json({ instance: 'A' }));
    b = await startInstance({
      ...t.env,
      TG_PREFIX: prefix,
      TG_NOW: String(NOW.getTime()),
      TG_ISSUER: ISSUER,
      TG_AUDIENCE: AUDIENCE,
      TG_JWKS: JSON.stringify([keys.rsaPublicJwk]),
      TG_NEAR_CACHE: options.nearCache ? '1' : '0',
    });
    if (options.nearCache) {
      while (!storeA.stats().nearCacheEnabled) await new Promise((r) => setTimeout(r, 5));
    }
  }, 60_000);

  afterAll(async () => {
    await b?.stop();
    await storeA?.close();
    if (client) await deletePrefix(client, prefix);
    for (const c of opened) c.disconnect();
  });

  it('a JWT and an API key work on both instances', async () => {
    const token = await jwt();
    expect((await onA(token)).body).toEqual({ instance: 'A' });
    expect((await onB(token)).body).toEqual({ instance: 'B' });
    const { key, record } = issueApiKey({ prefix: 'tg_', subject: 'svc', scopes: ['orders:read'], expiresIn: '30d', now: new Date(NOW.getTime() - 1000) });
    await storeA.putApiKey(record);
    expect((await onA(key)).status).toBe(200);
    expect((await onB(key)).body).toEqual({ instance: 'B' });
  });

  if (options.nearCache) {
    it('instance B answers repeated revocation lookups from its near-cache', async () => {
      const token = await jwt();
      await onB(token);
      const before = (await statsB()).nearCacheHits;
      expect((await onB(token)).status).toBe(200);
      expect((await statsB()).nearCacheHits).toBe(before + 1);
    });
  }

  it('a JWT revoked through A is refused on the very next request to B (token.revoked)', async () => {
    const jti = `two-revoke-${seq++}`;
    const token = await jwt({ jti });
    expect((await onB(token)).status).toBe(200);
    expect((await onB(token)).status).toBe(200);
    await guardA.guard.revoke(jti, { expiresAt });
    expect(await onB(token)).toEqual({ status: 401, body: expect.objectContaining({ reason: 'token.revoked' }) });
    expect((await onA(token)).body.reason).toBe('token.revoked');
  });

  it('an API key revoked through A is refused on the very next request to B', async () => {
    const { key, record } = issueApiKey({ prefix: 'tg_', subject: 'svc', scopes: ['orders:read'], expiresIn: '30d', now: new Date(NOW.getTime() - 1000) });
    await storeA.putApiKey(record);
    expect((await onB(key)).status).toBe(200);
    await guardA.guard.revoke(record.id, { expiresAt: record.expiresAt as number });
    expect(await onB(key)).toEqual({ status: 401, body: expect.objectContaining({ reason: 'token.revoked' }) });
  });

  it('revokeSubject through A: the very next request to B with an older token of that subject is refused; other subjects pass', async () => {
    const carol = await jwt({}, 'carol');
    const dave = await jwt({}, 'dave');
    expect((await onB(carol)).status).toBe(200);
    expect((await onB(dave)).status).toBe(200);
    await guardA.guard.revokeSubject('carol', { before: NOW.getTime() + 1000, expiresAt });
    expect(await onB(carol)).toEqual({ status: 401, body: expect.objectContaining({ reason: 'token.revoked' }) });
    expect((await onB(dave)).status).toBe(200);
  });

  it('30 revocations in a row through A: each refused on the very next request to B', async () => {
    const outcomes: number[] = [];
    for (let i = 0; i < 30; i++) {
      const jti = `two-loop-${seq++}`;
      const token = await jwt({ jti });
      if ((await onB(token)).status !== 200) throw new Error('setup: token refused before revocation');
      await guardA.guard.revoke(jti, { expiresAt });
      outcomes.push((await onB(token)).status);
    }
    expect(outcomes).toEqual(Array(30).fill(401));
  });
}
