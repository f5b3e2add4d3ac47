// Runs a local identity provider (oidc-provider) and an orders API on Express that finds the provider's keys
// by discovery, serves its RFC 9728 metadata, and prints curl lines to try it. Everything on 127.0.0.1.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';
import { protectedResourceMetadataHandler, type TokenGuardPolicy } from 'token-guard';
import { tokenGuard, requireScopes } from 'token-guard/express';

const RESOURCE = 'https://api.example.com';
const CLIENT = { client_id: 'reporting', client_secret: 'a-client-secret-long-enough-for-the-demo-0123' };

// The identity provider: client credentials with resource indicators issue RFC 9068 `at+jwt` access tokens.
const idpServer = createServer();
await new Promise<void>((resolve) => idpServer.listen(Number(process.env.IDP_PORT ?? 0), '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${(idpServer.address() as AddressInfo).port}`;
const { privateKey } = await generateKeyPair('ES256', { extractable: true });
const provider = new Provider(issuer, {
  clients: [{ ...CLIENT, grant_types: ['client_credentials'], redirect_uris: [], response_types: [], id_token_signed_response_alg: 'ES256' }],
  jwks: { keys: [{ ...(await exportJWK(privateKey)), kid: 'demo-1', alg: 'ES256', use: 'sig' }] },
  scopes: ['orders:read', 'orders:write'],
  ttl: { ClientCredentials: 900 },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({ scope: 'orders:read orders:write', audience: RESOURCE, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } }),
    },
  },
});
idpServer.on('request', provider.callback());

// The API: one issuer found by discovery; keys kept through an outage of the provider for up to an hour.
const policy: TokenGuardPolicy = {
  jwt: { issuer, audience: RESOURCE, algorithms: ['ES256'], typ: 'at+jwt', discovery: true, jwks: { maxStale: '1h' } },
  rules: [
    { path: '/health', public: true },
    { methods: ['GET'], path: '/orders/**', scopes: ['orders:read'] },
    { methods: ['POST'], path: '/orders', scopes: ['orders:read'] },
  ],
  onDecision: (e) => console.log(`${e.method} ${e.path} → ${e.status} ${e.reason}${e.detail ? ` (${e.detail})` : ''}`),
};
const app = express();
const apiServer = app.listen(Number(process.env.PORT ?? 0), '127.0.0.1');
await new Promise<void>((resolve) => apiServer.once('listening', resolve));
const url = `http://127.0.0.1:${(apiServer.address() as AddressInfo).port}`;
policy.resourceMetadata = `${url}/.well-known/oauth-protected-resource`;

// RFC 9728 metadata, served ahead of the guard: clients read it without a token.
const metadata = protectedResourceMetadataHandler(policy, { resource: RESOURCE, resourceName: 'Orders API' });
app.use((req, res, next) => {
  const answer = metadata.handle({ method: req.method, path: req.originalUrl });
  if (!answer) return next();
  res.status(answer.status).set(answer.headers).send(answer.body);
});
app.use(tokenGuard(policy));
app.get('/health', (_req, res) => {
  res.json({ ok: true });
});
app.get('/orders/:id', (req, res) => {
  res.json({ id: req.params.id, client: req.auth?.token?.claims?.['client_id'] });
});
app.post('/orders', requireScopes('orders:write'), (_req, res) => {
  res.status(201).json({ created: true });
});

/** A token from the provider, as a client would get one. */
async function token(scope: string): Promise<string> {
  const res = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${CLIENT.client_id}:${CLIENT.client_secret}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: RESOURCE, scope }),
  });
  return ((await res.json()) as { access_token: string }).access_token;
}

console.log(`identity provider on ${issuer}, orders API on ${url}\n`);
console.log(`curl -i ${url}/orders/42 -H "Authorization: Bearer ${await token('orders:read')}"`);
console.log(`curl -i -X POST ${url}/orders -H "Authorization: Bearer ${await token('orders:read')}"    # 403: no orders:write`);
console.log(`curl -i -X POST ${url}/orders -H "Authorization: Bearer ${await token('orders:read orders:write')}"`);
console.log(`curl -i ${url}/.well-known/oauth-protected-resource`);
console.log(
  `curl -s ${issuer}/token -u ${CLIENT.client_id}:${CLIENT.client_secret} -d grant_type=client_credentials -d resource=${RESOURCE} -d scope=orders:read    # a new token\n`,
);
