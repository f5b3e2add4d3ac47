// The orders API the observability examples share: Express, a local stand-in identity provider, one API key.
// Each example adds its own `onDecision` / `telemetry` to the policy.
import type { Server } from 'node:http';
import express from 'express';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { MemoryStore, issueApiKey, type TokenGuardPolicy } from 'token-guard';
import { tokenGuard } from 'token-guard/express';

const ISSUER = 'https://id.example.com/';
const AUDIENCE = 'api://orders';

/** Builds the guarded app with `extra` merged into the policy; resolves to the app and credentials to try it with. */
export async function ordersApp(extra: Partial<TokenGuardPolicy>, before?: (app: express.Express) => void) {
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
  const store = new MemoryStore();
  const { key, record } = issueApiKey({ prefix: 'tg_', subject: 'svc-reporting', scopes: ['orders:read'], expiresIn: '30d' });
  await store.putApiKey(record);

  const app = express();
  // Middleware that must run before the guard (a request logger).
  before?.(app);
  app.use(
    tokenGuard({
      jwt: { issuer: ISSUER, audience: AUDIENCE, algorithms: ['ES256'], keys: [publicJwk] },
      apiKeys: { prefix: 'tg_' },
      store,
      rules: [
        { path: '/health', public: true },
        { methods: ['GET'], path: '/orders/**', scopes: ['orders:read'] },
        { methods: ['POST'], path: '/orders', scopes: ['orders:write'] },
      ],
      rateLimit: { limit: 600, window: '1m' },
      ...extra,
    }),
  );
  app.get('/health', (_req, res) => {
    res.json({ ok: true });
  });
  app.get('/orders/:id', (req, res) => {
    res.json({ id: req.params['id'], for: req.auth?.token?.subject });
  });
  app.post('/orders', (req, res) => {
    res.status(201).json({ by: req.auth?.token?.subject });
  });
  return { app, store, key, jwt: await mint('alice', 'orders:read') };
}

/** Listens on 127.0.0.1 (loopback only) on `port` (0: a free one) and resolves to the base URL. */
export function listen(server: Pick<Server, 'listen' | 'address'>, port: number): Promise<string> {
  return new Promise((resolve) => {
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? `http://127.0.0.1:${address.port}` : String(address));
    });
  });
}
