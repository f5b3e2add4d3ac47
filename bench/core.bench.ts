// `npm run bench` (part 2): guard.evaluate decisions per second on one core, for the paths that matter.
// Runs against the built package (dist/, through the package's own exports), which is what users install.
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { createGuard, issueApiKey, MemoryStore, type GuardRequest, type TokenGuardPolicy } from 'token-guard';

const NOW = new Date('2026-11-25T10:00:00Z');
const iat = Math.floor(NOW.getTime() / 1000);

async function measure(name: string, run: (i: number) => Promise<unknown>, seconds = 2): Promise<{ name: string; opsPerSec: number; meanUs: number }> {
  const WARM = 2000;
  for (let i = 0; i < WARM; i++) await run(i); // warm-up: JIT, caches
  const end = performance.now() + seconds * 1000;
  let n = 0;
  const start = performance.now();
  // Measured indices start after the warm-up's, so a "first-seen" token is not one the warm-up already cached.
  while (performance.now() < end) {
    for (let k = 0; k < 256; k++) await run(WARM + n++);
  }
  const elapsed = performance.now() - start;
  return { name, opsPerSec: Math.round((n / elapsed) * 1000), meanUs: (elapsed * 1000) / n };
}

const es = await generateKeyPair('ES256');
const rs = await generateKeyPair('RS256');
const esJwk = { ...(await exportJWK(es.publicKey)), kid: 'es', alg: 'ES256' };
const keys = [esJwk, { ...(await exportJWK(rs.publicKey)), kid: 'rs', alg: 'RS256' }];
const store = new MemoryStore();
const policy: TokenGuardPolicy = {
  jwt: { issuer: 'https://id.example.com/', audience: 'api://orders', algorithms: ['ES256', 'RS256'], keys },
  apiKeys: { prefix: 'tg_' },
  store,
  trackUsage: false,
  ip: { allow: ['10.0.0.0/8', '192.168.0.0/16', '2001:db8::/32'], deny: ['10.66.0.0/16'] },
  hours: { timezone: 'Europe/Berlin', windows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '06:00', to: '22:00' }] },
  rules: [
    { path: '/health', public: true },
    { methods: ['GET'], path: '/orders/**', scopes: ['orders:read'] },
    { methods: ['POST'], path: '/orders/**', scopes: ['orders:write'] },
    { path: '/admin/**', scopes: ['admin'] },
  ],
};
const guard = createGuard(policy);
const sign = (alg: 'ES256' | 'RS256', jti: string) =>
  new SignJWT({ scope: 'orders:read', jti })
    .setProtectedHeader({ alg, kid: alg === 'ES256' ? 'es' : 'rs' })
    .setIssuer('https://id.example.com/')
    .setAudience('api://orders')
    .setSubject('alice')
    .setIssuedAt(iat)
    .setExpirationTime(iat + 3600)
    .sign(alg === 'ES256' ? es.privateKey : rs.privateKey);

const request = (token: string): GuardRequest => ({
  method: 'GET',
  path: '/orders/42?expand=items',
  headers: { authorization: `Bearer ${token}` },
  remoteAddress: '10.1.2.3',
  now: NOW,
});

const cachedReq = request(await sign('ES256', 'cached'));
const fresh: GuardRequest[] = [];
for (let i = 0; i < 30_000; i++) fresh.push(request(await sign('ES256', `fresh-${i}`)));
const freshRs: GuardRequest[] = [];
for (let i = 0; i < 30_000; i++) freshRs.push(request(await sign('RS256', `rs-${i}`)));
const { key, record } = issueApiKey({ prefix: 'tg_', subject: 'svc', scopes: ['orders:read'], expiresIn: '30d', now: NOW });
await store.putApiKey(record);
const keyReq = request(key);

// The policy bench/http serves (local key, one scoped rule, everything else default), once with the defaults and the
// real clock, once with trackUsage off and `now` given: the two ends of the cached path.
const plainPolicy = (trackUsage?: false): TokenGuardPolicy => ({
  jwt: { issuer: 'https://id.example.com/', audience: 'api://orders', algorithms: ['ES256'], keys: [esJwk] },
  rules: [{ methods: ['GET'], path: '/orders/**', scopes: ['orders:read'] }],
  ...(trackUsage === false && { trackUsage }),
});
const defaultGuard = createGuard(plainPolicy());
const leanGuard = createGuard(plainPolicy(false));
const liveToken = await new SignJWT({ scope: 'orders:read' })
  .setProtectedHeader({ alg: 'ES256', kid: 'es' })
  .setIssuer('https://id.example.com/')
  .setAudience('api://orders')
  .setSubject('alice')
  .setIssuedAt()
  .setExpirationTime('1h')
  .sign(es.privateKey);
const liveReq: GuardRequest = { method: 'GET', path: '/orders/42', headers: { authorization: `Bearer ${liveToken}` }, remoteAddress: '127.0.0.1' };
const leanReq: GuardRequest = { ...liveReq, now: new Date() };

const HS_SECRET = 'bench-secret-bench-secret-bench-secret!!';
const hsKey = new TextEncoder().encode(HS_SECRET);
const hsGuard = createGuard({
  jwt: { issuer: 'https://id.example.com/', audience: 'api://orders', algorithms: ['HS256'], secret: HS_SECRET },
  trackUsage: false,
  rules: [{ path: '/orders/**', scopes: ['orders:read'] }],
});
const freshHs: GuardRequest[] = [];
for (let i = 0; i < 30_000; i++) {
  freshHs.push(
    request(
      await new SignJWT({ scope: 'orders:read', jti: `hs-${i}` })
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuer('https://id.example.com/')
        .setAudience('api://orders')
        .setSubject('alice')
        .setIssuedAt(iat)
        .setExpirationTime(iat + 3600)
        .sign(hsKey),
    ),
  );
}

for (const [name, g, r] of [
  ['cached', guard, cachedReq],
  ['default', defaultGuard, liveReq],
  ['lean', leanGuard, leanReq],
  ['hs', hsGuard, freshHs[0]],
] as const) {
  const check = await g.evaluate(r as GuardRequest);
  if (check.reason !== 'ok') throw new Error(`bench setup (${name}): expected ok, got ${check.reason}`);
}

const results = [
  await measure('cached JWT (scope + IP + hours)', () => guard.evaluate(cachedReq)),
  await measure('first-seen ES256 JWT', (i) => guard.evaluate(fresh[i % fresh.length] as GuardRequest), 1),
  await measure('first-seen RS256 JWT', (i) => guard.evaluate(freshRs[i % freshRs.length] as GuardRequest), 1),
  await measure('API key (MemoryStore)', () => guard.evaluate(keyReq)),
  await measure('cached JWT, one scoped rule, default options', () => defaultGuard.evaluate(liveReq)),
  await measure('cached JWT, one scoped rule, trackUsage off + now given', () => leanGuard.evaluate(leanReq)),
  await measure('first-seen HS256 JWT', (i) => hsGuard.evaluate(freshHs[i % freshHs.length] as GuardRequest), 1),
];
console.log('guard.evaluate, one core, sequential awaits (first-seen tokens against jose jwtVerify, interleaved: npm run bench:first-seen)');
console.table(results.map((r) => ({ path: r.name, 'decisions/s': r.opsPerSec.toLocaleString('en-US'), 'mean µs': r.meanUs.toFixed(2) })));
