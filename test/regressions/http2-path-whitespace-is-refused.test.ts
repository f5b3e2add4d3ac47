// Regression: over HTTP/2 a `:path` may carry raw bytes an HTTP/1 parser refuses. Koa (and Express) route on
// parseurl's pathname, which for a target holding U+00A0 or U+FEFF falls back to Node's url.parse, and that trims
// them (and spaces) at the ends: `GET /admin` NBSP was routed to `/admin` while the guard read `/admin` NBSP, which no
// `/admin/**` rule covers, so a public catch-all let it through with no token. A raw space or non-ASCII character
// in a target is now refused (400 request.malformed), on every adapter; its percent-encoded spelling still works.
// (Express 5 does not serve Node's HTTP/2 compatibility API; an HTTP/2 bridge in front of it reads the same path.)
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import Router from '@koa/router';
import { afterEach, describe, expect, it } from 'vitest';
import { tokenGuard as koaGuard } from '../../src/adapters/koa.js';
import type { TokenGuardPolicy } from '../../src/index.js';
import { basePolicy, signToken } from '../helpers/tokens.js';

const rules: TokenGuardPolicy['rules'] = [
  { path: '/admin/**', scopes: ['admin'] },
  { path: '/**', public: true },
];

/** One GET over HTTP/2, `:path` sent as given. */
function h2get(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const client = http2.connect(`http://127.0.0.1:${port}`);
    client.on('error', reject);
    const req = client.request({ ':method': 'GET', ':path': path, ...headers });
    let body = '';
    let status = 0;
    req.on('response', (h) => (status = Number(h[':status'])));
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      client.close();
      resolve({ status, body });
    });
    req.on('error', (e) => {
      client.close();
      reject(e);
    });
  });
}

const servers: http2.Http2Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

async function listen(handler: Parameters<typeof http2.createServer>[1]): Promise<number> {
  const server = http2.createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

async function koaApp(): Promise<number> {
  const app = new Koa();
  app.silent = true;
  app.use(koaGuard(await basePolicy({ rules })));
  const router = new Router();
  router.get('/admin', (ctx) => {
    ctx.body = `admin for ${ctx.state.auth?.token?.subject ?? 'anonymous'}`;
  });
  router.get('/caf%C3%A9', (ctx) => {
    ctx.body = 'café';
  });
  app.use(router.routes());
  return listen(app.callback() as Parameters<typeof http2.createServer>[1]);
}

describe('regression: a raw space or non-ASCII character in an HTTP/2 :path', () => {
  it('Koa: /admin with a trailing NBSP, FEFF or non-ASCII letter is refused, never routed to /admin without a token', async () => {
    const port = await koaApp();
    expect((await h2get(port, '/admin')).status).toBe(401);
    for (const path of ['/admin\u00a0', '/admin\ufeff', '/admin\u00a0?x=1', '/adm\u00efn']) {
      const r = await h2get(port, path);
      expect([path, r.status, r.body.includes('admin for')]).toEqual([path, 400, false]);
    }
    // The token still opens it, on its own spelling.
    const admin = await signToken({ scope: 'admin' });
    expect(await h2get(port, '/admin', { authorization: `Bearer ${admin}` })).toEqual({ status: 200, body: 'admin for alice' });
  });

  it('Koa: a non-ASCII path percent-encoded, as clients send it, is still served', async () => {
    const port = await koaApp();
    expect(await h2get(port, '/caf%C3%A9')).toEqual({ status: 200, body: 'café' });
  });
});
