// Regression (security review, adapters): with `routerOptions.useSemicolonDelimiter: true` find-my-way cuts the path at
// the first `;` (as it does at `?`), the guard did not: /admin;x=1 reached the /admin route but missed the /admin rule,
// and a laxer rule let it through. The adapter now cuts the path for the guard where the router does.
import { describe, expect, it } from 'vitest';
import Fastify, { type FastifyServerOptions } from 'fastify';
import * as fastifyAdapter from '../../src/adapters/fastify.js';
import { cutAtSemicolon } from '../../src/adapters/fastify-routing.js';
import { basePolicy, signToken } from '../helpers/tokens.js';
import type { AddressInfo } from 'node:net';
import { get } from '../helpers/raw-http.js';

async function app(options: FastifyServerOptions) {
  const a = Fastify(options);
  await a.register(
    fastifyAdapter.tokenGuard,
    await basePolicy({
      rules: [
        { path: '/admin', scopes: ['admin'] },
        { path: '/**', scopes: ['orders:read'] },
      ],
    }),
  );
  a.get('/admin', async () => ({ admin: 'secret admin page' }));
  a.get('/orders', async () => ({ orders: [] }));
  return a;
}

const bearer = async (scope: string) => ({ authorization: `Bearer ${await signToken({ scope })}` });

describe('regression: Fastify with useSemicolonDelimiter', () => {
  // The top-level option is Fastify's older (deprecated) spelling of the same setting.
  for (const options of [{ routerOptions: { useSemicolonDelimiter: true } }, { useSemicolonDelimiter: true }] as FastifyServerOptions[]) {
    it(`refuses /admin;x=1 to a token without admin (${JSON.stringify(options)})`, async () => {
      const a = await app(options);
      const reader = await bearer('orders:read');
      for (const url of ['/admin;x=1', '/admin;', '/admin;x=1?y=2']) {
        const res = await a.inject({ method: 'GET', url, headers: reader });
        expect([url, res.statusCode, res.json().reason]).toEqual([url, 403, 'scope.insufficient']);
      }
      const admin = await a.inject({ method: 'GET', url: '/admin;jsessionid=1', headers: await bearer('admin') });
      expect([admin.statusCode, admin.json()]).toEqual([200, { admin: 'secret admin page' }]);
      // A `;` in the query string only is the query's business.
      expect((await a.inject({ method: 'GET', url: '/orders?a=1;b=2', headers: reader })).statusCode).toBe(200);
      await a.close();
    });
  }

  it('over raw HTTP too (no client normalises the target)', async () => {
    const a = await app({ routerOptions: { useSemicolonDelimiter: true } } as FastifyServerOptions);
    await a.listen({ port: 0, host: '127.0.0.1' });
    const { port } = a.server.address() as AddressInfo;
    try {
      const attack = await get(port, '/admin;x=1', await bearer('orders:read'));
      expect(attack.split('\r\n')[0]).toBe('HTTP/1.1 403 Forbidden');
      const legit = await get(port, '/admin;x=1', await bearer('admin'));
      expect(legit.split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
    } finally {
      await a.close();
    }
  });

  it('requireScopes reads the path as the hook does: /admin;x=1 keeps the enforced /admin rule under a report-only policy', async () => {
    const a = Fastify({ routerOptions: { useSemicolonDelimiter: true } } as FastifyServerOptions);
    await a.register(fastifyAdapter.tokenGuard, await basePolicy({ mode: 'report-only', rules: [{ path: '/admin', mode: 'enforce' }] }));
    a.get('/admin', { preHandler: fastifyAdapter.requireScopes('admin') }, async () => ({ admin: 'secret admin page' }));
    const reader = await bearer('orders:read');
    for (const url of ['/admin', '/admin;x=1']) {
      const res = await a.inject({ method: 'GET', url, headers: reader });
      expect([url, res.statusCode, res.json().reason]).toEqual([url, 403, 'scope.insufficient']);
    }
    await a.close();
  });

  it('without the option, /admin;x=1 is no route of the app, and the guard reads it whole', async () => {
    const a = await app({});
    const res = await a.inject({ method: 'GET', url: '/admin;x=1', headers: await bearer('orders:read') });
    expect(res.statusCode).toBe(404);
    await a.close();
  });
});

describe('cutAtSemicolon', () => {
  it('cuts at the first ; before any ? or #, as find-my-way does, and leaves anything else as it is', () => {
    expect(cutAtSemicolon('/admin;x=1')).toBe('/admin');
    expect(cutAtSemicolon('/a;b;c?d')).toBe('/a');
    expect(cutAtSemicolon('/a?b;c')).toBe('/a?b;c');
    expect(cutAtSemicolon('/a#b;c')).toBe('/a#b;c');
    expect(cutAtSemicolon('/a%3Bb')).toBe('/a%3Bb');
    const plain = '/orders/1';
    expect(cutAtSemicolon(plain)).toBe(plain);
  });
});
