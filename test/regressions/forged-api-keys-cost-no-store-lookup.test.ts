// Regression (issue 7 item 13): the README said the CRC checksum "lets the guard refuse a mistyped or forged key
// without a store lookup". A CRC has no secret: anyone can make up a key with a valid one, and each cost a
// getApiKey round trip, so a key-guessing flood went straight to the store. With `apiKeys.checksumSecret` keys
// carry a keyed checksum (HMAC-SHA256, truncated) that only this deployment can mint: a made-up key, a key minted
// without the secret or under another one, is refused before the store is asked.
import { crc32 } from 'node:zlib';
import request from 'supertest';
import express from 'express';
import { describe, expect, it, vi } from 'vitest';
import { createGuard, MemoryStore, PolicyError, type GuardRequest, type TokenGuardPolicy } from '../../src/index.js';
import { tokenGuard } from '../../src/adapters/express.js';
import { HMAC_SECRET, NOW, jwtPolicy, storeApiKey } from '../helpers/tokens.js';

const SECRET = 'this-deployment-api-key-checksum-secret!';
const OTHER_SECRET = 'another-deployment-api-key-checksum-secret';
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const RULES: TokenGuardPolicy['rules'] = [{ methods: ['GET'], path: '/orders/**', scopes: ['orders:read'] }];
const req = (token: string): GuardRequest => ({ method: 'GET', path: '/orders/1', headers: { authorization: `Bearer ${token}` }, remoteAddress: '203.0.113.9', now: NOW });
const policy = (store: MemoryStore, checksumSecret?: string): TokenGuardPolicy => ({
  apiKeys: { prefix: 'tg_', ...(checksumSecret !== undefined && { checksumSecret }) },
  store,
  clock: () => NOW,
  rules: RULES,
});

/** A key anyone can make: random base62 (as long as a keyed key), with the public CRC32 checksum appended. */
function madeUpKey(seed: number): string {
  let body = '';
  let x = seed * 2654435761;
  for (let i = 0; i < 51; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    body += BASE62[x % 62];
  }
  let n = crc32(`tg_${body}`);
  let sum = '';
  for (let i = 0; i < 6; i++) {
    sum = BASE62[n % 62] + sum;
    n = Math.floor(n / 62);
  }
  return `tg_${body}${sum}`;
}

describe('regression: a key this deployment did not mint costs no store lookup (apiKeys.checksumSecret)', () => {
  it('lets a key minted with the secret in, with one lookup', async () => {
    const store = new MemoryStore();
    const { key, record } = await storeApiKey(store, { checksumSecret: SECRET });
    const lookups = vi.spyOn(store, 'getApiKey');
    const d = await createGuard(policy(store, SECRET)).evaluate(req(key));
    expect([d.reason, d.token?.id]).toEqual(['ok', record.id]);
    expect(lookups).toHaveBeenCalledTimes(1);
  });

  it('refuses a flood of 1000 made-up keys with valid CRCs as token.invalid without one store call', async () => {
    const store = new MemoryStore();
    const lookups = vi.spyOn(store, 'getApiKey');
    const guard = createGuard(policy(store, SECRET));
    for (let i = 0; i < 1000; i++) {
      const d = await guard.evaluate(req(madeUpKey(i)));
      expect([d.status, d.reason]).toEqual([401, 'token.invalid']);
    }
    expect(lookups).toHaveBeenCalledTimes(0);
  });

  it('refuses a key minted under another secret, or without one, even when the store holds its record', async () => {
    const store = new MemoryStore();
    const foreign = await storeApiKey(store, { checksumSecret: OTHER_SECRET });
    const plain = await storeApiKey(store);
    const lookups = vi.spyOn(store, 'getApiKey');
    const guard = createGuard(policy(store, SECRET));
    expect((await guard.evaluate(req(foreign.key))).reason).toBe('token.invalid');
    // A CRC-only key is shorter than a keyed one: it fails the format before the MAC is even read.
    expect((await guard.evaluate(req(plain.key))).reason).toBe('token.malformed');
    expect(lookups).toHaveBeenCalledTimes(0);
  });

  it('says what the CRC alone does: without a secret, every made-up key costs a lookup (and is then refused)', async () => {
    const store = new MemoryStore();
    const lookups = vi.spyOn(store, 'getApiKey');
    const guard = createGuard(policy(store));
    for (let i = 0; i < 20; i++) expect((await guard.evaluate(req(madeUpKey(i)))).reason).toBe('token.invalid');
    expect(lookups).toHaveBeenCalledTimes(20);
  });

  it('keeps the flood off the store through an adapter too', async () => {
    const store = new MemoryStore();
    const { key } = await storeApiKey(store, { checksumSecret: SECRET });
    const lookups = vi.spyOn(store, 'getApiKey');
    const app = express();
    app.use(tokenGuard(policy(store, SECRET)));
    app.get('/orders/:id', (_req, res) => void res.json({ ok: true }));
    for (let i = 0; i < 20; i++) {
      const res = await request(app)
        .get('/orders/1')
        .set('authorization', `Bearer ${madeUpKey(i)}`);
      expect([res.status, res.body.reason]).toEqual([401, 'token.invalid']);
    }
    expect(lookups).toHaveBeenCalledTimes(0);
    expect((await request(app).get('/orders/1').set('authorization', `Bearer ${key}`)).status).toBe(200);
    expect(lookups).toHaveBeenCalledTimes(1);
  });

  it('refuses at start-up a secret under 32 bytes, of the wrong type, or shared with jwt.secret', async () => {
    const store = new MemoryStore();
    expect(() => createGuard(policy(store, 'x'.repeat(31)))).toThrow(/apiKeys\.checksumSecret: expected at least 32 bytes/);
    expect(() => createGuard(policy(store, 42 as unknown as string))).toThrow(PolicyError);
    expect(() => createGuard({ ...policy(store, SECRET), apiKeys: { prefix: 'tg_', checksumSecret: new Uint8Array(32).fill(7) } })).not.toThrow();
    const jwt = await jwtPolicy({ algorithms: ['HS256'], secret: HMAC_SECRET, keys: undefined });
    expect(() => createGuard({ ...policy(store, HMAC_SECRET), jwt })).toThrow(/apiKeys\.checksumSecret: must not be jwt\.secret/);
  });

  it('mints keys a guard without the secret still accepts, so keys can be reissued before the secret is turned on', async () => {
    const store = new MemoryStore();
    const { key, record } = await storeApiKey(store, { checksumSecret: SECRET });
    const before = await createGuard(policy(store)).evaluate(req(key));
    const after = await createGuard(policy(store, SECRET)).evaluate(req(key));
    expect([before.reason, before.token?.id, after.reason, after.token?.id]).toEqual(['ok', record.id, 'ok', record.id]);
  });
});
