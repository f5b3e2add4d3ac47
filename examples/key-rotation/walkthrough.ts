// `npm run example:key-rotation`: the life of an API key against a real Express app, on a clock the script moves.
// Issue, use, list, rotate with a day's grace (both keys work; the old one is told by Deprecation and Sunset), the old
// one refused after the grace, the successor revoked as compromised, and the audit trail of it all. Prints each step;
// exits 1 if any answer is not the expected one. Swap MemoryStore for RedisStore to run it across instances.
import type { AddressInfo } from 'node:net';
import express from 'express';
import { MemoryStore, createApiKey, listApiKeys, listLifecycleEvents, revokeApiKey, rotateApiKey, type DecisionEvent } from 'token-guard';
import { tokenGuard } from 'token-guard/express';

const HOUR = 3_600_000;
let now = new Date('2026-11-25T10:00:00Z');
const store = new MemoryStore();
let lastDecision: DecisionEvent | undefined;

const app = express();
app.use(
  tokenGuard({
    apiKeys: { prefix: 'tg_', maxAge: '180d', idleTimeout: '30d' },
    store,
    clock: () => now,
    rules: [{ path: '/orders/**', scopes: ['orders:read'] }],
    onDecision: (event) => {
      lastDecision = event;
    },
    onLifecycle: (event) => console.log(`  lifecycle: ${event.type} ${event.tokenId ?? event.subject} (${event.reason ?? 'no reason'})`),
  }),
);
app.get('/orders/:id', (req, res) => {
  res.json({ id: req.params.id, for: req.auth?.token?.subject });
});
const server = app.listen(0, '127.0.0.1');
await new Promise((resolve) => server.once('listening', resolve));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

let failures = 0;
let steps = 0;
async function call(label: string, key: string, expected: number): Promise<Response> {
  const res = await fetch(`${base}/orders/1`, { headers: { authorization: `Bearer ${key}` } });
  steps++;
  const ok = res.status === expected;
  if (!ok) failures++;
  const warn = [res.headers.get('deprecation') && `Deprecation: ${res.headers.get('deprecation')}`, res.headers.get('sunset') && `Sunset: ${res.headers.get('sunset')}`]
    .filter(Boolean)
    .join(', ');
  const detail = res.status === 200 ? warn : `${lastDecision?.reason} — ${lastDecision?.detail ?? ''}`;
  console.log(`${ok ? '✓' : '✗'} ${label.padEnd(44)} → ${res.status} ${detail}${ok ? '' : `   (expected ${expected})`}`);
  return res;
}
const show = (k: { id: string; prefix: string; lastFour?: string; state: string }) => `${k.id}  ${k.prefix}…${k.lastFour}  ${k.state}`;

try {
  console.log(`1. Issue a key for svc-billing (the plaintext is shown once; the store keeps its hash).`);
  const first = await createApiKey(store, { prefix: 'tg_', subject: 'svc-billing', scopes: ['orders:read'], expiresIn: '90d', name: 'billing export', actor: 'alice', now });
  await call('the new key', first.key, 200);

  console.log(`\n2. List svc-billing's keys: metadata only, never a hash.`);
  for (const k of await listApiKeys(store, 'svc-billing', { now })) console.log(`  ${show(k)}`);

  console.log(`\n3. Rotate with a day's grace: both keys work; the old one answers with Deprecation and Sunset.`);
  now = new Date(now.getTime() + HOUR);
  const next = await rotateApiKey(store, first.record.id, { grace: '24h', actor: 'alice', now });
  console.log(`  successor ${next.record.id}; the old key stops at ${next.sunsetAt.toISOString()}`);
  await call('the old key, during the grace', first.key, 200);
  await call('the successor', next.key, 200);
  for (const k of await listApiKeys(store, 'svc-billing', { now })) console.log(`  ${show(k)}`);

  console.log(`\n4. A day later the grace is over: the old key is refused, and the detail says it was rotated.`);
  now = new Date(now.getTime() + 24 * HOUR);
  await call('the old key, after the grace', first.key, 401);
  await call('the successor', next.key, 200);

  console.log(`\n5. The successor leaks: revoke it with a reason; the reason shows in the decision's detail.`);
  await revokeApiKey(store, next.record.id, { reason: 'compromised', actor: 'bob', now });
  await call('the successor, revoked', next.key, 401);

  console.log(`\n6. The audit trail (what \`token-guard\` tooling and PostgreSQL can show across processes):`);
  for (const e of await listLifecycleEvents(store, { subject: 'svc-billing' })) {
    console.log(`  ${new Date(e.at).toISOString()}  ${e.type.padEnd(12)} ${e.tokenId ?? ''}  by ${e.actor ?? '—'}${e.reason ? `  (${e.reason})` : ''}`);
  }
} finally {
  server.close();
}
console.log(failures ? `\n${failures} of ${steps} requests got an unexpected answer.` : `\nAll ${steps} requests got the expected answer.`);
process.exitCode = failures ? 1 : 0;
