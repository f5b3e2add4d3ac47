// What a guard keeps past a request (a usage record's User-Agent and client IP, a pre-authentication limiter's key)
// was cut out of a request header or token with `slice`, `split` or `trim`: V8 keeps such a string as a view into the
// whole header, so a client sending kilobytes of User-Agent, X-Forwarded-For or JWT payload made each kept value cost
// those kilobytes (8 kB a token instead of under 1 kB). Each value is now copied before it is kept.
//
// Measured as heap retained per token after a full collection. The gap is an order of magnitude (kilobytes of header
// against the few hundred bytes of the value itself), so the bound sits far from both sides.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { createGuard, MemoryStore, type Guard } from '../../src/index.js';
import { HMAC_SECRET, NOW, NOW_S, unsignedToken } from '../helpers/tokens.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const N = 2000;
/** Retained per token: well above what a copied value costs, far below the padding each request carries. */
const BOUND = 3000;
/** Header padding: 16 kB, as much as Node lets a client send. A token's payload stays within maxTokenBytes (8 kB). */
const PAD = 16_000;
const PAYLOAD_PAD = 6000;

/** Heap kept per item after `run` (a full collection before and after; `run` keeps its own results alive). */
async function retainedPerItem(run: () => Promise<unknown>): Promise<number> {
  gc();
  gc();
  const before = process.memoryUsage().heapUsed;
  const kept = await run();
  gc();
  gc();
  const grown = process.memoryUsage().heapUsed - before;
  expect(kept).toBeDefined();
  return grown / N;
}

const secret = new TextEncoder().encode(HMAC_SECRET);
const sign = (i: number) =>
  new SignJWT({ sub: `u${i}`, jti: `j${i}`, scope: 'a' })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt(NOW_S)
    .setExpirationTime(NOW_S + 3600)
    .setIssuer('https://id/')
    .setAudience('api')
    .sign(secret);

function guardWith(store: MemoryStore, extra: object = {}): Guard {
  return createGuard({
    jwt: { issuer: 'https://id/', audience: 'api', algorithms: ['HS256'], secret: HMAC_SECRET, cacheSize: 10 },
    store,
    clock: () => NOW,
    unmatched: 'authenticate',
    rules: [{ path: '/x', scopes: ['a'] }],
    ...extra,
  });
}

describe('values kept past a request keep none of its headers', () => {
  it('a usage record keeps 256 characters of a long User-Agent, not the whole header', async () => {
    const store = new MemoryStore();
    const guard = guardWith(store);
    const tokens = await Promise.all(Array.from({ length: N }, (_, i) => sign(i)));
    const perToken = await retainedPerItem(async () => {
      for (let i = 0; i < N; i++) {
        // A fresh header per request, as the HTTP parser makes one.
        const ua = `${i.toString(36)}Mozilla/5.0 `.padEnd(PAD, 'x');
        const d = await guard.evaluate({ method: 'GET', path: '/y', headers: { authorization: `Bearer ${tokens[i]}`, 'user-agent': ua }, remoteAddress: '203.0.113.9' });
        if (d.effect !== 'allow') throw new Error(d.reason);
      }
      return store;
    });
    expect(store.getUsage('j5')?.lastUserAgent).toHaveLength(256);
    expect(perToken).toBeLessThan(BOUND);
  });

  it('a usage record and the pre-authentication limiter keep a client IP read from a long X-Forwarded-For, not the header', async () => {
    const store = new MemoryStore();
    const guard = guardWith(store, { trustProxy: ['10.0.0.0/8'], preAuthLimit: { limit: 5, window: '1h' } });
    const tokens = await Promise.all(Array.from({ length: N }, (_, i) => sign(i)));
    const client = (i: number) => `198.51.${100 + (i >> 7)}.${100 + (i & 127)}`;
    const perToken = await retainedPerItem(async () => {
      for (let i = 0; i < N; i++) {
        // The proxy appended the peer it saw to whatever the client sent.
        const xff = `${'a'.repeat(PAD)}${i}, ${client(i)}`;
        const d = await guard.evaluate({ method: 'GET', path: '/y', headers: { authorization: `Bearer ${tokens[i]}`, 'x-forwarded-for': xff }, remoteAddress: '10.0.0.1' });
        if (d.effect !== 'allow') throw new Error(d.reason);
      }
      return store;
    });
    expect(store.getUsage('j5')?.lastIp).toBe(client(5));
    expect(perToken).toBeLessThan(BOUND);
  });

  it("the pre-authentication limiter keeps a token's claimed subject, not the token's payload", async () => {
    const guard = guardWith(new MemoryStore(), { preAuthLimit: { limit: 1, window: '1h', by: 'ip+subject', ipLimit: 1_000_000 } });
    const pad = 'p'.repeat(PAYLOAD_PAD);
    const perSubject = await retainedPerItem(async () => {
      for (let i = 0; i < N; i++) {
        // Forged: the subject it claims is all the limiter reads of it.
        const token = unsignedToken({ sub: `victim-subject-${i}`, pad }, { alg: 'HS256' });
        const d = await guard.evaluate({ method: 'GET', path: '/y', headers: { authorization: `Bearer ${token}` }, remoteAddress: '198.51.100.7' });
        if (d.reason !== 'token.invalid') throw new Error(d.reason);
      }
      return guard;
    });
    expect(perSubject).toBeLessThan(BOUND);
  });
});
