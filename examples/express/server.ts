// Runs the example orders API on 127.0.0.1 and prints credentials to try it with curl.
import { MemoryStore, issueApiKey } from 'token-guard';
import { createApp } from './app.js';
import { createIdentityProvider } from './keys.js';

const idp = await createIdentityProvider();
const store = new MemoryStore();
const { key, record } = issueApiKey({ prefix: 'tg_', subject: 'svc-reporting', scopes: ['orders:read'], expiresIn: '30d' });
await store.putApiKey(record);

const { app } = createApp({
  publicKeys: [idp.publicJwk],
  store,
  onDecision: (e) => console.log(`${e.method} ${e.path} → ${e.status} ${e.reason} (${e.kind ?? 'no token'}, ${e.latencyUs} µs)`),
});
const server = app.listen(Number(process.env.PORT ?? 0), '127.0.0.1', async () => {
  const address = server.address();
  const url = typeof address === 'object' && address ? `http://127.0.0.1:${address.port}` : String(address);
  const token = await idp.mint({ sub: 'alice', scope: 'orders:read', jti: 'example-token' }, new Date());
  console.log(`orders API on ${url}\n`);
  console.log(`curl -i ${url}/orders/42 -H "Authorization: Bearer ${token}"`);
  console.log(`curl -i ${url}/orders/42 -H "Authorization: Bearer ${key}"`);
  console.log(`curl -i -X POST ${url}/orders -H "Authorization: Bearer ${key}"\n`);
  console.log('The policy allows Mon-Sat 07:00-20:00 Berlin time; outside that, 403 hours.outside is the policy working.\n');
});
