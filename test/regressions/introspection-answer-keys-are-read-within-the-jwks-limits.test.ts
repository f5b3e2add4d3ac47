// Regression (IdP review, item 3): the JWK Set that signed introspection answers (RFC 9701) are checked with,
// `introspection.jwtResponse.jwksUri`, was fetched with jose's remote key set, which reads a body whole: a server (or
// anyone on its path) could make every guard read hundreds of megabytes. It is now fetched like a `jwt.jwksUri` set,
// within the `jwt.jwks` default limits (256 KiB, 100 keys, no redirects, the introspection timeout): a larger body is
// abandoned mid-read, a larger set refused, and the request fails closed (503 idp.unavailable).
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';
import { createGuard, MemoryStore, type Guard } from '../../src/index.js';
import { closeJwksServers, startJwksServer, startOversizedJwksServer } from '../helpers/jwks-server.js';
import { ORDERS_RULES, expectAllowed, expectRefused, requestWith } from '../tokens/fixtures.js';

const AS_ISSUER = 'https://as.example/';
const BODY_BYTES = 64 * 1024 * 1024;

type Handler = (res: ServerResponse) => void | Promise<void>;
const servers: { close(): Promise<void> }[] = [];

async function serve(handler: Handler): Promise<{ url: string }> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => void handler(res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push({
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` };
}

afterEach(async () => {
  await Promise.all([...servers.splice(0).map((s) => s.close()), closeJwksServers()]);
});

/** An authorization server whose introspection endpoint answers every token active, signed with `key`. */
async function signingAs(key: CryptoKey) {
  return serve(async (res) => {
    const jwt = await new SignJWT({ token_introspection: { active: true, sub: 'alice', scope: 'orders:read' } })
      .setProtectedHeader({ alg: 'ES256', kid: 'as-1', typ: 'token-introspection+jwt' })
      .setIssuer(AS_ISSUER)
      .setAudience('rs-orders')
      .setIssuedAt()
      .sign(key);
    res.writeHead(200, { 'content-type': 'application/token-introspection+jwt' });
    res.end(jwt);
  });
}

function introspectingGuard(endpoint: string, jwksUri: string): Guard {
  return createGuard({
    introspection: { endpoint, clientId: 'rs-orders', clientSecret: 'secret', timeout: '30s', jwtResponse: { issuer: AS_ISSUER, algorithms: ['ES256'], jwksUri } },
    store: new MemoryStore(),
    rules: ORDERS_RULES,
  });
}

const request = (token: string) => requestWith({ authorization: `Bearer ${token}` }, { now: new Date() });

describe('the key set of signed introspection answers', () => {
  it('is abandoned mid-read when its body is over the size limit, and the request fails closed', async () => {
    const as = await generateKeyPair('ES256');
    const jwk: JWK = { ...(await exportJWK(as.publicKey)), kid: 'as-1', alg: 'ES256', use: 'sig' };
    // A valid JWK Set, padded far past the limit: read whole it would verify the answer.
    const jwks = await startOversizedJwksServer(jwk, BODY_BYTES);
    const guard = introspectingGuard((await signingAs(as.privateKey)).url, jwks.url);

    const d = await guard.evaluate(request('opaque-token-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'));
    expectRefused(d, 'idp.unavailable');
    expect(d.detail).toMatch(/over the 262144-byte limit/);
    expect(jwks.finished()).toBe(false);
    // What the server got to write before the guard hung up: the limit plus what socket buffers hold, not the body.
    expect(jwks.sent()).toBeLessThan(BODY_BYTES / 4);
  });

  it('holds at most 100 keys: a larger set is refused as a whole, one within the limit verifies answers, fetched once', async () => {
    const as = await generateKeyPair('ES256');
    const jwk: JWK = { ...(await exportJWK(as.publicKey)), kid: 'as-1', alg: 'ES256', use: 'sig' };
    const padding = (n: number) => Array.from({ length: n }, (_, i): JWK => ({ ...jwk, kid: `old-${i}` }));
    const endpoint = (await signingAs(as.privateKey)).url;

    const tooMany = introspectingGuard(endpoint, (await startJwksServer([...padding(100), jwk])).url);
    const d = await tooMany.evaluate(request('opaque-token-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'));
    expectRefused(d, 'idp.unavailable');
    expect(d.detail).toMatch(/101 keys, over the limit of 100/);

    const within = await startJwksServer([...padding(99), jwk]);
    const guard = introspectingGuard(endpoint, within.url);
    expectAllowed(await guard.evaluate(request('opaque-token-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')));
    expectAllowed(await guard.evaluate(request('opaque-token-BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB')));
    expect(within.jwksHits()).toBe(1);
  });
});
