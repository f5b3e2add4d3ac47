// Attacks on the IP check that held (kept as negative tests), over real HTTP behind a trusted proxy (the test client's
// own address): an allowed address prepended to X-Forwarded-For, a split header, hop spellings other parsers read as
// another address, IPv4-mapped and IPv4-compatible forms against IPv4 lists, the Forwarded header, and the same
// tricks against an API key record's own IP binding.
import { describe, expect, it } from 'vitest';
import express from 'express';
import request from 'supertest';
import { tokenGuard } from '../../src/adapters/express.js';
import { MemoryStore } from '../../src/index.js';
import { basePolicy, signToken, storeApiKey } from '../helpers/tokens.js';

async function server() {
  const store = new MemoryStore();
  const app = express();
  app.use(
    tokenGuard(
      await basePolicy({
        store,
        // supertest connects from loopback: that is the proxy, which appends the address it sees last.
        trustProxy: ['127.0.0.1', '::1'],
        ip: { deny: ['203.0.113.7'] },
        rules: [
          { path: '/internal/**', ip: { allow: ['10.0.0.0/8'] } },
          { path: '/keyed/**', scopes: ['orders:read'] },
        ],
      }),
    ),
  );
  app.get('/*splat', (_req, res) => {
    res.json({ ok: true });
  });
  const { key } = await storeApiKey(store, { ip: { allow: ['10.0.0.0/8'] } });
  return { app, key, jwt: await signToken({ scope: 'orders:read' }) };
}

const call = (app: express.Express, path: string, credential: string, forwarded: string | string[] | undefined, extra: Record<string, string> = {}) => {
  const r = request(app).get(path).set('authorization', `Bearer ${credential}`);
  // An array is sent as that many X-Forwarded-For headers.
  if (forwarded !== undefined) r.set({ 'X-Forwarded-For': forwarded });
  for (const [k, v] of Object.entries(extra)) r.set(k, v);
  return r.then((res) => [res.status, res.body.reason ?? 'ok']);
};

describe('attack: client addresses spelled to pass an IP list', () => {
  it('lets a real internal client through, so the refusals below are about the spelling', async () => {
    const { app, key, jwt } = await server();
    expect(await call(app, '/internal/x', jwt, '10.1.2.3')).toEqual([200, 'ok']);
    expect(await call(app, '/keyed/x', key, '10.1.2.3')).toEqual([200, 'ok']);
  });

  it.each<[string, string | string[]]>([
    ['an allowed address prepended by the client', '10.0.0.1, 198.51.100.4'],
    ['an allowed address in a first header, the real one in a second', ['10.0.0.1', '198.51.100.4']],
  ])('refuses %s with ip.denied', async (_what, forwarded) => {
    const { app, key, jwt } = await server();
    expect(await call(app, '/internal/x', jwt, forwarded)).toEqual([403, 'ip.denied']);
    expect(await call(app, '/keyed/x', key, forwarded)).toEqual([403, 'ip.denied']);
  });

  it.each(['010.0.0.1', '10.0.0.1%eth0', '10.0.0.1:443', '[::ffff:10.0.0.1]', '0x0a.0.0.1', '10.1', '10.0.0.1.', 'unknown', '10.0.0.1, '])(
    'makes the client unknown (ip.unknown) when the last hop is %j',
    async (forwarded) => {
      const { app, key, jwt } = await server();
      expect(await call(app, '/internal/x', jwt, forwarded)).toEqual([403, 'ip.unknown']);
      expect(await call(app, '/keyed/x', key, forwarded)).toEqual([403, 'ip.unknown']);
    },
  );

  it('reads an IPv4-mapped hop as its IPv4 address against a deny list, and an IPv4-compatible one as IPv6', async () => {
    const { app, jwt } = await server();
    expect(await call(app, '/keyed/x', jwt, '::ffff:203.0.113.7')).toEqual([403, 'ip.denied']);
    expect(await call(app, '/keyed/x', jwt, '0:0:0:0:0:ffff:cb00:7107')).toEqual([403, 'ip.denied']);
    expect(await call(app, '/internal/x', jwt, '::10.1.2.3')).toEqual([403, 'ip.denied']);
    expect(await call(app, '/internal/x', jwt, '::ffff:10.1.2.3')).toEqual([200, 'ok']);
  });

  it('never reads the Forwarded header: without X-Forwarded-For the client is the proxy itself', async () => {
    const { app, jwt } = await server();
    expect(await call(app, '/internal/x', jwt, undefined, { Forwarded: 'for=10.0.0.1' })).toEqual([403, 'ip.denied']);
  });
});
