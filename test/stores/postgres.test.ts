// PostgresStore against a real PostgreSQL, in a database of this run's own: the keys and revocation conformance
// suites, migrations, sweeping, lifecycle events, and the failures that must become StoreError.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { StoreError } from '../../src/index.js';
import { REVOCATION_TTL_SLACK_MS } from '../../src/stores/clock-skew.js';
import { PostgresStore, StoreArgumentError } from '../../src/stores/postgres.js';
import { keysConformance, lifecycleConformance, revocationConformance } from '../../src/testing/conformance.js';
import { createTestDatabase, dropTestDatabase, pgPool, pgUp, tablePrefix } from '../helpers/postgres.js';
import { freePort } from '../helpers/redis.js';

const T0 = Date.UTC(2026, 10, 25, 10, 0, 0);
const MINUTE = 60_000;

describe.skipIf(!pgUp)('PostgresStore on a real PostgreSQL', () => {
  let db: { name: string; url: string };
  let pool: pg.Pool;
  const dead: pg.Pool[] = [];

  beforeAll(async () => {
    db = await createTestDatabase('pg');
    pool = pgPool(db.url);
  });
  afterAll(async () => {
    await pool?.end();
    await Promise.all(dead.map((p) => p.end().catch(() => undefined)));
    if (db) await dropTestDatabase(db.name);
  });

  const prefixes = new WeakMap<PostgresStore, string>();
  const prefixOf = (store: PostgresStore) => prefixes.get(store) as string;
  async function makeStore(prefix = tablePrefix()): Promise<PostgresStore> {
    // Generous: parallel conformance cases on a loaded CI machine must not become timeouts.
    const store = new PostgresStore({ pool, tablePrefix: prefix, queryTimeout: 5000 });
    prefixes.set(store, prefix);
    await store.migrate();
    return store;
  }

  // A pool to a port nobody listens on: every call must fail within queryTimeout.
  const failingStore = async () => {
    const p = pgPool(`postgres://postgres@127.0.0.1:${await freePort()}/none`, { connectionTimeoutMillis: 200 });
    dead.push(p);
    return new PostgresStore({ pool: p, queryTimeout: 300 });
  };

  keysConformance('PostgresStore', () => makeStore(), { describe, it, expect }, { failingStore, timeout: 20_000, concurrency: 50 });
  revocationConformance('PostgresStore', () => makeStore(), { describe, it, expect }, { failingStore, timeout: 20_000 });
  lifecycleConformance('PostgresStore', () => makeStore(), { describe, it, expect }, { failingStore, timeout: 20_000 });

  describe('migrate', () => {
    it('creates the schema once; running it again (or from several instances at once) changes nothing', async () => {
      const prefix = tablePrefix();
      const a = new PostgresStore({ pool, tablePrefix: prefix });
      const b = new PostgresStore({ pool, tablePrefix: prefix });
      const results = await Promise.all([a.migrate(), b.migrate()]);
      expect(results.map((r) => r.from).sort()).toEqual([0, 1]);
      expect(await a.migrate()).toEqual({ from: 1, to: 1 });
      const { rows } = await pool.query(`SELECT version FROM "${prefix}schema_version"`);
      expect(rows).toEqual([{ version: 1 }]);
    });

    it('refuses a schema newer than it knows with a StoreError', async () => {
      const prefix = tablePrefix();
      const store = await makeStore(prefix);
      await pool.query(`INSERT INTO "${prefix}schema_version" (version) VALUES (99)`);
      await expect(store.migrate()).rejects.toMatchObject({ name: 'StoreError', code: 'store.unavailable', message: expect.stringContaining('version 99') });
    });

    it('never creates tables on the request path: before migrate, calls fail with StoreError', async () => {
      const store = new PostgresStore({ pool, tablePrefix: tablePrefix() });
      await expect(store.getApiKey('a'.repeat(64))).rejects.toBeInstanceOf(StoreError);
      await expect(store.getRevocation('tok', 'alice', T0)).rejects.toBeInstanceOf(StoreError);
    });

    it('refuses a table prefix that is not a plain identifier (it goes into SQL text)', () => {
      for (const bad of ['x"; DROP TABLE y; --', 'Upper_', '1abc', '', 'a'.repeat(41)]) {
        expect(() => new PostgresStore({ pool, tablePrefix: bad })).toThrow(StoreArgumentError);
      }
      expect(() => new PostgresStore({ pool: {} as pg.Pool })).toThrow(StoreArgumentError);
      expect(() => new PostgresStore({ pool, queryTimeout: 0 })).toThrow(StoreArgumentError);
    });
  });

  describe('values that SQL must not interpret', () => {
    it('keeps ids with quotes, NUL, percent signs and SQL in them apart and intact', async () => {
      const store = await makeStore();
      const ids = ["tok'; DROP TABLE x; --", 'a\0b', 'a%00b', '%25', 'a%b'];
      for (const id of ids) await store.revoke(id, { now: T0 });
      for (const id of ids) expect(await store.getRevocation(id, undefined, T0)).toEqual({ revokedAt: T0 });
      expect(await store.getRevocation('a', undefined, T0)).toBeUndefined();
      expect(await store.getRevocation('%', undefined, T0)).toBeUndefined();
      await store.revokeSubject('al\0ice', { now: T0, before: T0 });
      expect(await store.getRevocation('t', 'al\0ice', T0)).toEqual({ subjectRevokedBefore: T0 });
      expect(await store.getRevocation('t', 'al%00ice', T0)).toBeUndefined();
    });
  });

  describe('sweep', () => {
    it('deletes expired revocations in batches, keeps live ones and those kept for good', async () => {
      const store = await makeStore();
      for (let i = 0; i < 25; i++) await store.revoke(`tok-${i}`, { now: T0, expiresAt: T0 + MINUTE });
      await store.revoke('forever', { now: T0 });
      await store.revoke('later', { now: T0, expiresAt: T0 + 10 * MINUTE });
      await store.revokeSubject('alice', { now: T0, before: T0, expiresAt: T0 + MINUTE });
      // A revocation outlives its expiry by the clock-skew slack: a sweeper whose clock runs ahead must not drop it.
      expect(await store.sweep({ now: T0 + MINUTE + REVOCATION_TTL_SLACK_MS - 1, batchSize: 10 })).toEqual({ revocations: 0, apiKeys: 0, more: false });
      expect(await store.sweep({ now: T0 + MINUTE + REVOCATION_TTL_SLACK_MS, batchSize: 10, maxBatches: 2 })).toEqual({ revocations: 20, apiKeys: 0, more: true });
      expect(await store.sweep({ now: T0 + MINUTE + REVOCATION_TTL_SLACK_MS, batchSize: 10 })).toEqual({ revocations: 6, apiKeys: 0, more: false });
      expect(await store.getRevocation('forever', undefined, T0 + MINUTE)).toEqual({ revokedAt: T0 });
      expect(await store.getRevocation('later', undefined, T0 + MINUTE)).toEqual({ revokedAt: T0 });
    });

    it('deletes API key records only once they have been expired for keepExpiredKeys', async () => {
      const store = await makeStore();
      const rec = (i: number, expiresAt: number | null) => ({
        id: `key_${i}`,
        hash: `${i}`.padStart(64, '0'),
        prefix: 'tg_',
        subject: 's',
        scopes: [],
        createdAt: T0,
        expiresAt,
      });
      await store.putApiKey(rec(1, T0 + MINUTE));
      await store.putApiKey(rec(2, null));
      expect(await store.sweep({ now: T0 + 2 * MINUTE, keepExpiredKeys: 5 * MINUTE })).toMatchObject({ apiKeys: 0 });
      expect(await store.sweep({ now: T0 + 6 * MINUTE, keepExpiredKeys: 5 * MINUTE })).toMatchObject({ apiKeys: 1 });
      expect(await store.getApiKey(rec(1, null).hash)).toBeUndefined();
      expect(await store.getApiKey(rec(2, null).hash)).toBeDefined();
      expect(await store.sweep({ now: T0 + 1e12, keepExpiredKeys: false })).toMatchObject({ apiKeys: 0 });
    });

    it('refuses nonsense options', async () => {
      const store = await makeStore();
      await expect(store.sweep({ now: Number.NaN })).rejects.toBeInstanceOf(StoreArgumentError);
      await expect(store.sweep({ now: T0, batchSize: 0 })).rejects.toBeInstanceOf(StoreArgumentError);
      await expect(store.sweep({ now: T0, keepExpiredKeys: -1 })).rejects.toBeInstanceOf(StoreArgumentError);
    });
  });

  describe('lifecycle events and reasons', () => {
    it('keeps every event (no cap), in the order appended, and the latest reason given for a live revocation', async () => {
      const store = await makeStore();
      for (let i = 0; i < 150; i++) await store.appendLifecycleEvent({ id: `evt_${i}`, type: 'key.issued', at: T0 + i, subject: 'svc', tokenId: `key_${i % 3}` });
      const latest = await store.listLifecycleEvents({ subject: 'svc', limit: 1000 });
      expect(latest.map((e) => e.id)).toEqual(Array.from({ length: 150 }, (_, i) => `evt_${i}`));
      expect((await store.listLifecycleEvents({ tokenId: 'key_1', since: T0 + 140, limit: 2 })).map((e) => e.id)).toEqual(['evt_145', 'evt_148']);
      await store.revoke('t1', { now: T0, reason: 'compromised' });
      await store.revoke('t1', { now: T0 + 1 });
      expect(await store.getRevocation('t1', undefined, T0 + 2)).toEqual({ revokedAt: T0, reason: 'compromised' });
      await store.revoke('t1', { now: T0 + 1, reason: 'offboarded' });
      const { rows } = await pool.query(`SELECT reason FROM "${prefixOf(store)}revocations"`);
      expect(rows).toEqual([{ reason: 'offboarded' }]);
    });
  });
});

describe('the built token-guard/postgres', () => {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  it('loads (ESM and CJS) without pg installed, since it only uses pg types', () => {
    expect(existsSync(`${root}dist/postgres.js`), 'dist/postgres.js is missing: run `npm run build` first').toBe(true);
    // A resolve hook (ESM) and a resolver patch (CJS) make `pg` unresolvable, as in an app without it.
    const script = `
      const { register, Module } = await import('node:module');
      register('data:text/javascript,' + encodeURIComponent('export async function resolve(s, c, next) { if (s === "pg" || s.startsWith("pg/")) throw new Error("pg absent"); return next(s, c); }'));
      const resolve = Module._resolveFilename;
      Module._resolveFilename = function (s, ...rest) { if (s === 'pg' || s.startsWith('pg/')) throw new Error('pg absent'); return resolve.call(this, s, ...rest); };
      const esm = await import(${JSON.stringify(`${root}dist/postgres.js`)});
      const cjs = Module.createRequire(${JSON.stringify(root)})(${JSON.stringify(`${root}dist/postgres.cjs`)});
      let probe = 'no';
      try { await import('pg'); } catch { probe = 'hidden'; }
      console.log(typeof esm.PostgresStore, typeof cjs.PostgresStore, probe);
    `;
    const out = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' });
    expect(out.stderr).toBe('');
    expect(out.stdout.trim()).toBe('function function hidden');
  });
});
