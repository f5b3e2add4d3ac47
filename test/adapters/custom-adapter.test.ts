// The "Write your own adapter" example of docs/adapters.md (examples/custom-adapter/node-http.ts), built on
// token-guard/adapter-kit only, run over a real socket: it answers like the shipped adapters do.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { guarded } from '../../examples/custom-adapter/node-http.js';
import { AccessDeniedError, resolveGuard, scopesFromArgs } from '../../src/adapters/kit.js';
import { basePolicy, signToken } from '../helpers/tokens.js';
import { createGuard, UsageError } from '../../src/index.js';

const root = path.resolve(import.meta.dirname, '../..');

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request over a real socket; `authorization` as an array sends the header once per value. */
function get(port: number, target: string, authorization?: string | string[]): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: target, method: 'GET' }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    if (authorization !== undefined) req.setHeader('Authorization', authorization);
    req.on('error', reject);
    req.end();
  });
}

async function listen(handler: http.RequestListener): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer(handler).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return { server, port: (server.address() as AddressInfo).port };
}

describe('a node:http adapter written with token-guard/adapter-kit', () => {
  let server: http.Server;
  let port: number;
  const thrown: unknown[] = [];
  let throwingServer: http.Server;
  let throwingPort: number;

  beforeAll(async () => {
    const app = guarded(await basePolicy(), (_req, res, auth) => {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ subject: auth.token?.subject, reason: auth.decision.reason }));
    });
    ({ server, port } = await listen(app));
    const throwing = guarded(
      { ...(await basePolicy()), errors: 'throw' },
      (_req, res) => res.end('handler'),
      (res, err) => {
        thrown.push(err);
        res.writeHead(418).end();
      },
    );
    ({ server: throwingServer, port: throwingPort } = await listen(throwing));
  });

  afterAll(() => {
    server?.close();
    throwingServer?.close();
  });

  it('lets an allowed request through with the auth result', async () => {
    const res = await get(port, '/orders/1', `Bearer ${await signToken({ scope: 'orders:read' })}`);
    expect([res.status, JSON.parse(res.body)]).toEqual([200, { subject: 'alice', reason: 'ok' }]);
  });

  it('answers a request without a token 401 with a challenge and a problem+json body', async () => {
    const res = await get(port, '/orders/1');
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(res.headers['content-type']).toBe('application/problem+json');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(JSON.parse(res.body)).toEqual({ type: 'urn:token-guard:problem:token.missing', title: expect.any(String), status: 401, reason: 'token.missing' });
  });

  it("answers a token without the rule's scope 403 with an insufficient_scope challenge", async () => {
    const res = await get(port, '/orders/1', `Bearer ${await signToken({ scope: 'profile' })}`);
    expect([res.status, JSON.parse(res.body).reason]).toEqual([403, 'scope.insufficient']);
    expect(res.headers['www-authenticate']).toContain('error="insufficient_scope", scope="orders:read"');
  });

  it('answers two Authorization headers 400, never as the first one', async () => {
    const token = await signToken({ scope: 'orders:read' });
    const res = await get(port, '/orders/1', [`Bearer ${token}`, 'Bearer other']);
    expect([res.status, JSON.parse(res.body).reason]).toEqual([400, 'request.malformed']);
  });

  it("hands an AccessDeniedError to the error path with errors: 'throw'", async () => {
    const res = await get(throwingPort, '/orders/1');
    expect(res.status).toBe(418);
    expect(thrown).toHaveLength(1);
    expect(thrown[0]).toBeInstanceOf(AccessDeniedError);
    expect(thrown[0]).toMatchObject({ code: 'token.missing', status: 401, expose: true, headers: { 'WWW-Authenticate': expect.stringMatching(/^Bearer/) } });
  });

  it('is the code docs/adapters.md shows', () => {
    const example = readFileSync(path.join(root, 'examples/custom-adapter/node-http.ts'), 'utf8').trim();
    expect(readFileSync(path.join(root, 'docs/adapters.md'), 'utf8')).toContain(example);
  });
});

describe('adapter-kit option checks', () => {
  it('refuses a bad errors option with a coded UsageError (a TypeError) at start-up', async () => {
    const policy = await basePolicy();
    expect(() => resolveGuard({ ...policy, errors: 'log' as never })).toThrow(expect.objectContaining({ name: 'UsageError', code: 'adapter.options_invalid' }));
    expect(() => resolveGuard({ ...policy, errors: 'log' as never })).toThrow(TypeError);
    expect(() => resolveGuard({ ...policy, errors: 'log' as never })).toThrow(UsageError);
    expect(() => resolveGuard(42 as never)).toThrow(expect.objectContaining({ code: 'adapter.options_invalid' }));
  });

  it('refuses a hand-made guard without decide() at start-up rather than failing every request', async () => {
    const { decide: _decide, ...withoutDecide } = createGuard(await basePolicy());
    expect(() => resolveGuard(withoutDecide as never)).toThrow(expect.objectContaining({ code: 'adapter.options_invalid' }));
  });

  it('refuses requireScopes arguments that are not scopes with a coded TypeError', () => {
    expect(() => scopesFromArgs([])).toThrow(expect.objectContaining({ name: 'UsageError', code: 'adapter.scopes_invalid' }));
    expect(() => scopesFromArgs(['has space'])).toThrow(expect.objectContaining({ code: 'adapter.scopes_invalid' }));
    expect(() => scopesFromArgs([{ any: [] }])).toThrow(expect.objectContaining({ code: 'adapter.scopes_invalid' }));
    // A misspelt key would require nothing and let every token through.
    expect(() => scopesFromArgs([{ all: ['orders:read'], anyOf: ['admin'] } as never])).toThrow(expect.objectContaining({ code: 'adapter.scopes_invalid' }));
    expect(() => scopesFromArgs([{ oneOf: ['admin'] } as never])).toThrow(expect.objectContaining({ code: 'adapter.scopes_invalid' }));
    expect(() => scopesFromArgs([{ all: [], any: ['admin'] }])).toThrow(expect.objectContaining({ code: 'adapter.scopes_invalid' }));
    expect(scopesFromArgs([{ any: ['admin', 'audit'] }])).toEqual({ any: ['admin', 'audit'] });
    expect(scopesFromArgs(['a', 'b'])).toEqual(['a', 'b']);
  });
});
