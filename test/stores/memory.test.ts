// MemoryStore: the conformance suite, plus what only MemoryStore promises (bounded revocations and claims, frozen records).
import { describe, expect, it } from 'vitest';
import { MemoryStore, StoreError, type ApiKeyRecord } from '../../src/index.js';
import { storeConformance } from '../../src/testing/conformance.js';
import { NOW } from '../helpers/tokens.js';

storeConformance('MemoryStore', () => new MemoryStore(), { describe, it, expect }, { lifecycle: true });

const T0 = NOW.getTime();

function record(overrides: Partial<ApiKeyRecord> = {}): ApiKeyRecord {
  return { id: 'key_1', hash: 'h'.repeat(64), prefix: 'tg_', subject: 'svc', scopes: ['orders:read'], createdAt: T0, expiresAt: null, ...overrides };
}

describe('MemoryStore specifics', () => {
  it('refuses an updateApiKey condition it does not know rather than writing without it', () => {
    const store = new MemoryStore();
    store.putApiKey(record());
    expect(() => store.updateApiKey(record().hash, { name: 'x' }, { ifVersion: 3 } as never)).toThrow(TypeError);
    expect(() => store.updateApiKey(record().hash, { name: 'x' }, { unrotatedAndUnrevoked: 'yes' } as never)).toThrow(TypeError);
    expect(store.getApiKey(record().hash)?.name).toBeUndefined();
  });

  it('refuses a record nested deeper than any record is (a cycle or a mistake), saying so rather than blaming its text', () => {
    const store = new MemoryStore();
    let deep: Record<string, unknown> = { leaf: 'x' };
    for (let i = 0; i < 20; i++) deep = { deep };
    expect(() => store.putApiKey(record({ metadata: deep as never }))).toThrow(/record\.metadata(\.deep)+ must be nested at most 16 levels deep/);
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    expect(() => store.putApiKey(record({ metadata: cyclic as never }))).toThrow(/nested at most 16 levels deep/);
    expect(() => store.putApiKey(record({ name: 'cut \ud83d' }))).toThrow(/record\.name must be well-formed Unicode without NUL/);
  });

  it('full of claims, refuses until the earliest one expires, even when that one came last, and never drops a live one', () => {
    const store = new MemoryStore({ maxClaims: 2 });
    expect(store.claimOnce('late', { now: T0, expiresAt: T0 + 100 })).toBe(true);
    // Claimed after, expires first: the store must know it can make room at T0 + 50.
    expect(store.claimOnce('early', { now: T0 + 1, expiresAt: T0 + 50 })).toBe(true);
    expect(() => store.claimOnce('new', { now: T0 + 10, expiresAt: T0 + 500 })).toThrow(StoreError);
    expect(() => store.claimOnce('new', { now: T0 + 49, expiresAt: T0 + 500 })).toThrow(StoreError);
    expect(store.claimOnce('new', { now: T0 + 50, expiresAt: T0 + 500 })).toBe(true);
    // Still held: a live claim is refused, full or not, and was not dropped to make room.
    expect(store.claimOnce('late', { now: T0 + 60, expiresAt: T0 + 500 })).toBe(false);
    expect(store.claimOnce('new', { now: T0 + 60, expiresAt: T0 + 500 })).toBe(false);
    expect(() => store.claimOnce('other', { now: T0 + 99, expiresAt: T0 + 500 })).toThrow(StoreError);
    expect(store.claimOnce('other', { now: T0 + 100, expiresAt: T0 + 500 })).toBe(true);
  });

  it('full of revocations, makes room once the earliest one ends, even when it was added last, keeping every live one', () => {
    const store = new MemoryStore({ maxRevocations: 2 });
    store.revoke('tok-1', { now: T0, expiresAt: T0 + 100 });
    store.revokeSubject('alice', { now: T0 + 1, before: T0, expiresAt: T0 + 50 });
    expect(() => store.revoke('tok-2', { now: T0 + 10 })).toThrow(StoreError);
    store.revoke('tok-2', { now: T0 + 50 });
    expect(store.getRevocation('tok-1', undefined, T0 + 60)).toEqual({ revokedAt: T0 });
    expect(store.getRevocation('tok-2', 'alice', T0 + 60)).toEqual({ revokedAt: T0 + 50 });
    // Permanent ones never end: nothing to sweep for, and still refused.
    expect(() => store.revokeSubject('bob', { now: T0 + 99, before: T0 })).toThrow(StoreError);
    store.revokeSubject('bob', { now: T0 + 100, before: T0 });
    expect(() => store.revoke('tok-3', { now: T0 + 10_000 })).toThrow(StoreError);
  });

  it('usage of tokens first used from one address stays apart when one of them moves: no list is shared by mistake', () => {
    const store = new MemoryStore();
    for (const id of ['tok-a', 'tok-b', 'tok-c']) store.recordUsage(id, { at: T0, ip: '198.51.100.1' });
    store.recordUsage('tok-a', { at: T0 + 1, ip: '198.51.100.2' });
    store.recordUsage('tok-b', { at: T0 - 5, ip: '198.51.100.3' });
    store.recordUsage('tok-a', { at: T0 + 2, ip: '198.51.100.1' });
    expect(store.getUsage('tok-a')?.recentIps).toEqual(['198.51.100.1', '198.51.100.2']);
    // An older use from a new address goes to the end; the newest stays first.
    expect(store.getUsage('tok-b')?.recentIps).toEqual(['198.51.100.1', '198.51.100.3']);
    expect(store.getUsage('tok-c')?.recentIps).toEqual(['198.51.100.1']);
    // What getUsage hands out is the caller's own: changing it changes nothing in the store, or in another token.
    const copy = store.getUsage('tok-c');
    copy?.recentIps.push('203.0.113.9');
    expect(store.getUsage('tok-c')?.recentIps).toEqual(['198.51.100.1']);
    expect(store.getUsage('tok-b')?.recentIps).toEqual(['198.51.100.1', '198.51.100.3']);
  });

  it('getUsage names only what is known: no lastIp or lastUserAgent key without an address or a User-Agent', () => {
    const store = new MemoryStore();
    store.recordUsage('tok-1', { at: T0 });
    expect(store.getUsage('tok-1')).toStrictEqual({ count: 1, firstUsedAt: T0, lastUsedAt: T0, recentIps: [], minute: T0 - (T0 % 60_000), minuteCount: 1 });
    store.recordUsage('tok-1', { at: T0 + 1, ip: '198.51.100.1', userAgent: 'curl/8' });
    expect(store.getUsage('tok-1')).toStrictEqual({
      count: 2,
      firstUsedAt: T0,
      lastUsedAt: T0 + 1,
      lastIp: '198.51.100.1',
      recentIps: ['198.51.100.1'],
      lastUserAgent: 'curl/8',
      minute: T0 - (T0 % 60_000),
      minuteCount: 2,
    });
  });

  it('refuses a revocation beyond maxRevocations rather than dropping a live one', () => {
    const store = new MemoryStore({ maxRevocations: 2 });
    store.revoke('tok-1', { now: T0 });
    store.revokeSubject('alice', { now: T0, before: T0 });
    expect(() => store.revoke('tok-2', { now: T0 })).toThrow(StoreError);
    expect(store.getRevocation('tok-1', 'alice', T0)).toEqual({ revokedAt: T0, subjectRevokedBefore: T0 });
    expect(store.getRevocation('tok-2', undefined, T0)).toBeUndefined();
  });

  it('makes room for a new revocation by dropping only expired ones', () => {
    const store = new MemoryStore({ maxRevocations: 1 });
    store.revoke('tok-1', { now: T0, expiresAt: T0 + 1000 });
    store.revoke('tok-2', { now: T0 + 1000 });
    expect(store.getRevocation('tok-2', undefined, T0 + 1000)).toEqual({ revokedAt: T0 + 1000 });
  });

  it('re-revoking a token already held does not count against maxRevocations', () => {
    const store = new MemoryStore({ maxRevocations: 1 });
    store.revoke('tok-1', { now: T0, expiresAt: T0 + 1000 });
    expect(() => store.revoke('tok-1', { now: T0, expiresAt: T0 + 5000 })).not.toThrow();
    expect(store.getRevocation('tok-1', undefined, T0 + 2000)).toEqual({ revokedAt: T0 });
  });

  it('regression (M2): a DPoP-style claim stays refused after a flood of fresh claims and counters fills the LRUs', () => {
    const store = new MemoryStore({ maxCounters: 50 });
    const window = { now: T0, expiresAt: T0 + 70_000 };
    expect(store.claimOnce('dpop:victim', window)).toBe(true);
    expect(store.claimOnce('dpop:victim', window)).toBe(false);
    // What any DPoP client can send: many fresh proofs, each its own claim and its own counters.
    for (let i = 0; i < 10_000; i++) {
      expect(store.claimOnce(`dpop:fresh-${i}`, window)).toBe(true);
      store.consume(`dpop:fresh-${i}`, [{ name: 'jti', limit: 1, windowMs: 70_000 }], T0);
    }
    expect(store.claimOnce('dpop:victim', { now: T0 + 69_999, expiresAt: T0 + 140_000 })).toBe(false);
  });

  it('refuses a claim beyond maxClaims with StoreError rather than forgetting a live one', () => {
    const store = new MemoryStore({ maxClaims: 2 });
    const window = { now: T0, expiresAt: T0 + 60_000 };
    store.claimOnce('dpop:a', window);
    store.claimOnce('dpop:b', window);
    expect(() => store.claimOnce('dpop:c', window)).toThrow(StoreError);
    expect(store.claimOnce('dpop:a', window)).toBe(false);
    expect(store.claimOnce('dpop:b', window)).toBe(false);
  });

  it('makes room for a new claim by dropping only expired ones', () => {
    const store = new MemoryStore({ maxClaims: 2 });
    store.claimOnce('dpop:short', { now: T0, expiresAt: T0 + 1000 });
    store.claimOnce('dpop:long', { now: T0, expiresAt: T0 + 60_000 });
    expect(store.claimOnce('dpop:new', { now: T0 + 1000, expiresAt: T0 + 61_000 })).toBe(true);
    expect(store.claimOnce('dpop:long', { now: T0 + 1000, expiresAt: T0 + 61_000 })).toBe(false);
  });

  it('a full store still answers a replay of a live claim with false, not an error', () => {
    const store = new MemoryStore({ maxClaims: 1 });
    store.claimOnce('dpop:a', { now: T0, expiresAt: T0 + 60_000 });
    expect(store.claimOnce('dpop:a', { now: T0 + 1, expiresAt: T0 + 60_000 })).toBe(false);
    // An expired claim of the same key is replaced in place: no room needed.
    expect(store.claimOnce('dpop:a', { now: T0 + 60_000, expiresAt: T0 + 120_000 })).toBe(true);
  });

  it('throws TypeError for a claim with a non-finite time instead of granting one that never holds', () => {
    const store = new MemoryStore();
    expect(() => store.claimOnce('dpop:a', { now: T0, expiresAt: Number.NaN })).toThrow(TypeError);
    expect(() => store.claimOnce('dpop:a', { now: Number.NaN, expiresAt: T0 })).toThrow(TypeError);
  });

  it('hands out frozen copies: neither the caller’s object nor the returned one can change the stored record', () => {
    const store = new MemoryStore();
    const mine = record({ metadata: { team: 'a' } });
    store.putApiKey(mine);
    mine.scopes.push('admin');
    (mine.metadata as Record<string, string>)['team'] = 'b';
    const got = store.getApiKey(mine.hash) as ApiKeyRecord;
    expect(got.scopes).toEqual(['orders:read']);
    expect(got.metadata).toEqual({ team: 'a' });
    expect(Object.isFrozen(got)).toBe(true);
    expect(Object.isFrozen(got.scopes)).toBe(true);
    expect(() => got.scopes.push('admin')).toThrow(TypeError);
  });

  it('records after updateApiKey and useApiKey are frozen too', () => {
    const store = new MemoryStore();
    store.putApiKey(record({ remaining: 2 }));
    expect(Object.isFrozen(store.updateApiKey('h'.repeat(64), { name: 'x' }))).toBe(true);
    store.useApiKey('h'.repeat(64));
    expect(Object.isFrozen(store.getApiKey('h'.repeat(64)))).toBe(true);
  });

  it('keeps the usage of a token in steady use while maxUsage other tokens come and go (recency, not insertion order)', () => {
    const store = new MemoryStore({ maxUsage: 16 });
    store.recordUsage('steady', { at: T0 });
    for (let i = 0; i < 200; i++) {
      store.recordUsage(`once-${i}`, { at: T0 + i });
      if (i % 5 === 0) store.recordUsage('steady', { at: T0 + i });
    }
    expect(store.getUsage('steady')?.count).toBe(41);
    expect(store.getUsage('once-0')).toBeUndefined();
    expect(store.getUsage('once-199')?.count).toBe(1);
  });

  it('answers synchronously, so the guard pays no promise on the hot path', () => {
    const store = new MemoryStore();
    expect(store.getRevocation('tok-1', 'alice', T0)).toBeUndefined();
    expect(store.consume('tok-1', [{ name: 'policy', limit: 1, windowMs: 1000 }], T0)).not.toBeInstanceOf(Promise);
    expect(store.claimOnce('dpop:a', { now: T0, expiresAt: T0 + 1000 })).toBe(true);
  });
});
