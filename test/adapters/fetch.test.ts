// fetch adapter specifics the scenario table does not show: the result shape, requireScopes' binding to
// the guarded Request, connection info, and the Node http bridge from the example over real sockets.
import { afterAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { guardFetch, requireScopes } from '../../src/adapters/fetch.js';
import { AccessDeniedError, MemoryStore, PolicyError, createGuard } from '../../src/index.js';
import { basePolicy, signToken } from '../helpers/tokens.js';
import { toNodeListener } from '../../examples/fetch/bridge.js';

const url = (path: string) => `https://api.example.test${path}`;
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const servers: http.Server[] = [];

afterAll(async () => {
  for (const s of servers) await new Promise((r) => s.close(r));
});

describe('fetch adapter', () => {
  it('resolves to { auth, headers } for a request that may go through', async () => {
    const guard = guardFetch(await basePolicy({ rateLimit: { limit: 5, window: '1m' } }));
    const result = await guard(new Request(url('/orders/1'), { headers: bearer(await signToken({ scope: 'orders:read' })) }));
    expect(result).not.toBeInstanceOf(Response);
    if (result instanceof Response) return;
    expect(result.auth.token).toMatchObject({ subject: 'alice', scopes: ['orders:read'] });
    expect(result.auth.decision).toMatchObject({ effect: 'allow', reason: 'ok', rule: 'GET,HEAD /orders/**' });
    expect(result.headers).toMatchObject({ 'RateLimit-Limit': '5', 'RateLimit-Remaining': '4' });
  });

  it('resolves to a ready Response for a refusal', async () => {
    const guard = guardFetch(await basePolicy());
    const result = await guard(new Request(url('/orders/1')));
    expect(result).toBeInstanceOf(Response);
    const res = result as Response;
    expect(res.status).toBe(401);
    const headers: Record<string, string> = {};
    res.headers.forEach((v, k) => (headers[k] = v));
    expect(headers).toEqual({ 'www-authenticate': 'Bearer', 'content-type': 'application/problem+json', 'cache-control': 'no-store' });
    expect(await res.json()).toEqual({ type: 'urn:token-guard:problem:token.missing', title: 'Authentication required', status: 401, reason: 'token.missing' });
  });

  it('matches rules on pathname and search, not on the origin', async () => {
    const guard = guardFetch(await basePolicy());
    const result = await guard(new Request('https://admin.example.test/orders/1?scope=admin', { headers: bearer(await signToken({ scope: 'orders:read' })) }));
    expect(result instanceof Response ? result.status : result.auth.decision.rule).toBe('GET,HEAD /orders/**');
  });

  it('treats a request without connection info as coming from an unknown address', async () => {
    const guard = guardFetch(await basePolicy());
    const admin = { headers: bearer(await signToken({ scope: 'admin' })) };
    const unknown = (await guard(new Request(url('/admin/users'), admin))) as Response;
    expect([unknown.status, ((await unknown.json()) as { reason: string }).reason]).toEqual([403, 'ip.unknown']);
    const office = await guard(new Request(url('/admin/users'), admin), { remoteAddress: '10.0.0.7' });
    expect(office).not.toBeInstanceOf(Response);
  });

  it('binds requireScopes to the very Request the guard saw', async () => {
    const guard = guardFetch(await basePolicy({ unmatched: 'authenticate' }));
    const canExport = requireScopes('reports:export');
    const request = new Request(url('/exports/1'), { headers: bearer(await signToken({ scope: 'orders:read' })) });
    await guard(request);
    const refused = canExport(request) as Response;
    expect(refused.status).toBe(403);
    expect(refused.headers.get('www-authenticate')).toContain('scope="reports:export"');
    // A copy is another request: it was never guarded, so requireScopes refuses to guess.
    expect(() => canExport(request.clone())).toThrow(/guardFetch\(\) first/);
  });

  it("rejects with an AccessDeniedError under errors: 'throw', and requireScopes throws it", async () => {
    const guard = guardFetch(await basePolicy({ unmatched: 'authenticate' }), { errors: 'throw' });
    await expect(guard(new Request(url('/orders/1')))).rejects.toBeInstanceOf(AccessDeniedError);
    const request = new Request(url('/exports/1'), { headers: bearer(await signToken({ scope: 'orders:read' })) });
    await guard(request);
    expect(() => requireScopes('reports:export')(request)).toThrow(AccessDeniedError);
  });

  it('exposes the guard it runs and accepts one from createGuard', async () => {
    const store = new MemoryStore();
    const shared = createGuard(await basePolicy({ store }));
    const guard = guardFetch(shared);
    expect(guard.guard).toBe(shared);
    expect(guardFetch(await basePolicy({ store })).guard.store).toBe(store);
    expect(() => guardFetch({ apiKeys: { prefix: 'bad' } })).toThrow(PolicyError);
  });

  describe('behind the example Node bridge, over real sockets', () => {
    async function serve(): Promise<{ base: string; port: number }> {
      const guard = guardFetch(await basePolicy({ rules: [{ path: '/admin/**', scopes: ['admin'], ip: { allow: ['127.0.0.1/32', '::1/128'] } }] }));
      const server = http.createServer(
        toNodeListener(async (request, info) => {
          const result = await guard(request, info);
          return result instanceof Response ? result : Response.json({ subject: result.auth.token?.subject });
        }),
      );
      servers.push(server);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const { port } = server.address() as AddressInfo;
      return { base: `http://127.0.0.1:${port}`, port };
    }

    it('reads the peer address from the socket', async () => {
      const { base } = await serve();
      const res = await fetch(`${base}/admin/users`, { headers: bearer(await signToken({ scope: 'admin' })) });
      expect([res.status, await res.json()]).toEqual([200, { subject: 'alice' }]);
    });

    it('sees two Authorization headers sent on the wire', async () => {
      const { port } = await serve();
      const token = await signToken({ scope: 'admin' });
      const status = await new Promise<number | undefined>((resolve, reject) => {
        const req = http.request({ port, host: '127.0.0.1', path: '/admin/users' }, (res) => {
          res.resume();
          resolve(res.statusCode);
        });
        req.setHeader('Authorization', [`Bearer ${token}`, `Bearer ${token}`]);
        req.on('error', reject);
        req.end();
      });
      expect(status).toBe(400);
    });

    it('keeps a //host-looking target as a path', async () => {
      const { port } = await serve();
      const token = await signToken({ scope: 'orders:read' });
      const status = await new Promise<number | undefined>((resolve, reject) => {
        const req = http.request({ port, host: '127.0.0.1', path: '//admin/users', headers: bearer(token) }, (res) => {
          res.resume();
          resolve(res.statusCode);
        });
        req.on('error', reject);
        req.end();
      });
      // /admin/** applies (403 for a token without admin), not a path on a host named "admin".
      expect(status).toBe(403);
    });
  });
});
