// Type-level tests of token-guard/adapter-kit: what a custom adapter's author codes against.
import { describe, expectTypeOf, it } from 'vitest';
import type { IncomingMessage } from 'node:http';
import * as kit from '../../src/adapters/kit.js';
import type { AuthResult, Decision, Guard, GuardRequest } from '../../src/index.js';

declare const req: IncomingMessage;
declare const decision: Decision;
declare const guard: Guard;

describe('adapter-kit', () => {
  it('builds GuardRequests from Node and web requests', () => {
    expectTypeOf(kit.nodeGuardRequest(req, req.url)).toEqualTypeOf<GuardRequest>();
    expectTypeOf(kit.webGuardRequest(new Request('https://api.example.test/'), { remoteAddress: '203.0.113.9' })).toEqualTypeOf<GuardRequest>();
  });

  it('narrows an outcome by its action', () => {
    const outcome = kit.outcomeOf(decision, 'respond');
    if (outcome.action === 'respond') expectTypeOf(outcome.response).toEqualTypeOf<kit.DenialResponse>();
    if (outcome.action === 'throw') expectTypeOf(outcome.error).toEqualTypeOf<kit.AccessDeniedError>();
    if (outcome.action === 'next') expectTypeOf(outcome.headers).toEqualTypeOf<Record<string, string>>();
    expectTypeOf(kit.authOf(decision)).toEqualTypeOf<AuthResult>();
  });

  it('tells a synchronous decision from a pending one', () => {
    const d = guard.decide(kit.nodeGuardRequest(req, req.url));
    expectTypeOf(d).toEqualTypeOf<Decision | Promise<Decision>>();
    if (!kit.isPromiseLike(d)) expectTypeOf(d).toEqualTypeOf<Decision>();
  });

  it('refuses an errors option other than respond or throw', () => {
    // @ts-expect-error errors is 'respond' | 'throw'
    kit.resolveGuard(guard, { errors: 'log' });
  });
});
