// The oidc-provider harness itself: it serves discovery, issues RFC 9068 tokens, rotates keys and fails on demand.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { startOidcProvider, type OidcServer } from '../helpers/oidc.js';

describe('oidc-provider harness', () => {
  let idp: OidcServer;
  beforeAll(async () => {
    idp = await startOidcProvider();
  });
  afterAll(() => idp.close());

  it('publishes OpenID Connect metadata naming its issuer, jwks_uri and introspection endpoint', async () => {
    const res = await fetch(`${idp.baseUrl}/.well-known/openid-configuration`);
    const meta = (await res.json()) as Record<string, unknown>;
    expect(meta['issuer']).toBe(idp.issuer);
    expect(meta['jwks_uri']).toBe(idp.jwksUri);
    expect(meta['introspection_endpoint']).toBe(`${idp.baseUrl}/token/introspection`);
  });

  it('issues at+jwt access tokens for the resource by client credentials', async () => {
    const token = await idp.accessToken({ scope: 'orders:read' });
    expect(decodeProtectedHeader(token)).toMatchObject({ typ: 'at+jwt', alg: 'ES256', kid: idp.publicKeys()[0]?.kid });
    expect(decodeJwt(token)).toMatchObject({ iss: idp.issuer, aud: idp.resource, scope: 'orders:read', client_id: idp.clientId });
  });

  it('signs with the new key after a rotation and keeps publishing the old one', async () => {
    const before = idp.publicKeys()[0]?.kid;
    await idp.rotateKeys();
    const token = await idp.accessToken();
    expect(decodeProtectedHeader(token).kid).not.toBe(before);
    const jwks = (await (await fetch(idp.jwksUri)).json()) as { keys: { kid: string }[] };
    expect(jwks.keys.map((k) => k.kid)).toEqual(idp.publicKeys().map((k) => k.kid));
  });

  it('answers 503 in error mode and refuses connections once stopped, then serves again', async () => {
    idp.setMode('error');
    expect((await fetch(idp.jwksUri)).status).toBe(503);
    idp.setMode('up');
    await idp.stop();
    await expect(fetch(idp.jwksUri)).rejects.toThrow();
    await idp.start();
    expect((await fetch(idp.jwksUri)).status).toBe(200);
  });
});
