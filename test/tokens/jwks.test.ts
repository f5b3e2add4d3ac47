// Remote JWK Sets: a local HTTP server on 127.0.0.1 stands in for the issuer (no outside network).
import { afterEach, describe, expect, it, vi } from 'vitest';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { createGuard, MemoryStore, type Decision, type Guard, type JwtPolicy } from '../../src/index.js';
import { fakeDateEachTest } from '../helpers/fake-date.js';
import { closedPortUrl, closeJwksServers, JWKS_PATH, startJwksServer, type JwksAnswer } from '../helpers/jwks-server.js';
import { AUDIENCE, HMAC_SECRET, ISSUER, NOW, signToken, testKeys } from '../helpers/tokens.js';
import { ORDERS_RULES, bearer, expectAllowed, expectRefused } from './fixtures.js';

function remoteGuard(jwksUri: string, jwt: Partial<JwtPolicy> = {}): Guard {
  return createGuard({
    jwt: { issuer: ISSUER, audience: AUDIENCE, algorithms: ['RS256', 'ES256'], jwksUri, jwks: { cooldown: '30s', cacheMaxAge: '10m', timeout: 2000 }, ...jwt },
    store: new MemoryStore(),
    clock: () => NOW,
    rules: ORDERS_RULES,
  });
}

let tokenCounter = 0;
/** A fresh (never cached) valid access token; jti differs on every call. */
const freshToken = (opts: Parameters<typeof signToken>[1] = {}) => signToken({ scope: 'orders:read', jti: `t-${++tokenCounter}` }, opts);

/** Moves jose's clock (cooldown and cache age are measured on Date.now) without touching timers. */
const advance = (ms: number) => vi.setSystemTime(Date.now() + ms);

const expectUnavailable = (decision: Decision) => {
  expectRefused(decision, 'idp.unavailable');
  expect(decision.headers['WWW-Authenticate']).toBeUndefined();
};

fakeDateEachTest(NOW);
afterEach(closeJwksServers);

describe('verifying against a remote JWK Set', () => {
  it('verifies RS256 and ES256 tokens against the served keys, fetching the set once', async () => {
    const k = await testKeys();
    const server = await startJwksServer([k.rsaPublicJwk, k.ecPublicJwk]);
    const guard = remoteGuard(server.url);
    expectAllowed(await guard.evaluate(bearer(await freshToken())));
    expectAllowed(await guard.evaluate(bearer(await freshToken({ alg: 'ES256' }))));
    expectAllowed(await guard.evaluate(bearer(await freshToken())));
    expect(server.jwksHits()).toBe(1);
  });

  it('refuses a token signed by a key the set does not hold', async () => {
    const k = await testKeys();
    const server = await startJwksServer([k.rsaPublicJwk]);
    const guard = remoteGuard(server.url);
    expectRefused(await guard.evaluate(bearer(await freshToken({ key: k.otherRsaPrivate, kid: 'rsa-1' }))), 'token.invalid');
  });

  it('never uses a symmetric key published in the set, even when the policy allows HS256', async () => {
    const k = await testKeys();
    const published = new TextEncoder().encode('a-symmetric-key-that-leaked-into-the-jwks!!');
    const server = await startJwksServer([k.rsaPublicJwk, { kty: 'oct', kid: 'sym', k: Buffer.from(published).toString('base64url') }]);
    for (const algorithms of [['RS256'], ['RS256', 'HS256']] as const) {
      const guard = remoteGuard(server.url, { algorithms: [...algorithms], ...(algorithms.length === 2 && { secret: HMAC_SECRET }) });
      expectRefused(await guard.evaluate(bearer(await freshToken({ alg: 'HS256', key: published, kid: 'sym' }))), 'token.invalid');
    }
  });

  it('never fetches a key from a jku header the token carries', async () => {
    const k = await testKeys();
    const attacker = await generateKeyPair('RS256', { extractable: true });
    const attackerJwk = { ...(await exportJWK(attacker.publicKey)), kid: 'attacker', alg: 'RS256' };
    const server = await startJwksServer([k.rsaPublicJwk], { '/attacker.json': { keys: [attackerJwk] } });
    const guard = remoteGuard(server.url);
    const jku = server.url.replace(JWKS_PATH, '/attacker.json');
    const token = await freshToken({ key: attacker.privateKey, kid: 'attacker', header: { jku } });
    expectRefused(await guard.evaluate(bearer(token)), 'token.invalid');
    expect(server.paths).not.toContain('/attacker.json');
  });
});

describe('refetching on an unknown kid', () => {
  it('does not refetch for an unknown kid right after the first fetch', async () => {
    const k = await testKeys();
    const server = await startJwksServer([k.rsaPublicJwk]);
    const guard = remoteGuard(server.url);
    for (let i = 0; i < 5; i++) {
      expectRefused(await guard.evaluate(bearer(await freshToken({ key: k.otherRsaPrivate, kid: `unknown-${i}` }))), 'token.invalid');
    }
    expect(server.jwksHits()).toBe(1);
  });

  it('refetches at most once per cooldown however many unknown kids arrive, at once or one by one', async () => {
    const k = await testKeys();
    const server = await startJwksServer([k.rsaPublicJwk]);
    const guard = remoteGuard(server.url);
    expectAllowed(await guard.evaluate(bearer(await freshToken())));
    expect(server.jwksHits()).toBe(1);

    advance(31_000);
    const unknown = await Promise.all(Array.from({ length: 10 }, (_, i) => freshToken({ key: k.otherRsaPrivate, kid: `unknown-${i}` })));
    const burst = await Promise.all(unknown.slice(0, 5).map((t) => guard.evaluate(bearer(t))));
    for (const d of burst) expectRefused(d, 'token.invalid');
    for (const t of unknown.slice(5)) expectRefused(await guard.evaluate(bearer(t)), 'token.invalid');
    expect(server.jwksHits()).toBe(2);

    advance(10_000); // still within the cooldown of the refetch
    expectRefused(await guard.evaluate(bearer(await freshToken({ kid: 'unknown-late' }))), 'token.invalid');
    expect(server.jwksHits()).toBe(2);

    advance(21_000);
    expectRefused(await guard.evaluate(bearer(await freshToken({ kid: 'unknown-later' }))), 'token.invalid');
    expect(server.jwksHits()).toBe(3);
  });

  it('picks up a rotated key once the cooldown allows a refetch', async () => {
    const k = await testKeys();
    const next = await generateKeyPair('RS256', { extractable: true });
    const nextJwk = { ...(await exportJWK(next.publicKey)), kid: 'rsa-2', alg: 'RS256' };
    const server = await startJwksServer([k.rsaPublicJwk]);
    const guard = remoteGuard(server.url);
    expectAllowed(await guard.evaluate(bearer(await freshToken())));

    server.keys = [nextJwk];
    advance(10_000);
    const rotated = await freshToken({ key: next.privateKey, kid: 'rsa-2' });
    expectRefused(await guard.evaluate(bearer(rotated)), 'token.invalid'); // within the cooldown: not fetched yet
    expect(server.jwksHits()).toBe(1);

    advance(21_000);
    expectAllowed(await guard.evaluate(bearer(rotated)));
    expect(server.jwksHits()).toBe(2);
    // The withdrawn key is gone from the set: a token it signed now fails.
    expectRefused(await guard.evaluate(bearer(await freshToken())), 'token.invalid');
  });

  it('keeps a token verified before its key was withdrawn until the token cache is cleared', async () => {
    const k = await testKeys();
    const next = await generateKeyPair('RS256', { extractable: true });
    const server = await startJwksServer([k.rsaPublicJwk]);
    const guard = remoteGuard(server.url);
    const old = await freshToken();
    expectAllowed(await guard.evaluate(bearer(old)));

    server.keys = [{ ...(await exportJWK(next.publicKey)), kid: 'rsa-2', alg: 'RS256' }];
    advance(31_000);
    expectAllowed(await guard.evaluate(bearer(await freshToken({ key: next.privateKey, kid: 'rsa-2' }))));
    expectAllowed(await guard.evaluate(bearer(old))); // served from the verified-token cache
    guard.clearTokenCache();
    expectRefused(await guard.evaluate(bearer(old)), 'token.invalid');
  });

  it('refetches the set once cacheMaxAge has passed, without an unknown kid', async () => {
    const k = await testKeys();
    const server = await startJwksServer([k.rsaPublicJwk]);
    const guard = remoteGuard(server.url);
    expectAllowed(await guard.evaluate(bearer(await freshToken())));
    advance(9 * 60_000);
    expectAllowed(await guard.evaluate(bearer(await freshToken())));
    expect(server.jwksHits()).toBe(1);
    advance(2 * 60_000);
    expectAllowed(await guard.evaluate(bearer(await freshToken())));
    expect(server.jwksHits()).toBe(2);
  });
});

describe('when the JWK Set cannot be had', () => {
  // Fail closed, and as the issuer's outage: 503 idp.unavailable, never a 401 that blames the client's token.
  it('answers 503 idp.unavailable when nothing listens at jwksUri', async () => {
    const guard = remoteGuard(await closedPortUrl());
    expectUnavailable(await guard.evaluate(bearer(await freshToken())));
  });

  const failures: [JwksAnswer, string][] = [
    ['server-error', 'answers 500'],
    ['not-json', 'answers a body that is not JSON'],
    ['not-a-jwk-set', 'answers JSON that is not a JWK Set'],
    ['redirect', 'answers a redirect (not followed)'],
  ];
  for (const [answer, what] of failures) {
    it(`answers 503 idp.unavailable when the server ${what}`, async () => {
      const server = await startJwksServer([(await testKeys()).rsaPublicJwk]);
      server.answer = answer;
      const guard = remoteGuard(server.url);
      expectUnavailable(await guard.evaluate(bearer(await freshToken())));
      expect(server.paths.filter((p) => p !== JWKS_PATH)).toEqual([]); // a redirect is not followed
    });
  }

  it('answers 503 idp.unavailable when the server does not answer within jwks.timeout', async () => {
    const server = await startJwksServer([(await testKeys()).rsaPublicJwk]);
    server.answer = 'hang';
    const guard = remoteGuard(server.url, { jwks: { timeout: 150 } });
    expectUnavailable(await guard.evaluate(bearer(await freshToken())));
  });

  it('recovers once the server answers again and the retry backoff (1 s after a first failure) has passed', async () => {
    const server = await startJwksServer([(await testKeys()).rsaPublicJwk]);
    server.answer = 'server-error';
    const guard = remoteGuard(server.url);
    const token = await freshToken();
    expectUnavailable(await guard.evaluate(bearer(token)));
    server.answer = 'jwks';
    expectUnavailable(await guard.evaluate(bearer(token))); // within the backoff: not refetched
    expect(server.jwksHits()).toBe(1);
    advance(1_000);
    expectAllowed(await guard.evaluate(bearer(token)));
    expect(server.jwksHits()).toBe(2);
  });

  it('with maxStale 0, keeps verifying with the fetched set while the server is down only until cacheMaxAge', async () => {
    const server = await startJwksServer([(await testKeys()).rsaPublicJwk]);
    const guard = remoteGuard(server.url, { jwks: { cooldown: '30s', cacheMaxAge: '10m', maxStale: 0, timeout: 2000 } });
    expectAllowed(await guard.evaluate(bearer(await freshToken())));
    server.answer = 'server-error';
    advance(5 * 60_000);
    expectAllowed(await guard.evaluate(bearer(await freshToken())));
    advance(6 * 60_000);
    expectUnavailable(await guard.evaluate(bearer(await freshToken())));
  });

  it('still refuses a bad token as invalid, not unavailable, while the set is fetched', async () => {
    const server = await startJwksServer([(await testKeys()).rsaPublicJwk]);
    const guard = remoteGuard(server.url);
    expectRefused(await guard.evaluate(bearer(await freshToken({ iss: 'https://evil.example.test/' }))), 'token.invalid');
  });
});

describe('bounds on what the issuer serves', () => {
  it('refuses a JWK Set with more keys than jwks.maxKeys as a whole (idp.unavailable)', async () => {
    const k = await testKeys();
    const server = await startJwksServer([...Array.from({ length: 5 }, (_, i): JWK => ({ ...k.rsaPublicJwk, kid: `k-${i}` })), k.rsaPublicJwk]);
    const d = await remoteGuard(server.url, { jwks: { maxKeys: 5 } }).evaluate(bearer(await freshToken()));
    expectUnavailable(d);
    expect(d.detail).toMatch(/6 keys, over the limit of 5/);
    expectAllowed(await remoteGuard(server.url, { jwks: { maxKeys: 6 } }).evaluate(bearer(await freshToken())));
  });

  it('stops reading a body larger than jwks.maxBytes (idp.unavailable)', async () => {
    const k = await testKeys();
    const padding = Array.from({ length: 40 }, (_, i) => ({ ...k.rsaPublicJwk, kid: `pad-${i}` }));
    const server = await startJwksServer([...padding, k.rsaPublicJwk]);
    const d = await remoteGuard(server.url, { jwks: { maxBytes: 4096 } }).evaluate(bearer(await freshToken()));
    expectUnavailable(d);
    expect(d.detail).toMatch(/over the 4096-byte limit/);
  });

  it('ignores private and symmetric keys a JWK Set publishes', async () => {
    const k = await testKeys();
    const withPrivate = { ...k.rsaPublicJwk, d: 'not-really-private' };
    const server = await startJwksServer([withPrivate]);
    expectRefused(await remoteGuard(server.url).evaluate(bearer(await freshToken())), 'token.invalid');
  });
});

describe('discovery against a hand-made server', () => {
  it('falls back to the OpenID Connect location when the RFC 8414 one answers 404, for an issuer with a path', async () => {
    const k = await testKeys();
    const routes: Record<string, unknown> = {};
    const server = await startJwksServer([k.rsaPublicJwk], routes);
    const issuer = `${new URL(server.url).origin}/tenant-1`;
    routes['/tenant-1/.well-known/openid-configuration'] = { issuer, jwks_uri: server.url };
    const guard = createGuard({
      jwt: { issuer, audience: AUDIENCE, algorithms: ['RS256'], discovery: true },
      store: new MemoryStore(),
      clock: () => NOW,
      rules: ORDERS_RULES,
    });
    expectAllowed(await guard.evaluate(bearer(await freshToken({ iss: issuer }))));
    // RFC 8414 §3.1 inserts the well-known segment before the path; OpenID Connect appends it.
    expect(server.paths).toEqual(['/.well-known/oauth-authorization-server/tenant-1', '/tenant-1/.well-known/openid-configuration', JWKS_PATH]);
  });

  it('refuses metadata naming a jwks_uri over plain http to a non-loopback host', async () => {
    const routes: Record<string, unknown> = {};
    const server = await startJwksServer([(await testKeys()).rsaPublicJwk], routes);
    const issuer = new URL(server.url).origin;
    routes['/.well-known/oauth-authorization-server'] = { issuer, jwks_uri: 'http://keys.example.test/jwks.json' };
    const guard = createGuard({ jwt: { issuer, audience: AUDIENCE, algorithms: ['RS256'], discovery: true }, store: new MemoryStore(), clock: () => NOW, rules: ORDERS_RULES });
    const d = await guard.evaluate(bearer(await freshToken({ iss: issuer })));
    expectUnavailable(d);
    expect(d.detail).toMatch(/jwks_uri is not an https/);
  });
});
