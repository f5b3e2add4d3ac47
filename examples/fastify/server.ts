// Runs an orders API on Fastify with token-guard on 127.0.0.1 and prints credentials to try it with curl.
import Fastify from 'fastify';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { MemoryStore, createGuard, issueApiKey } from 'token-guard';
import { tokenGuard, requireScopes } from 'token-guard/fastify';

const ISSUER = 'https://id.example.com/';
const AUDIENCE = 'api://orders';

// A local stand-in for the identity provider. In production: `jwksUri` instead of `keys`.
const idp = await generateKeyPair('RS256');
const publicJwk = { ...(await exportJWK(idp.publicKey)), kid: 'local-1', alg: 'RS256' };
const mint = (sub: string, scope: string) =>
  new SignJWT({ scope })
    .setProtectedHeader({ alg: 'RS256', kid: 'local-1' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime('15m')
    .sign(idp.privateKey);

// One store for keys, revocations and counters; a service's API key issued at start-up.
const store = new MemoryStore();
const { key, record } = issueApiKey({ prefix: 'tg_', subject: 'svc-reporting', scopes: ['orders:read'], expiresIn: '30d' });
await store.putApiKey(record);

// The guard is created here, not inside the plugin, so the app can also call guard.revoke(...).
const guard = createGuard({
  jwt: { issuer: ISSUER, audience: AUDIENCE, algorithms: ['RS256'], keys: [publicJwk] },
  apiKeys: { prefix: 'tg_' },
  store,
  // No caseSensitive: the plugin reads Fastify's router option (case-sensitive by default).
  rules: [
    { path: '/health', public: true },
    { methods: ['GET'], path: '/orders/**', scopes: ['orders:read'] },
    { methods: ['POST'], path: '/orders', scopes: ['orders:write'] },
    { path: '/admin/**', scopes: ['admin'], ip: { allow: ['127.0.0.1', '::1'] } },
  ],
  rateLimit: { limit: 600, window: '1m' },
  onDecision: (e) => console.log(`${e.method} ${e.path} → ${e.status} ${e.reason}`),
});

const app = Fastify();
await app.register(tokenGuard, { guard });
app.get('/health', async () => ({ ok: true }));
app.get<{ Params: { id: string } }>('/orders/:id', async (req) => ({ id: req.params.id, for: req.auth?.token?.subject }));
app.post('/orders', async (req, reply) => reply.code(201).send({ by: req.auth?.token?.subject }));
app.get('/admin/audit', { preHandler: requireScopes('audit:read') }, async () => ({ entries: [] }));
app.delete<{ Params: { id: string } }>('/admin/tokens/:id', { preHandler: requireScopes('audit:read') }, async (req) => {
  await guard.revoke(req.params.id);
  return { revoked: req.params.id };
});

const url = await app.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' });
console.log(`orders API (Fastify) on ${url}\n`);
console.log(`curl -i ${url}/orders/42 -H "Authorization: Bearer ${await mint('alice', 'orders:read')}"`);
console.log(`curl -i ${url}/orders/42 -H "Authorization: Bearer ${key}"`);
console.log(`curl -i -X POST ${url}/orders -H "Authorization: Bearer ${key}"    # 403: this key may only read`);
console.log(`curl -i ${url}/admin/audit -H "Authorization: Bearer ${await mint('root', 'admin audit:read')}"`);
console.log(`curl -i -X DELETE ${url}/admin/tokens/${record.id} -H "Authorization: Bearer ${await mint('root', 'admin audit:read')}"    # then the key is refused\n`);
