// One instance of the orders API on a shared Redis. Run several: `npx tsx examples/redis/server.ts --port 3001 --name A`.
import { parseArgs } from 'node:util';
import express from 'express';
import { Redis } from 'ioredis';
import { tokenGuard } from 'token-guard/express';
import { RedisStore } from 'token-guard/redis';
import { AUDIENCE, DEMO_SECRET, ISSUER, REDIS_URL } from './shared.js';

const { values } = parseArgs({ options: { port: { type: 'string', default: '3000' }, name: { type: 'string', default: 'A' } } });

// The app owns its connections: one for commands, one for pub/sub (near-cache invalidation). The store never makes its own.
const client = new Redis(REDIS_URL);
const subscriber = client.duplicate();
const store = new RedisStore({ client, subscriber, prefix: process.env.DEMO_PREFIX ?? 'orders-api:' });

const guard = tokenGuard({
  jwt: { issuer: ISSUER, audience: AUDIENCE, algorithms: ['HS256'], secret: DEMO_SECRET },
  apiKeys: { prefix: 'tg_' },
  store,
  rules: [
    { methods: ['GET'], path: '/orders/**', scopes: ['orders:read'] },
    { methods: ['POST'], path: '/admin/**', scopes: ['admin'] },
  ],
  rateLimit: { limit: 600, window: '1m' }, // per token, counted in Redis across all instances
});

const app = express();
app.use(express.json());
app.use(guard);
app.get('/orders/:id', (req, res) => void res.json({ instance: values.name, order: req.params.id }));
// Revoking on this instance revokes everywhere: the entry is in Redis and every near-cache is told through pub/sub.
app.post('/admin/revoke', async (req, res) => {
  // expiresAt (the token's own expiry) lets Redis drop the entry when it no longer matters.
  const { tokenId, subject, expiresAt } = req.body as { tokenId?: string; subject?: string; expiresAt?: number };
  if (tokenId) await guard.guard.revoke(tokenId, { expiresAt });
  else if (subject) await guard.guard.revokeSubject(subject, { expiresAt });
  else return void res.status(400).json({ error: 'tokenId or subject required' });
  res.status(204).end();
});

const server = app.listen(Number(values.port), '127.0.0.1', () => {
  const { port } = server.address() as { port: number };
  console.log(`instance ${values.name} listening on http://127.0.0.1:${port}`);
});

async function shutdown(): Promise<void> {
  server.close();
  await store.close(); // flushes buffered usage; leaves the connections to us
  await Promise.all([client.quit(), subscriber.quit()]);
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown());
process.on('SIGINT', () => void shutdown());
