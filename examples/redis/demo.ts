// `npm run example:redis`: two instances of the orders API on one Redis. A token works on both; revoked on A, the very
// next request to B is refused. Prints what happens; exits 1 if any answer is not the expected one.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { SignJWT } from 'jose';
import { issueApiKey } from 'token-guard';
import { RedisStore } from 'token-guard/redis';
import { AUDIENCE, DEMO_SECRET, ISSUER, REDIS_URL } from './shared.js';

const prefix = `demo-${randomBytes(3).toString('hex')}:`;
const client = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
client.on('error', () => undefined);
try {
  await client.connect();
} catch {
  console.error(`No Redis at ${REDIS_URL}. Start one:  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no`);
  process.exit(1);
}

/** Starts one instance in its own process and resolves with its URL. */
function start(name: string): Promise<{ url: string; child: ChildProcess }> {
  const server = fileURLToPath(new URL('./server.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', server, '--port', '0', '--name', name], {
    env: { ...process.env, DEMO_PREFIX: prefix },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      const m = /listening on (\S+)/.exec(d.toString());
      if (m) resolve({ url: m[1] as string, child });
    });
    child.once('exit', (code) => reject(new Error(`instance ${name} exited with ${code}`)));
  });
}

const now = Math.floor(Date.now() / 1000);
const mint = (sub: string, scope: string, jti: string) =>
  new SignJWT({ scope, jti })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject(sub)
    .setIssuedAt(now - 5)
    .setExpirationTime(now + 3600)
    .sign(new TextEncoder().encode(DEMO_SECRET));

let failures = 0;
async function call(name: string, url: string, token: string, expected: number, init: RequestInit = {}): Promise<void> {
  const res = await fetch(url, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } });
  const body = res.status === 204 ? '' : ((await res.json()) as { reason?: string; instance?: string });
  const ok = res.status === expected;
  if (!ok) failures++;
  const detail = typeof body === 'object' ? (body.reason ?? `served by ${body.instance}`) : '';
  console.log(`${ok ? '✓' : '✗'} ${name.padEnd(40)} → ${res.status} ${detail}${ok ? '' : `   (expected ${expected})`}`);
}

const [a, b] = await Promise.all([start('A'), start('B')]);
try {
  console.log(`Redis ${REDIS_URL}, key prefix ${prefix}\ninstance A: ${a.url}\ninstance B: ${b.url}\n`);
  const jti = `demo-${randomBytes(4).toString('hex')}`;
  const alice = await mint('alice', 'orders:read', jti);
  const admin = await mint('ops', 'admin', `${jti}-admin`);
  // API keys live in the shared store: put the record in once, every instance knows the key.
  const store = new RedisStore({ client, prefix });
  const { key, record } = issueApiKey({ prefix: 'tg_', subject: 'svc-reporting', scopes: ['orders:read'], expiresIn: '1h' });
  await store.putApiKey(record);

  await call('alice JWT on A', `${a.url}/orders/1`, alice, 200);
  await call('alice JWT on B', `${b.url}/orders/1`, alice, 200);
  await call('API key on A', `${a.url}/orders/2`, key, 200);
  await call('API key on B', `${b.url}/orders/2`, key, 200);

  const revoke = (body: object) => ({ method: 'POST', body: JSON.stringify({ ...body, expiresAt: (now + 3600) * 1000 }) });
  const t0 = performance.now();
  await call(`revoke alice's JWT through A`, `${a.url}/admin/revoke`, admin, 204, revoke({ tokenId: jti }));
  await call('alice JWT on B, the very next request', `${b.url}/orders/1`, alice, 401);
  console.log(`  (revoke on A → refused on B: ${(performance.now() - t0).toFixed(1)} ms, two HTTP round trips included)`);

  await call('revoke the API key through A', `${a.url}/admin/revoke`, admin, 204, revoke({ tokenId: record.id }));
  await call('API key on B', `${b.url}/orders/2`, key, 401);

  const alice2 = await mint('alice', 'orders:read', `${jti}-2`);
  await call('another alice JWT on B', `${b.url}/orders/3`, alice2, 200);
  await call('revoke every alice token through A', `${a.url}/admin/revoke`, admin, 204, revoke({ subject: 'alice' }));
  await call('that JWT on B', `${b.url}/orders/3`, alice2, 401);
  await call('that JWT on A', `${a.url}/orders/3`, alice2, 401);
} finally {
  // Instances flush buffered usage as they stop; then leave the shared Redis as we found it.
  await Promise.all([a, b].map(({ child }) => new Promise((resolve) => child.once('exit', resolve).kill('SIGTERM'))));
  for await (const keys of client.scanStream({ match: `${prefix}*` })) for (const k of keys as string[]) await client.del(k);
  client.disconnect();
}
console.log(failures ? `\n${failures} answer(s) differed from the expected ones` : '\nevery answer as expected');
process.exit(failures ? 1 : 0);
