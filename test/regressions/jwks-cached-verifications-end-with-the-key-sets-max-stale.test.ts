// Regression (IdP review, item 2): a verified JWT was remembered for cacheMaxAge from when it was verified, whatever
// was left of the key set it was checked against. With the IdP down, a token first verified just before the stale set's
// maxStale ended kept passing from the cache for up to another cacheMaxAge, while a new token got 503 idp.unavailable:
// a key the IdP had withdrawn outlived the documented cacheMaxAge + maxStale. The cached verification now ends with it.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createGuard, MemoryStore, type Duration, type Guard } from '../../src/index.js';
import { fakeDateEachTest } from '../helpers/fake-date.js';
import { closeJwksServers, startJwksServer } from '../helpers/jwks-server.js';
import { AUDIENCE, ISSUER, NOW, signToken, testKeys } from '../helpers/tokens.js';
import { ORDERS_RULES, bearer, expectAllowed, expectRefused } from '../tokens/fixtures.js';

function remoteGuard(jwksUri: string, maxStale: Duration): Guard {
  return createGuard({
    jwt: { issuer: ISSUER, audience: AUDIENCE, algorithms: ['RS256'], jwksUri, jwks: { cooldown: '30s', cacheMaxAge: '10m', maxStale, timeout: '10s' } },
    store: new MemoryStore(),
    rules: ORDERS_RULES,
  });
}

let counter = 0;
const token = () => signToken({ scope: 'orders:read', jti: `s-${++counter}` }, { exp: Math.floor(NOW.getTime() / 1000) + 86_400 });

/** A request `ms` after NOW, with the wall clock (the key set's fetch times) moved there too. */
const at = (t: string, ms: number) => {
  vi.setSystemTime(NOW.getTime() + ms);
  return bearer(t, { now: new Date(NOW.getTime() + ms) });
};

const MIN = 60_000;

fakeDateEachTest(NOW);
afterEach(closeJwksServers);

describe('a verification cached while the IdP is down', () => {
  it.each([
    ['5m', 15 * MIN],
    [0, 10 * MIN],
  ] as const)('with maxStale %s, ends when the key set stops verifying, and the token gets 503 like a new one', async (maxStale, deadlineMs) => {
    const server = await startJwksServer([(await testKeys()).rsaPublicJwk]);
    const guard = remoteGuard(server.url, maxStale);
    expectAllowed(await guard.evaluate(at(await token(), 0)));

    server.answer = 'unavailable';
    const late = await token();
    expectAllowed(await guard.evaluate(at(late, deadlineMs - MIN))); // first seen a minute before the set's deadline
    expectAllowed(await guard.evaluate(at(late, deadlineMs - 1))); // from the cache
    expectRefused(await guard.evaluate(at(await token(), deadlineMs)), 'idp.unavailable');
    const replayed = await guard.evaluate(at(late, deadlineMs));
    expectRefused(replayed, 'idp.unavailable');
    expect(replayed.detail).toMatch(/unavailable for longer than maxStale/);

    // Once the IdP answers again (after the retry backoff) the token verifies again.
    server.answer = 'jwks';
    expectAllowed(await guard.evaluate(at(late, deadlineMs + MIN)));
  });
});
