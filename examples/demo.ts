// `npm run demo`: a scripted tour through the example Express app, printing each request's decision.
// It exits non-zero if any answer differs from what the row expects.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT } from 'jose';
import { MemoryStore, issueApiKey, type DecisionEvent } from 'token-guard';
import { createApp } from './express/app.js';
import { createIdentityProvider } from './express/keys.js';

// A fixed clock: Wednesday 25 Nov 2026, 11:00 in Berlin (inside office hours).
const WEDNESDAY = new Date('2026-11-25T10:00:00Z');
const SUNDAY_NIGHT = new Date('2026-11-29T02:00:00Z');
let now = WEDNESDAY;

const idp = await createIdentityProvider();
const store = new MemoryStore();
const events: DecisionEvent[] = [];
const { app, guard } = createApp({
  publicKeys: [idp.publicJwk],
  store,
  clock: () => now,
  onDecision: (e) => {
    events.push(e);
  },
});
const server = app.listen(0, '127.0.0.1');
await new Promise((resolve) => server.once('listening', resolve));
const port = (server.address() as AddressInfo).port;

// node:http sends the path exactly as written; fetch() would resolve "/../" before sending.
function send(method: string, path: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

const s = Math.floor(WEDNESDAY.getTime() / 1000);
const reader = await idp.mint({ sub: 'alice', scope: 'orders:read', jti: 'tok-reader' }, WEDNESDAY);
const writerNoMfa = await idp.mint({ sub: 'alice', scope: 'orders:read orders:write', auth_time: s - 3600, amr: ['pwd'] }, WEDNESDAY);
const writerMfa = await idp.mint({ sub: 'alice', scope: 'orders:read orders:write', auth_time: s - 60, amr: ['pwd', 'mfa'] }, WEDNESDAY);
const expired = await idp.mint({ sub: 'alice', scope: 'orders:read', exp: s - 60 }, new Date(WEDNESDAY.getTime() - 1_800_000));
const toRevoke = await idp.mint({ sub: 'bob', scope: 'orders:read', jti: 'tok-bob-1' }, WEDNESDAY);
const admin = await idp.mint({ sub: 'carol', scope: 'admin audit:read' }, WEDNESDAY);
const wrongAudience = await idp.mint({ sub: 'alice', scope: 'orders:read', aud: 'api://payments' }, WEDNESDAY);
const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
const algNone = `${enc({ alg: 'none', typ: 'JWT' })}.${enc({ sub: 'mallory', scope: 'orders:read orders:write admin', iss: 'https://id.example.com/', aud: 'api://orders', iat: s, exp: s + 900 })}.`;
// Key confusion: HS256 "signed" with the RSA public key's PEM bytes, hoping the server verifies HMAC with them.
const confused = await new SignJWT({ sub: 'mallory', scope: 'orders:read', iss: 'https://id.example.com/', aud: 'api://orders', iat: s, exp: s + 900 })
  .setProtectedHeader({ alg: 'HS256', kid: 'demo-1' })
  .sign(new TextEncoder().encode(idp.publicPem));
const { key: apiKey, record } = issueApiKey({ prefix: 'tg_', subject: 'svc-reporting', scopes: ['orders:read'], expiresIn: '30d', now: WEDNESDAY });
await store.putApiKey(record);
const typo = apiKey.slice(0, 10) + (apiKey[10] === 'a' ? 'b' : 'a') + apiKey.slice(11);

interface Step {
  title: string;
  method?: 'GET' | 'POST';
  path: string;
  token?: string;
  clientIp?: string;
  at?: Date;
  before?: () => Promise<void>;
  expect: [number, string];
}

const steps: Step[] = [
  { title: 'public health check, no token', path: '/health', expect: [200, 'ok'] },
  { title: 'no token on a guarded route', path: '/orders/42', expect: [401, 'token.missing'] },
  { title: 'valid read token', path: '/orders/42', token: reader, expect: [200, 'ok'] },
  { title: 'write with a read-only token', method: 'POST', path: '/orders', token: reader, expect: [403, 'scope.insufficient'] },
  { title: 'write without a fresh MFA login', method: 'POST', path: '/orders', token: writerNoMfa, expect: [401, 'step_up.required'] },
  { title: 'write after a fresh MFA login', method: 'POST', path: '/orders', token: writerMfa, expect: [201, 'ok'] },
  { title: 'expired token', path: '/orders/42', token: expired, expect: [401, 'token.expired'] },
  { title: "bob's token, before revocation", path: '/orders/42', token: toRevoke, expect: [200, 'ok'] },
  {
    title: "bob's token, right after guard.revoke()",
    path: '/orders/42',
    token: toRevoke,
    before: () => guard.revoke('tok-bob-1', { expiresAt: (s + 900) * 1000 }),
    expect: [401, 'token.revoked'],
  },
  { title: 'alg "none" with admin scopes', path: '/orders/42', token: algNone, expect: [401, 'token.invalid'] },
  { title: 'HS256 signed with the RSA public key', path: '/orders/42', token: confused, expect: [401, 'token.invalid'] },
  { title: 'token for another audience', path: '/orders/42', token: wrongAudience, expect: [401, 'token.invalid'] },
  {
    title: 'valid token at 03:00 on Sunday',
    path: '/orders/42',
    token: await idp.mint({ sub: 'alice', scope: 'orders:read' }, SUNDAY_NIGHT),
    at: SUNDAY_NIGHT,
    expect: [403, 'hours.outside'],
  },
  { title: 'admin from the office network 10.1.2.3', path: '/admin/audit', token: admin, clientIp: '10.1.2.3', expect: [200, 'ok'] },
  { title: 'admin from 203.0.113.9', path: '/admin/audit', token: admin, clientIp: '203.0.113.9', expect: [403, 'ip.denied'] },
  { title: 'valid API key', path: '/orders/42', token: apiKey, expect: [200, 'ok'] },
  { title: 'API key with a one-letter typo (checksum)', path: '/orders/42', token: typo, expect: [401, 'token.malformed'] },
  { title: 'path trick /orders/../admin/audit', path: '/orders/../admin/audit', token: reader, expect: [400, 'request.malformed'] },
];

const rows: string[][] = [];
let failures = 0;
for (const [i, step] of steps.entries()) {
  await step.before?.();
  now = step.at ?? WEDNESDAY;
  const headers: Record<string, string> = {};
  if (step.token) headers['authorization'] = `Bearer ${step.token}`;
  if (step.clientIp) headers['x-forwarded-for'] = step.clientIp;
  const before = events.length;
  const status = await send(step.method ?? 'GET', step.path, headers);
  const reason = events.slice(before).at(-1)?.reason ?? '?';
  const ok = status === step.expect[0] && reason === step.expect[1];
  if (!ok) failures++;
  rows.push([String(i + 1), `${step.method ?? 'GET'} ${step.path}`, step.title, `${step.expect[0]} ${step.expect[1]}`, `${status} ${reason}`, ok ? 'ok' : 'MISMATCH']);
}
server.close();

const head = ['#', 'request', 'what', 'expected', 'got', ''];
const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] as string).length)));
const line = (r: string[]) => r.map((cell, c) => cell.padEnd(widths[c] as number)).join('  ');
console.log(line(head));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const r of rows) console.log(line(r));
console.log(failures ? `\n${failures} of ${rows.length} requests did not get the expected answer.` : `\nAll ${rows.length} requests got the expected answer.`);
process.exit(failures ? 1 : 0);
