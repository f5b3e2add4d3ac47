// Regression (IdP review, item 1): after the IdP rotated to a new key, the first token naming its kid started a JWK Set
// refetch and passed, but tokens with that kid arriving while the refetch was still under way were refused 401
// token.invalid: they were checked against the set being replaced, and the cooldown (counted from when the refetch
// started) kept them from starting another. They now wait for the refetch under way and are checked against its set;
// a burst of made-up kids still costs that one fetch.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { exportJWK, generateKeyPair } from 'jose';
import { createGuard, MemoryStore, type Guard } from '../../src/index.js';
import { fakeDateEachTest } from '../helpers/fake-date.js';
import { closeJwksServers, startJwksServer } from '../helpers/jwks-server.js';
import { AUDIENCE, ISSUER, NOW, signToken, testKeys } from '../helpers/tokens.js';
import { ORDERS_RULES, bearer, expectAllowed, expectRefused } from '../tokens/fixtures.js';

function remoteGuard(jwksUri: string): Guard {
  return createGuard({
    jwt: { issuer: ISSUER, audience: AUDIENCE, algorithms: ['RS256'], jwksUri, jwks: { cooldown: '30s', cacheMaxAge: '10m', timeout: '10s' } },
    store: new MemoryStore(),
    rules: ORDERS_RULES,
  });
}

let counter = 0;
const token = (opts: Parameters<typeof signToken>[1] = {}) => signToken({ scope: 'orders:read', jti: `w-${++counter}` }, opts);

/** A GET /orders/1 carrying `token`, at the (faked) wall clock's time. */
const request = (t: string) => bearer(t, { now: new Date() });

/** Lets every request already started run until it waits on I/O: with the refetch held, that is as far as they get. */
const untilIdle = () => new Promise<void>((resolve) => setImmediate(resolve));

// Cooldown and key-set age are measured on Date.now; timers (the fetch timeout) stay real.
fakeDateEachTest(NOW);
afterEach(closeJwksServers);

describe('tokens signed with a newly rotated key while the refetch it started is under way', () => {
  it('are checked against the refetched set instead of refused, and made-up kids among them still cost no fetch of their own', async () => {
    const k = await testKeys();
    const rotated = await generateKeyPair('RS256', { extractable: true });
    const server = await startJwksServer([k.rsaPublicJwk]);
    const guard = remoteGuard(server.url);
    expectAllowed(await guard.evaluate(request(await token())));
    expect(server.jwksHits()).toBe(1);

    // The IdP publishes rsa-2 and signs with it at once; its JWK Set endpoint is slow to answer.
    server.keys = [k.rsaPublicJwk, { ...(await exportJWK(rotated.publicKey)), kid: 'rsa-2', alg: 'RS256', use: 'sig' }];
    vi.setSystemTime(NOW.getTime() + 31_000);
    const tokens = await Promise.all(Array.from({ length: 4 }, () => token({ key: rotated.privateKey, kid: 'rsa-2' })));
    const forged = await Promise.all(Array.from({ length: 200 }, (_, i) => token({ key: k.otherRsaPrivate, kid: `made-up-${i}` })));
    const requested = server.hold();
    const first = guard.evaluate(request(tokens[0] as string));
    await requested;
    const others = tokens.slice(1).map((t) => guard.evaluate(request(t)));
    const madeUp = forged.map((t) => guard.evaluate(request(t)));
    await untilIdle();
    server.release();

    expectAllowed(await first);
    for (const d of await Promise.all(others)) expectAllowed(d);
    for (const d of await Promise.all(madeUp)) expectRefused(d, 'token.invalid');
    expect(server.jwksHits()).toBe(2);
    // Within the cooldown of that refetch a further unknown kid is refused without a fetch, as before.
    vi.setSystemTime(NOW.getTime() + 45_000);
    expectRefused(await guard.evaluate(request(await token({ key: k.otherRsaPrivate, kid: 'made-up-late' }))), 'token.invalid');
    expect(server.jwksHits()).toBe(2);
  });
});
