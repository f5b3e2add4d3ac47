// Runs an orders API on Koa with token-guard on 127.0.0.1 and prints credentials to try it with curl.
import Koa from 'koa';
import Router from '@koa/router';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { MemoryStore, issueApiKey } from 'token-guard';
import { tokenGuard, requireScopes } from 'token-guard/koa';

const ISSUER = 'https://id.example.com/';
const AUDIENCE = 'api://orders';

// A local stand-in for the identity provider. In production: `jwksUri` instead of `keys`.
const idp = await generateKeyPair('ES256');
const publicJwk = { ...(await exportJWK(idp.publicKey)), kid: 'local-1', alg: 'ES256' };
const mint = (sub: string, scope: string) =>
  new SignJWT({ scope })
    .setProtectedHeader({ alg: 'ES256', kid: 'local-1' })
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

const app = new Koa();
app.use(
  tokenGuard({
    jwt: { issuer: ISSUER, audience: AUDIENCE, algorithms: ['ES256'], keys: [publicJwk] },
    apiKeys: { prefix: 'tg_' },
    store,
    rules: [
      { path: '/health', public: true },
      { methods: ['GET'], path: '/orders/**', scopes: ['orders:read'] },
      { methods: ['POST'], path: '/orders', scopes: ['orders:write'] },
      { path: '/admin/**', scopes: ['admin'], ip: { allow: ['127.0.0.1', '::1'] } },
    ],
    rateLimit: { limit: 600, window: '1m' },
    onDecision: (e) => console.log(`${e.method} ${e.path} → ${e.status} ${e.reason}`),
  }),
);

const router = new Router();
router.get('/health', (ctx) => {
  ctx.body = { ok: true };
});
router.get('/orders/:id', (ctx) => {
  ctx.body = { id: ctx.params['id'], for: ctx.state.auth?.token?.subject };
});
router.post('/orders', (ctx) => {
  ctx.status = 201;
  ctx.body = { by: ctx.state.auth?.token?.subject };
});
router.get('/admin/audit', requireScopes('audit:read'), (ctx) => {
  ctx.body = { entries: [] };
});
app.use(router.routes());

const server = app.listen(Number(process.env.PORT ?? 0), '127.0.0.1', async () => {
  const address = server.address();
  const url = typeof address === 'object' && address ? `http://127.0.0.1:${address.port}` : String(address);
  console.log(`orders API (Koa) on ${url}\n`);
  console.log(`curl -i ${url}/orders/42 -H "Authorization: Bearer ${await mint('alice', 'orders:read')}"`);
  console.log(`curl -i ${url}/orders/42 -H "Authorization: Bearer ${key}"`);
  console.log(`curl -i -X POST ${url}/orders -H "Authorization: Bearer ${key}"    # 403: this key may only read`);
  console.log(`curl -i ${url}/admin/audit -H "Authorization: Bearer ${await mint('root', 'admin audit:read')}"\n`);
});
