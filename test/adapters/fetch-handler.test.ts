// The fetch adapter's wrapper form, guard.handler(fn): the guard answers refusals itself, so a handler is
// only ever called for a request that may go through (a forgotten await or check cannot open a route).
import { describe, expect, it, vi } from 'vitest';
import { guardFetch, requireScopes } from '../../src/adapters/fetch.js';
import { AccessDeniedError } from '../../src/index.js';
import { basePolicy, signToken } from '../helpers/tokens.js';

const url = (path: string) => `https://api.example.test${path}`;
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

describe('guardFetch(policy).handler(fn)', () => {
  it('calls the handler with the request and its auth, and adds the pass headers to its response', async () => {
    const guard = guardFetch(await basePolicy({ rateLimit: { limit: 5, window: '1m' } }));
    const handle = guard.handler((request, auth) => Response.json({ path: new URL(request.url).pathname, subject: auth.token?.subject }));
    const res = await handle(new Request(url('/orders/1'), { headers: bearer(await signToken({ scope: 'orders:read' })) }));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ path: '/orders/1', subject: 'alice' });
    expect(res.headers.get('ratelimit-remaining')).toBe('4');
  });

  it('answers a refusal itself with problem+json and never calls the handler', async () => {
    const fn = vi.fn(() => new Response('secret'));
    const handle = guardFetch(await basePolicy()).handler(fn);
    const res = await handle(new Request(url('/orders/1')));
    expect([res.status, res.headers.get('content-type'), res.headers.get('www-authenticate')]).toEqual([401, 'application/problem+json', 'Bearer']);
    expect(await res.json()).toMatchObject({ reason: 'token.missing', status: 401 });
    expect(fn).not.toHaveBeenCalled();
  });

  it('passes extra arguments through (a route context, a server) and reads connection info from them', async () => {
    const guard = guardFetch(await basePolicy({ ip: { allow: ['10.0.0.0/8'] } }));
    const server = { requestIP: () => ({ address: '10.1.2.3' }) };
    const handle = guard.handler(
      async (_request, auth, ctx: { params: Promise<{ id: string }> }, srv: typeof server) =>
        Response.json({ id: (await ctx.params).id, sameServer: srv === server, ip: auth.decision.reason }),
      { info: (_request, _ctx, srv) => ({ remoteAddress: srv.requestIP().address }) },
    );
    const token = await signToken({ scope: 'orders:read' });
    const res = await handle(new Request(url('/orders/7'), { headers: bearer(token) }), { params: Promise.resolve({ id: '7' }) }, server);
    expect(await res.json()).toEqual({ id: '7', sameServer: true, ip: 'ok' });
    const outside = guard.handler(() => new Response('in'), { info: () => ({ remoteAddress: '203.0.113.9' }) });
    expect((await outside(new Request(url('/orders/7'), { headers: bearer(token) }))).status).toBe(403);
  });

  it('copies a response whose headers are immutable before adding the pass headers', async () => {
    const guard = guardFetch(await basePolicy({ rateLimit: { limit: 5, window: '1m' } }));
    const handle = guard.handler(() => Response.redirect(url('/elsewhere'), 302));
    const res = await handle(new Request(url('/orders/1'), { headers: bearer(await signToken({ scope: 'orders:read' })) }));
    expect([res.status, res.headers.get('location'), res.headers.get('ratelimit-limit')]).toEqual([302, url('/elsewhere'), '5']);
  });

  it("hands a handler's network error (Response.error()) on as it is, rather than throwing while adding headers", async () => {
    const guard = guardFetch(await basePolicy({ rateLimit: { limit: 5, window: '1m' } }));
    const res = await guard.handler(() => Response.error())(new Request(url('/orders/1'), { headers: bearer(await signToken({ scope: 'orders:read' })) }));
    expect([res.type, res.status]).toEqual(['error', 0]);
  });

  it('lets requireScopes work inside the handler', async () => {
    const guard = guardFetch(await basePolicy({ unmatched: 'authenticate' }));
    const writeOnly = requireScopes('orders:write');
    const handle = guard.handler((request) => {
      const scoped = writeOnly(request);
      return scoped instanceof Response ? scoped : new Response('written');
    });
    const res = await handle(new Request(url('/things/1'), { headers: bearer(await signToken({ scope: 'orders:read' })) }));
    expect(res.status).toBe(403);
  });

  it("rejects with an AccessDeniedError under errors: 'throw'", async () => {
    const handle = guardFetch({ ...(await basePolicy()), errors: 'throw' }).handler(() => new Response('in'));
    await expect(handle(new Request(url('/orders/1')))).rejects.toBeInstanceOf(AccessDeniedError);
  });

  it('refuses a handler that is not a function at start-up', async () => {
    const guard = guardFetch(await basePolicy());
    expect(() => guard.handler('nope' as never)).toThrow(TypeError);
  });
});
