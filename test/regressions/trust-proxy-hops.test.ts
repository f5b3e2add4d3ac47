// `trustProxy: { hops: n }`: for proxies whose addresses are not known (a hosting platform's load balancer), the
// alternative to trusting every address (trust-proxy-everyone-is-refused.test.ts). The rightmost n X-Forwarded-For
// entries are the proxies' own, so the client is the entry n from the right; what a client writes lands to the left
// of it and is never read. With fewer entries than n the request did not come through every proxy: the client is
// unknown (`ip.unknown`), never guessed.
import { describe, expect, it } from 'vitest';
import express from 'express';
import request from 'supertest';
import { tokenGuard } from '../../src/adapters/express.js';
import { createGuard, MemoryStore, PolicyError, type TokenGuardPolicy } from '../../src/index.js';
import { ClientIpResolver, parseIp } from '../../src/leaf/ip.js';
import { mulberry32 } from '../helpers/prng.js';
import { basePolicy, signToken } from '../helpers/tokens.js';

async function server(hops: number, extra: Partial<TokenGuardPolicy> = {}) {
  const app = express();
  app.use(tokenGuard(await basePolicy({ store: new MemoryStore(), trustProxy: { hops }, rules: [{ path: '/internal/**', ip: { allow: ['10.0.0.0/8'] } }], ...extra })));
  app.get('/*splat', (_req, res) => {
    res.json({ ok: true });
  });
  return app;
}

/** GET /internal/x over HTTP with these X-Forwarded-For headers (an array is sent as that many headers): [status, reason]. */
async function call(app: express.Express, forwarded: string | string[] | undefined, token?: string): Promise<[number, string]> {
  const r = request(app)
    .get('/internal/x')
    .set('authorization', `Bearer ${token ?? (await signToken({}))}`);
  if (forwarded !== undefined) r.set({ 'X-Forwarded-For': forwarded });
  const res = await r;
  return [res.status, res.body.reason ?? 'ok'];
}

describe('trustProxy: { hops: 1 } (one proxy, address unknown)', () => {
  it('reads the entry the proxy appended, so an allowed address the client wrote to its left is refused', async () => {
    const app = await server(1);
    expect(await call(app, '10.0.0.1, 198.51.100.4')).toEqual([403, 'ip.denied']);
    expect(await call(app, '10.0.0.1,198.51.100.4')).toEqual([403, 'ip.denied']);
  });

  it('lets a client in whose own address (the last entry) is allowed, whatever it wrote before it', async () => {
    const app = await server(1);
    expect(await call(app, '10.1.2.3')).toEqual([200, 'ok']);
    expect(await call(app, '198.51.100.4, 10.1.2.3')).toEqual([200, 'ok']);
  });

  it('reads several X-Forwarded-For headers as one list, in order', async () => {
    const app = await server(1);
    expect(await call(app, ['10.0.0.1', '198.51.100.4'])).toEqual([403, 'ip.denied']);
    expect(await call(app, ['198.51.100.4', '10.1.2.3'])).toEqual([200, 'ok']);
  });

  it('makes the client unknown without X-Forwarded-For, or when the entry read is not a bare address', async () => {
    const app = await server(1);
    expect(await call(app, undefined)).toEqual([403, 'ip.unknown']);
    for (const xff of ['', '10.1.2.3:443', 'unknown', '010.1.2.3', '10.1.2.3, ']) expect(await call(app, xff)).toEqual([403, 'ip.unknown']);
  });
});

describe('trustProxy: { hops: 2 } (two proxies)', () => {
  it('reads the entry two from the right: what the first proxy appended', async () => {
    const app = await server(2);
    // client 198.51.100.4 wrote 10.0.0.1; proxy 1 appended 198.51.100.4; proxy 2 appended proxy 1's 172.16.0.5.
    expect(await call(app, '10.0.0.1, 198.51.100.4, 172.16.0.5')).toEqual([403, 'ip.denied']);
    expect(await call(app, '198.51.100.4, 10.1.2.3, 172.16.0.5')).toEqual([200, 'ok']);
    expect(await call(app, ['10.0.0.1, 198.51.100.4', '172.16.0.5'])).toEqual([403, 'ip.denied']);
  });

  it('makes the client unknown with fewer entries than proxies: the request did not pass through both', async () => {
    const app = await server(2);
    expect(await call(app, '10.1.2.3')).toEqual([403, 'ip.unknown']);
    expect(await call(app, undefined)).toEqual([403, 'ip.unknown']);
  });
});

describe('trustProxy: { hops } and the rest of the guard', () => {
  it('keys the pre-auth limit by the resolved address: a client cannot get a fresh bucket by changing what it writes', async () => {
    const app = express();
    app.use(tokenGuard(await basePolicy({ store: new MemoryStore(), trustProxy: { hops: 1 }, preAuthLimit: { limit: 2, window: '1m' } })));
    app.get('/*splat', (_req, res) => {
      res.json({ ok: true });
    });
    const token = await signToken({ scope: 'orders:read' });
    const get = async (xff: string) => (await request(app).get('/orders/1').set('authorization', `Bearer ${token}`).set('X-Forwarded-For', xff)).status;
    expect([await get('198.51.100.4'), await get('10.0.0.1, 198.51.100.4')]).toEqual([200, 200]);
    expect(await get('10.0.0.2, 198.51.100.4')).toBe(429);
    expect(await get('198.51.100.4')).toBe(429);
    // Another client behind the same proxy (the same socket address) has its own bucket.
    expect(await get('198.51.100.5')).toBe(200);
  });

  it('does not need the socket address: the fetch adapter given no connection info still knows the client', async () => {
    const guard = createGuard(await basePolicy({ trustProxy: { hops: 1 }, rules: [{ path: '/internal/**', ip: { allow: ['10.0.0.0/8'] } }] }));
    const at = (xff: string | string[]) =>
      guard.evaluate({ method: 'GET', path: '/internal/x', headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': xff }, remoteAddress: '' });
    const token = await signToken({});
    expect((await at('10.1.2.3')).reason).toBe('ok');
    expect((await at('10.0.0.1, 198.51.100.4')).reason).toBe('ip.denied');
    expect((await at(['10.0.0.1', '198.51.100.4'])).reason).toBe('ip.denied');
  });

  it('keeps no entry of a long X-Forwarded-For in its cache (each would keep the whole header alive)', () => {
    const r = new ClientIpResolver({ hops: 2 });
    const cache = (r as unknown as { cache: { size: number } }).cache;
    const padding = Array.from({ length: 400 }, (_, i) => `198.51.100.${i % 250}`).join(', ');
    expect(r.resolve('10.0.0.1', `${padding}, 203.0.113.9, 172.16.0.5`)?.text).toBe('203.0.113.9');
    expect(cache.size).toBe(0);
    expect(r.resolve('10.0.0.1', ['203.0.113.10', '172.16.0.5'])?.text).toBe('203.0.113.10');
    expect(cache.size).toBe(1);
  });
});

describe('trustProxy: { hops } reads the same entry as splitting the joined headers would', () => {
  it('for random header lists with empty entries, spaces, stray commas and bad addresses', () => {
    const rnd = mulberry32(0x7a11);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
    const parts = ['10.0.0.1', '198.51.100.4', '2001:db8::1', ' 203.0.113.9 ', '', ' ', 'unknown', '10.0.0.1:80', ',', ', '];
    const resolvers = Array.from({ length: 10 }, (_, i) => new ClientIpResolver({ hops: i + 1 }));
    for (let run = 0; run < 2000; run++) {
      const headers = Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => Array.from({ length: Math.floor(rnd() * 5) }, () => pick(parts)).join(pick([',', ', ', ' ,'])));
      const entries = headers.join(',').split(',');
      for (const [i, r] of resolvers.entries()) {
        const n = i + 1;
        const want = entries.length < n ? null : (parseIp((entries[entries.length - n] as string).trim())?.text ?? null);
        const forwarded = headers.length === 1 ? (headers[0] as string) : headers;
        expect(r.resolve(undefined, forwarded)?.text ?? null, `${JSON.stringify(forwarded)} hops ${n}`).toBe(want);
      }
    }
  });
});

describe('trustProxy: { hops } is checked at start-up', () => {
  it.each<[unknown, { path: string; message: string }]>([
    [{ hops: 0 }, { path: 'trustProxy.hops', message: 'expected a whole number of proxies from 1 to 10 (for none, give trustProxy: false)' }],
    [{ hops: 11 }, { path: 'trustProxy.hops', message: 'expected a whole number of proxies from 1 to 10' }],
    [{ hops: 1.5 }, { path: 'trustProxy.hops', message: 'expected a whole number of proxies from 1 to 10' }],
    [{ hops: '1' }, { path: 'trustProxy.hops', message: 'expected a whole number of proxies from 1 to 10' }],
    [{ hops: Number.NaN }, { path: 'trustProxy.hops', message: 'expected a whole number of proxies from 1 to 10' }],
    [{}, { path: 'trustProxy.hops', message: 'required: the number of proxies in front of the app, 1 to 10' }],
    [
      { hops: 1, cidrs: ['10.0.0.0/8'] },
      { path: 'trustProxy.cidrs', message: expect.stringContaining('unknown key') },
    ],
    [true, { path: 'trustProxy', message: expect.stringContaining('{ hops: n }') }],
  ])('refuses %j', async (trustProxy, issue) => {
    let caught: unknown;
    try {
      createGuard(await basePolicy({ trustProxy: trustProxy as TokenGuardPolicy['trustProxy'] }));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(PolicyError);
    expect((caught as PolicyError).issues).toEqual([issue]);
  });
});
