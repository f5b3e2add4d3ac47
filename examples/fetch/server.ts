// Runs an orders API through token-guard's fetch adapter on Node's own http server, and prints
// credentials to try it with curl. The same handler runs unchanged on Bun, Deno or a Next.js route.
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { MemoryStore, issueApiKey } from 'token-guard';
import { guardFetch, requireScopes } from 'token-guard/fetch';
import { toNodeListener, type FetchHandler } from './bridge.js';

const ISSUER = 'https://id.example.com/';
const AUDIENCE = 'api://orders';
// A shared secret with the identity provider (HS256). In production: from your secret store.
const secret = process.env.JWT_SECRET ?? randomBytes(32).toString('base64url');
const mint = (sub: string, scope: string) =>
  new SignJWT({ scope })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime('15m')
    .sign(new TextEncoder().encode(secret));

// One store for keys, revocations and counters; a service's API key issued at start-up.
const store = new MemoryStore();
const { key, record } = issueApiKey({ prefix: 'tg_', subject: 'svc-reporting', scopes: ['orders:read'], expiresIn: '30d' });
await store.putApiKey(record);

const guard = guardFetch({
  jwt: { issuer: ISSUER, audience: AUDIENCE, algorithms: ['HS256'], secret },
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
});
const canAudit = requireScopes('audit:read');

// The guard answers refusals itself; this handler only sees requests it let through, and the
// RateLimit-* headers are added to whatever it returns. The bridge's connection info feeds IP rules.
const handle: FetchHandler = guard.handler(
  async (request, auth, _info: { remoteAddress?: string | undefined }) => {
    const { pathname } = new URL(request.url);
    const order = /^\/orders\/([^/]+)$/.exec(pathname);
    if (pathname === '/health') return Response.json({ ok: true });
    if (request.method === 'GET' && order) return Response.json({ id: order[1], for: auth.token?.subject });
    if (request.method === 'POST' && pathname === '/orders') return Response.json({ by: auth.token?.subject }, { status: 201 });
    if (request.method === 'GET' && pathname === '/admin/audit') {
      const scoped = canAudit(request);
      return scoped instanceof Response ? scoped : Response.json({ entries: [] });
    }
    return Response.json({ error: 'not found' }, { status: 404 });
  },
  { info: (_request, info) => info },
);

const server = http.createServer(toNodeListener(handle));
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', async () => {
  const address = server.address();
  const url = typeof address === 'object' && address ? `http://127.0.0.1:${address.port}` : String(address);
  console.log(`orders API (fetch adapter on node:http) on ${url}\n`);
  console.log(`curl -i ${url}/orders/42 -H "Authorization: Bearer ${await mint('alice', 'orders:read')}"`);
  console.log(`curl -i ${url}/orders/42 -H "Authorization: Bearer ${key}"`);
  console.log(`curl -i -X POST ${url}/orders -H "Authorization: Bearer ${key}"    # 403: this key may only read`);
  console.log(`curl -i ${url}/admin/audit -H "Authorization: Bearer ${await mint('root', 'admin audit:read')}"\n`);
});
