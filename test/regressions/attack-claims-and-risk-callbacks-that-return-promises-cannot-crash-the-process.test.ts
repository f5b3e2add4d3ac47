// Regression (attack on the per-rule checks): a claims predicate or a custom risk signal that answers with a promise
// (an `async` function, or a plain one returning `lookup(claims)`) was refused, but a rejection of that promise was left
// unhandled, and Node's default --unhandled-rejections=throw ended the process: any client whose token made the
// callback throw (a token without the claim it reads) took the server down. An async callback also refused every
// request without a word at start-up. Now async callbacks are a PolicyError, and a promise returned anyway refuses
// with its rejection handled.
import { describe, expect, it } from 'vitest';
import express from 'express';
import request from 'supertest';
import { tokenGuard } from '../../src/adapters/express.js';
import { createGuard, MemoryStore, PolicyError, type ClaimsPredicate, type RiskSignal, type TokenGuardPolicy } from '../../src/index.js';
import { afterRejectionsAreReported, collectUnhandledRejections } from '../helpers/unhandled.js';
import { basePolicy, signToken } from '../helpers/tokens.js';

const unhandled = collectUnhandledRejections();

async function issuesOf(overrides: Partial<TokenGuardPolicy>): Promise<string[]> {
  try {
    createGuard(await basePolicy(overrides));
  } catch (err) {
    expect(err).toBeInstanceOf(PolicyError);
    return (err as PolicyError).issues.map((i) => `${i.path}: ${i.message}`);
  }
  return [];
}

async function app(overrides: Partial<TokenGuardPolicy>) {
  const a = express();
  a.use(tokenGuard(await basePolicy({ store: new MemoryStore(), unmatched: 'authenticate', ...overrides })));
  a.get('/orders/:id', (_req, res) => {
    res.json({ ok: true });
  });
  return a;
}

// What a JavaScript user writes when the check needs a lookup: a throw for a token without `org` becomes a rejection.
const readsOrg = (claims: Readonly<Record<string, unknown>>) => (claims['org'] as { id: string }).id === 'acme';

describe('regression: claims predicates and risk signals that answer with a promise', () => {
  it('refuses an async claims predicate (policy and rule) and an async risk signal at start-up, naming the path', async () => {
    const asyncPredicate = (async (claims: Readonly<Record<string, unknown>>) => readsOrg(claims)) as unknown as ClaimsPredicate;
    expect(await issuesOf({ claims: asyncPredicate })).toEqual([expect.stringMatching(/^claims: an async predicate answers with a promise, never true/)]);
    expect(await issuesOf({ rules: [{ path: '/orders/**', claims: asyncPredicate }] })).toEqual([expect.stringMatching(/^rules\[0\]\.claims: an async predicate/)]);
    const asyncSignal = (async () => 10) as unknown as RiskSignal;
    expect(await issuesOf({ risk: { custom: { geo: asyncSignal }, denyAt: 50 } })).toEqual([
      expect.stringMatching(/^risk\.custom\.geo: an async signal answers with a promise/),
    ]);
  });

  it('answers 403 claims.mismatch over HTTP when a plain predicate returns a promise, and leaves no rejection unhandled', async () => {
    const predicate = ((claims: Readonly<Record<string, unknown>>) => Promise.resolve().then(() => readsOrg(claims))) as unknown as ClaimsPredicate;
    const server = await app({ claims: predicate });
    for (const claims of [{ org: { id: 'acme' } }, { sub: 'mallory' }]) {
      const res = await request(server)
        .get('/orders/1')
        .set('authorization', `Bearer ${await signToken({ scope: 'orders:read', ...claims })}`);
      expect([res.status, res.body.reason]).toEqual([403, 'claims.mismatch']);
      expect(JSON.stringify(res.body)).not.toMatch(/org|TypeError|at /);
    }
    await afterRejectionsAreReported();
    expect(unhandled).toEqual([]);
  });

  it('says why in the decision detail, and treats a throwing `then` as a throw', async () => {
    const guard = createGuard(
      await basePolicy({
        store: new MemoryStore(),
        unmatched: 'authenticate',
        rules: [
          { path: '/promise/**', claims: (() => Promise.reject(new Error('lookup failed'))) as unknown as ClaimsPredicate },
          {
            path: '/thenable/**',
            claims: (() => ({
              get then() {
                throw new Error('then getter');
              },
            })) as unknown as ClaimsPredicate,
          },
        ],
      }),
    );
    const headers = { authorization: `Bearer ${await signToken({ scope: 'orders:read' })}` };
    const promised = await guard.evaluate({ method: 'GET', path: '/promise/1', headers, remoteAddress: '203.0.113.9' });
    expect([promised.status, promised.reason, promised.detail]).toEqual([403, 'claims.mismatch', 'claims predicate returned a promise (predicates must be synchronous)']);
    const thenable = await guard.evaluate({ method: 'GET', path: '/thenable/1', headers, remoteAddress: '203.0.113.9' });
    expect([thenable.status, thenable.reason, thenable.detail]).toEqual([403, 'claims.mismatch', 'claims predicate threw']);
    await afterRejectionsAreReported();
    expect(unhandled).toEqual([]);
  });

  it('answers 403 risk.denied over HTTP when a plain risk signal returns a rejected promise or an unprintable value, never 503 or a crash', async () => {
    const rejects = ((ctx: { token: { claims?: Readonly<Record<string, unknown>> } }) =>
      Promise.resolve().then(() => (readsOrg(ctx.token.claims ?? {}) ? 0 : 100))) as unknown as RiskSignal;
    const bare = (() => Object.create(null)) as unknown as RiskSignal;
    for (const signal of [rejects, bare]) {
      const server = await app({ risk: { custom: { geo: signal }, denyAt: 50 } });
      const res = await request(server)
        .get('/orders/1')
        .set('authorization', `Bearer ${await signToken({ scope: 'orders:read' })}`);
      expect([res.status, res.body.reason]).toEqual([403, 'risk.denied']);
    }
    await afterRejectionsAreReported();
    expect(unhandled).toEqual([]);
  });
});
