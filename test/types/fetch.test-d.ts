// Type-level tests for token-guard/fetch: the wrapper form, and a result form that cannot be read unawaited.
import { describe, expectTypeOf, it } from 'vitest';
import * as web from '../../src/adapters/fetch.js';
import type { AuthResult, TokenGuardPolicy } from '../../src/index.js';

declare const policy: TokenGuardPolicy;
declare const request: Request;

describe('guardFetch', () => {
  it('wraps a handler into (request, ...args) => Promise<Response>', () => {
    const guard = web.guardFetch(policy);
    const plain = guard.handler((req, auth) => {
      expectTypeOf(req).toEqualTypeOf<Request>();
      expectTypeOf(auth).toEqualTypeOf<AuthResult>();
      return new Response('ok');
    });
    expectTypeOf(plain).toEqualTypeOf<(request: Request) => Promise<Response>>();
    // Next.js route handler: the route context comes through, typed.
    const next = guard.handler(async (_req, _auth, ctx: { params: Promise<{ id: string }> }) => Response.json({ id: (await ctx.params).id }));
    expectTypeOf(next).toEqualTypeOf<(request: Request, ctx: { params: Promise<{ id: string }> }) => Promise<Response>>();
    // @ts-expect-error a handler must return a Response
    guard.handler(() => ({ ok: true }));
  });

  it('makes reading the result without await a type error', () => {
    const guard = web.guardFetch(policy);
    // @ts-expect-error a Promise has no auth: the forgotten await does not type-check
    if (guard(request).auth) throw new Error('unreachable');
    // @ts-expect-error nor headers
    void guard(request).headers;
    const pending = guard(request);
    if (pending instanceof Response) throw new Error('unreachable');
    // @ts-expect-error narrowing away Response still leaves a Promise
    void pending.auth;
  });
});
