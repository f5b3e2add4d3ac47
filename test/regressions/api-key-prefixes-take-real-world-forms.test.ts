// Regression (issue 7 item 12): API key prefixes were limited to one `_` at the end (`tg_`), so `sk_live_` or
// `rk_test_` was a PolicyError, and a policy took only one prefix: no live and test keys side by side, and no way
// to move from an old prefix to a new one without refusing every key already handed out. Prefixes now take the
// real-world form and a policy may list several; a key's prefix is read up to its last `_` (body and checksums are
// base62), so overlapping prefixes (`sk_` and `sk_live_`) never read one key as the other. A token that starts with
// an accepted prefix is only ever an API key: a JWT behind a prefix is not verified as a JWT.
import { describe, expect, it, vi } from 'vitest';
import { createGuard, MemoryStore, PolicyError, type GuardRequest, type TokenGuardPolicy } from '../../src/index.js';
import { NOW, jwtPolicy, signToken, storeApiKey } from '../helpers/tokens.js';

const RULES: TokenGuardPolicy['rules'] = [{ methods: ['GET'], path: '/orders/**', scopes: ['orders:read'] }];
const req = (token: string): GuardRequest => ({ method: 'GET', path: '/orders/1', headers: { authorization: `Bearer ${token}` }, remoteAddress: '203.0.113.9', now: NOW });
const guardFor = (store: MemoryStore, prefix: string | string[], extra: Partial<TokenGuardPolicy> = {}) =>
  createGuard({ apiKeys: { prefix }, store, clock: () => NOW, rules: RULES, ...extra });

describe('regression: API key prefixes take real-world forms, several at once', () => {
  it('accepts a policy prefix such as sk_live_ and lets its keys in', async () => {
    const store = new MemoryStore();
    const { key, record } = await storeApiKey(store, { prefix: 'sk_live_' });
    const d = await guardFor(store, 'sk_live_').evaluate(req(key));
    expect([d.reason, d.token?.id]).toEqual(['ok', record.id]);
  });

  it('accepts live and test keys under one policy, and refuses a third prefix without a store lookup', async () => {
    const store = new MemoryStore();
    const live = await storeApiKey(store, { prefix: 'sk_live_' });
    const test = await storeApiKey(store, { prefix: 'sk_test_' });
    const restricted = await storeApiKey(store, { prefix: 'rk_test_' });
    const guard = guardFor(store, ['sk_live_', 'sk_test_']);
    expect((await guard.evaluate(req(live.key))).token?.id).toBe(live.record.id);
    expect((await guard.evaluate(req(test.key))).token?.id).toBe(test.record.id);
    const lookups = vi.spyOn(store, 'getApiKey');
    const d = await guard.evaluate(req(restricted.key));
    expect([d.status, d.reason]).toEqual([401, 'token.invalid']);
    expect(lookups).not.toHaveBeenCalled();
  });

  it('migrates from an old prefix to a new one: both work while both are listed, then only the new one', async () => {
    const store = new MemoryStore();
    const old = await storeApiKey(store, { prefix: 'tg_' });
    const current = await storeApiKey(store, { prefix: 'acme_live_' });
    const during = guardFor(store, ['acme_live_', 'tg_']);
    expect((await during.evaluate(req(old.key))).reason).toBe('ok');
    expect((await during.evaluate(req(current.key))).reason).toBe('ok');
    const after = guardFor(store, 'acme_live_', { jwt: await jwtPolicy() });
    const lookups = vi.spyOn(store, 'getApiKey');
    expect((await after.evaluate(req(current.key))).reason).toBe('ok');
    expect(lookups).toHaveBeenCalledTimes(1);
    const d = await after.evaluate(req(old.key));
    expect([d.status, d.reason]).toEqual([401, 'token.malformed']);
    expect(lookups).toHaveBeenCalledTimes(1);
  });

  it('keeps overlapping prefixes apart: with sk_ and sk_live_ both accepted, each key finds its own record', async () => {
    const store = new MemoryStore();
    const short = await storeApiKey(store, { prefix: 'sk_', subject: 'svc-short' });
    const live = await storeApiKey(store, { prefix: 'sk_live_', subject: 'svc-live' });
    for (const prefixes of [
      ['sk_', 'sk_live_'],
      ['sk_live_', 'sk_'],
    ]) {
      const guard = guardFor(store, prefixes);
      expect((await guard.evaluate(req(short.key))).token).toMatchObject({ id: short.record.id, subject: 'svc-short' });
      expect((await guard.evaluate(req(live.key))).token).toMatchObject({ id: live.record.id, subject: 'svc-live' });
    }
    // Only sk_ accepted: a sk_live_ key is not a sk_ key, though it starts with sk_.
    const lookups = vi.spyOn(store, 'getApiKey');
    expect((await guardFor(store, 'sk_').evaluate(req(live.key))).reason).toBe('token.malformed');
    expect(lookups).not.toHaveBeenCalled();
  });

  it('never verifies a JWT placed behind an accepted prefix, not even one the issuer signed', async () => {
    const store = new MemoryStore();
    const getApiKey = vi.spyOn(store, 'getApiKey');
    const getRevocation = vi.spyOn(store, 'getRevocation');
    const guard = guardFor(store, 'sk_live_', { jwt: await jwtPolicy() });
    const jwt = await signToken({ scope: 'orders:read' });
    expect((await guard.evaluate(req(jwt))).reason).toBe('ok');
    getRevocation.mockClear();
    for (const token of [`sk_live_${jwt}`, `sk_live_${jwt.replace(/\./g, '')}`, `sk_live_${jwt.split('.')[1]}`]) {
      const d = await guard.evaluate(req(token));
      expect([d.status, d.reason, d.detail]).toEqual([401, 'token.malformed', 'API key checksum or format invalid']);
    }
    expect(getApiKey).not.toHaveBeenCalled();
    expect(getRevocation).not.toHaveBeenCalled();
  });

  it('refuses at start-up a list with an invalid or duplicate prefix, or an empty list', () => {
    const store = new MemoryStore();
    expect(() => guardFor(store, ['sk_live_', 'sk-test_'])).toThrow(/apiKeys\.prefix\[1\]: expected a letter/);
    expect(() => guardFor(store, ['sk_live_', 'sk_live_'])).toThrow(/apiKeys\.prefix\[1\]: duplicate prefix "sk_live_"/);
    expect(() => guardFor(store, [])).toThrow(PolicyError);
    expect(() => guardFor(store, `${'a'.repeat(32)}_`)).toThrow(PolicyError);
    // Every JWT starts with eyJ (base64url of `{"`): such a prefix would read the issuer's tokens as API keys.
    expect(() => guardFor(store, 'eyJ_')).toThrow(/apiKeys\.prefix: .*not starting with "eyJ"/);
  });
});
