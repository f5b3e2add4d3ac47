// Regression (issue 7, item 7): `jwt.jwks.cacheMaxAge: 0` set the verified-token cache's ttl to 0, which
// lru-cache reads as "never expires": a token stayed accepted after its key was withdrawn from the
// JWKS. Cache entries also aged on lru-cache's own clock only, so a request's clock never expired them.
// `jwks.cooldown: 0` and timer durations beyond 2^31−1 ms (which setTimeout fires at once) were accepted.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { verify } from 'node:crypto';
import { createGuard, MemoryStore, PolicyError, type Duration, type Guard, type TokenGuardPolicy } from '../../src/index.js';
import { fakeDateEachTest } from '../helpers/fake-date.js';
import { closeJwksServers, startJwksServer } from '../helpers/jwks-server.js';
import { AUDIENCE, ISSUER, NOW, NOW_S, jwtPolicy, signToken, testKeys } from '../helpers/tokens.js';
import { ORDERS_RULES, bearer, expectAllowed, expectRefused, jwtGuard } from '../tokens/fixtures.js';

// node:crypto's verify is wrapped (not replaced) so tests can tell a cache hit from a full signature verification
// (the guard checks signatures with node:crypto; the tests' tokens are RS256).
vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:crypto')>();
  return { ...actual, verify: vi.fn(actual.verify) };
});
const verifications = () => vi.mocked(verify).mock.calls.length;

function remoteGuard(jwksUri: string, cacheMaxAge: Duration): Guard {
  return createGuard({
    jwt: { issuer: ISSUER, audience: AUDIENCE, algorithms: ['RS256'], jwksUri, jwks: { cacheMaxAge } },
    store: new MemoryStore(),
    clock: () => NOW,
    rules: ORDERS_RULES,
  });
}

/** The request time and jose's clock (JWKS freshness is measured on Date.now) moved together. */
const at = (ms: number) => {
  vi.setSystemTime(NOW.getTime() + ms);
  return new Date(NOW.getTime() + ms);
};

fakeDateEachTest(NOW);
afterEach(closeJwksServers);

function policyProblems(policy: TokenGuardPolicy): string[] {
  try {
    createGuard(policy);
  } catch (err) {
    expect(err).toBeInstanceOf(PolicyError);
    return (err as PolicyError).issues.map((i) => `${i.path}: ${i.message}`);
  }
  return [];
}

describe('regression: no cache keeps a verified token forever', () => {
  it('re-verifies every token under cacheMaxAge 0, so a token whose key left the JWKS is refused', async () => {
    const { rsaPublicJwk } = await testKeys();
    const jwks = await startJwksServer([rsaPublicJwk]);
    const guard = remoteGuard(jwks.url, 0);
    const token = await signToken({ scope: 'orders:read', jti: 'zero-max-age' }, { exp: NOW_S + 86_400 });
    expectAllowed(await guard.evaluate(bearer(token)));
    jwks.keys = []; // the issuer withdraws the key (compromised)
    expectRefused(await guard.evaluate(bearer(token)), 'token.invalid');
    expectRefused(await guard.evaluate(bearer(token, { now: at(10 * 60_000) })), 'token.invalid');
  });

  it('serves a cached token no longer than cacheMaxAge by the request clock', async () => {
    const { rsaPublicJwk } = await testKeys();
    const jwks = await startJwksServer([rsaPublicJwk]);
    const guard = remoteGuard(jwks.url, '1m');
    const token = await signToken({ scope: 'orders:read', jti: 'one-minute' }, { exp: NOW_S + 86_400 });
    expectAllowed(await guard.evaluate(bearer(token)));
    jwks.keys = [];
    expectAllowed(await guard.evaluate(bearer(token, { now: at(30_000) })));
    expectRefused(await guard.evaluate(bearer(token, { now: at(2 * 60_000) })), 'token.invalid');
  });

  it('re-verifies a long-lived token after the one-hour cap with local keys', async () => {
    const guard = await jwtGuard();
    const token = await signToken({ scope: 'orders:read', jti: 'long-lived' }, { exp: NOW_S + 3 * 86_400 });
    expectAllowed(await guard.evaluate(bearer(token)));
    const before = verifications();
    expectAllowed(await guard.evaluate(bearer(token, { now: at(59 * 60_000) })));
    expect(verifications()).toBe(before);
    expectAllowed(await guard.evaluate(bearer(token, { now: at(61 * 60_000) })));
    expect(verifications()).toBe(before + 1);
  });
});

describe('regression: durations that would mean forever, or never, are refused at start-up', () => {
  it('refuses jwks.cooldown 0 (every unknown kid would refetch the key set)', async () => {
    const problems = policyProblems({ jwt: { ...(await jwtPolicy({ keys: undefined })), jwksUri: 'https://id.example.test/jwks', jwks: { cooldown: 0 } } });
    expect(problems).toEqual(['jwt.jwks.cooldown: expected a duration greater than zero']);
    expect(policyProblems({ jwt: { ...(await jwtPolicy({ keys: undefined })), jwksUri: 'https://id.example.test/jwks', jwks: { cooldown: '0s' } } })).toHaveLength(1);
  });

  it.each([
    ['storeTimeout', { storeTimeout: 2 ** 31 }],
    ['storeTimeout', { storeTimeout: '25d' }],
    ['storeTimeout', { storeTimeout: 0 }],
    ['storeTimeout', { storeTimeout: `${'9'.repeat(400)}ms` }],
  ] as const)('refuses %s %j', async (path, extra) => {
    const problems = policyProblems({ jwt: await jwtPolicy(), ...(extra as Partial<TokenGuardPolicy>) });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^${path}: `));
  });

  it.each<Duration>([2 ** 31, '25d', 0, '0ms'])('refuses jwt.jwks.timeout %j', async (timeout) => {
    const problems = policyProblems({ jwt: { ...(await jwtPolicy({ keys: undefined })), jwksUri: 'https://id.example.test/jwks', jwks: { timeout } } });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^jwt\.jwks\.timeout: /);
  });

  it('refuses a cacheMaxAge too large to be a number', async () => {
    const problems = policyProblems({
      jwt: { ...(await jwtPolicy({ keys: undefined })), jwksUri: 'https://id.example.test/jwks', jwks: { cacheMaxAge: `${'9'.repeat(400)}d` as '1d' } },
    });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^jwt\.jwks\.cacheMaxAge: /);
  });

  it('accepts timer durations up to 2^31−1 ms and cacheMaxAge 0', async () => {
    expect(policyProblems({ jwt: await jwtPolicy(), storeTimeout: 2 ** 31 - 1 })).toEqual([]);
    expect(policyProblems({ jwt: await jwtPolicy(), storeTimeout: '24d' })).toEqual([]);
    const remote = { ...(await jwtPolicy({ keys: undefined })), jwksUri: 'https://id.example.test/jwks' };
    expect(policyProblems({ jwt: { ...remote, jwks: { cooldown: '1s', cacheMaxAge: 0, timeout: 2 ** 31 - 1 } } })).toEqual([]);
  });
});
