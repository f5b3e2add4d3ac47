// An `async` claims predicate or risk signal is refused at start-up, but only a native async function can be told
// apart there: TypeScript compiling to ES2015/ES2016 (or Babel) turns `async (claims) => …` into a plain function
// returning `__awaiter(…)`, a Promise. Such a callback is accepted at creation and caught when called: these tests pin
// that the promise it returns refuses the request (never allows it, whatever it would resolve to) and that its
// rejection is handled, never left to end the process.
import { describe, expect, it } from 'vitest';
import express from 'express';
import request from 'supertest';
import { tokenGuard } from '../../src/adapters/express.js';
import { createGuard, MemoryStore, type ClaimsPredicate, type GuardRequest, type RiskSignal, type TokenGuardPolicy } from '../../src/index.js';
import { afterRejectionsAreReported, collectUnhandledRejections } from '../helpers/unhandled.js';
import { basePolicy, NOW, signToken } from '../helpers/tokens.js';

const unhandled = collectUnhandledRejections();

/** What TypeScript's `__awaiter` helper does for an `async` function compiled to ES2015: a generator driven by a Promise. */
function awaiter<T>(generator: Generator<unknown, T, unknown>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const step = (result: IteratorResult<unknown, T>): void => {
      if (result.done) resolve(result.value);
      else Promise.resolve(result.value).then(fulfilled, rejected);
    };
    function fulfilled(value: unknown): void {
      try {
        step(generator.next(value));
      } catch (e) {
        reject(e);
      }
    }
    function rejected(value: unknown): void {
      try {
        step(generator.throw(value));
      } catch (e) {
        reject(e);
      }
    }
    fulfilled(undefined);
  });
}

/** `async (claims) => { await lookup(); return claims.org.id === 'acme' }` as compiled to ES2015: throws (rejects) without `org`. */
const transpiledPredicate = ((claims: Readonly<Record<string, unknown>>) =>
  awaiter(
    (function* () {
      yield Promise.resolve();
      return (claims['org'] as { id: string }).id === 'acme';
    })(),
  )) as unknown as ClaimsPredicate;

/** `async (ctx) => { await lookup(); return ctx.token.claims.org.id === 'acme' ? 0 : 100 }` as compiled to ES2015. */
const transpiledSignal = ((ctx: { token: { claims?: Readonly<Record<string, unknown>> } }) =>
  awaiter(
    (function* () {
      yield Promise.resolve();
      // Throws for a token without `org`: the promise rejects.
      const org = ctx.token.claims?.['org'] as { id: string };
      return org.id === 'acme' ? 0 : 100;
    })(),
  )) as unknown as RiskSignal;

const get = (path: string, token: string): GuardRequest => ({ method: 'GET', path, headers: { authorization: `Bearer ${token}` }, remoteAddress: '203.0.113.9', now: NOW });
// The org a predicate would let in (resolves true; a signal resolves 0), and a token whose lookup throws (rejects).
const tokens = () => Promise.all([signToken({ scope: 'orders:read', org: { id: 'acme' } }), signToken({ scope: 'orders:read' })]);

async function guardWith(overrides: Partial<TokenGuardPolicy>) {
  return createGuard(await basePolicy({ store: new MemoryStore(), unmatched: 'authenticate', ...overrides }));
}

describe('claims predicates and risk signals compiled from async functions', () => {
  it('are accepted at creation: only a native async function is told apart there', async () => {
    await expect(guardWith({ claims: transpiledPredicate, risk: { custom: { geo: transpiledSignal }, denyAt: 50 } })).resolves.toBeDefined();
  });

  it('refuse with 403 claims.mismatch, at policy and rule level, even when the promise would resolve true, and leave no rejection unhandled', async () => {
    for (const overrides of [{ claims: transpiledPredicate }, { rules: [{ path: '/orders/**', claims: transpiledPredicate }] }]) {
      const guard = await guardWith(overrides);
      for (const token of await tokens()) {
        const d = await guard.evaluate(get('/orders/1', token));
        expect([d.effect, d.status, d.reason, d.detail]).toEqual(['deny', 403, 'claims.mismatch', 'claims predicate returned a promise (predicates must be synchronous)']);
      }
    }
    await afterRejectionsAreReported();
    expect(unhandled).toEqual([]);
  });

  it('refuse with 403 risk.denied, with or without thresholds, even when the promise would resolve 0, and leave no rejection unhandled', async () => {
    for (const risk of [{ custom: { geo: transpiledSignal }, denyAt: 50 }, { custom: { geo: transpiledSignal }, stepUpAt: 50 }, { custom: { geo: transpiledSignal } }]) {
      const guard = await guardWith({ risk });
      for (const token of await tokens()) {
        const d = await guard.evaluate(get('/orders/1', token));
        expect([d.effect, d.status, d.reason, d.detail]).toEqual(['deny', 403, 'risk.denied', 'risk signal "geo" failed']);
      }
    }
    await afterRejectionsAreReported();
    expect(unhandled).toEqual([]);
  });

  it('answer 403 over HTTP and keep the server up for the next request', async () => {
    const app = express();
    app.use(tokenGuard(await basePolicy({ store: new MemoryStore(), unmatched: 'authenticate', claims: transpiledPredicate, risk: { custom: { geo: transpiledSignal } } })));
    app.get('/orders/:id', (_req, res) => void res.json({ ok: true }));
    for (const token of [...(await tokens()), ...(await tokens())]) {
      const res = await request(app).get('/orders/1').set('authorization', `Bearer ${token}`);
      expect([res.status, res.body.reason]).toEqual([403, 'claims.mismatch']);
    }
    await afterRejectionsAreReported();
    expect(unhandled).toEqual([]);
  });
});
