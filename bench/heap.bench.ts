// `npm run bench:heap` (part of `npm run bench`; alone: `npm run build && npm run bench:heap`): memory under 1M distinct
// tokens through guard.evaluate on the built package (dist/). Issue 9's target: memory flat, bounded by the caches'
// sizes, whatever the number of distinct tokens.
//
// The guard has default options besides `jwt` (HS256: signing a million ES256 tokens would take most of the run),
// `apiKeys` and one scoped rule; its store is a MemoryStore, default bounds but for `maxApiKeys`. Nine requests in ten
// carry a new JWT, one in ten a new API key, issued and put in the store just before. The store keeps key records up
// to `maxApiKeys` (default here 10 000, reached after 100 000 requests; the store's own default, 100 000, would only be
// reached after a million, and each record costs about 1 KiB). Each token is used once, with the real clock (no `now`),
// sequentially awaited, and made when its request is, so nothing but the guard and its store holds them. Every SAMPLE
// requests: heap used and RSS after a full GC. Once every bound is reached, heap used must stop growing.
//
// Env: TOKENS (1 000 000), SAMPLE (100 000), MAX_API_KEYS (10 000), API_KEY_EVERY (10; 0: JWTs only).
import { createHmac } from 'node:crypto';
import { createGuard, issueApiKey, MemoryStore, type GuardRequest } from 'token-guard';

const int = (name: string, fallback: number): number => {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer`);
  return v;
};
const TOKENS = int('TOKENS', 1_000_000);
const SAMPLE = int('SAMPLE', 100_000);
const MAX_API_KEYS = int('MAX_API_KEYS', 10_000);
const API_KEY_EVERY = Number(process.env.API_KEY_EVERY ?? 10);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc (npm run bench:heap does)');

const ISSUER = 'https://id.example.com/';
const AUDIENCE = 'api://orders';
const SECRET = 'bench-secret-bench-secret-bench-secret!!';

const store = new MemoryStore({ maxApiKeys: MAX_API_KEYS });
const guard = createGuard({
  jwt: { issuer: ISSUER, audience: AUDIENCE, algorithms: ['HS256'], secret: SECRET },
  apiKeys: { prefix: 'tg_' },
  store,
  rules: [{ methods: ['GET'], path: '/orders/**', scopes: ['orders:read'] }],
});

// HS256 signed here with node:crypto (jose's SignJWT costs ~10× more per token, and this makes a million of them).
const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'at+jwt' })).toString('base64url');
function hs256(i: number): string {
  const iat = Math.floor(Date.now() / 1000);
  const claims = { iss: ISSUER, aud: AUDIENCE, sub: `user-${i % 5000}`, scope: 'orders:read profile', jti: `heap-${i}`, iat, exp: iat + 3600 };
  const input = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return `${input}.${createHmac('sha256', SECRET).update(input).digest('base64url')}`;
}

async function apiKey(i: number): Promise<string> {
  const { key, record } = issueApiKey({ prefix: 'tg_', subject: `svc-${i % 5000}`, scopes: ['orders:read'], expiresIn: '30d' });
  await store.putApiKey(record);
  return key;
}

const request = (token: string): GuardRequest => ({
  method: 'GET',
  path: '/orders/42',
  headers: { host: 'localhost:3000', authorization: `Bearer ${token}`, 'user-agent': 'bench', accept: '*/*' },
  remoteAddress: '127.0.0.1',
});

const MiB = 1024 * 1024;
// When the previous sample was taken (after its GCs), for the time per token between two samples.
let lastMark = performance.now();
function sample(done: number, startMs: number): Record<string, string> {
  // Wall time per token since the last sample, making the token included: once the bounds are full every new token
  // also evicts an old entry from each cache, so this column rising with the row number means eviction is not O(1).
  const perToken = done > 0 ? ((performance.now() - lastMark) * 1000) / SAMPLE : Number.NaN;
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  return {
    tokens: done.toLocaleString('en-US'),
    'heap used MiB': (m.heapUsed / MiB).toFixed(1),
    'heap total MiB': (m.heapTotal / MiB).toFixed(1),
    'rss MiB': (m.rss / MiB).toFixed(1),
    's elapsed': ((performance.now() - startMs) / 1000).toFixed(0),
    'µs per token': Number.isNaN(perToken) ? '' : perToken.toFixed(1),
  };
}

const start = performance.now();
const rows = [sample(0, start)];
lastMark = performance.now();
let refused = 0;
for (let i = 1; i <= TOKENS; i++) {
  const token = API_KEY_EVERY > 0 && i % API_KEY_EVERY === 0 ? await apiKey(i) : hs256(i);
  const d = await guard.evaluate(request(token));
  if (d.reason !== 'ok') refused++;
  if (i % SAMPLE === 0) {
    rows.push(sample(i, start));
    lastMark = performance.now();
    console.log(`${rows.at(-1)?.tokens} tokens, heap used ${rows.at(-1)?.['heap used MiB']} MiB`);
  }
}
if (refused > 0) throw new Error(`${refused} requests were refused: every token should pass`);
const mix = API_KEY_EVERY > 0 ? `1 in ${API_KEY_EVERY} an API key (MemoryStore maxApiKeys ${MAX_API_KEYS.toLocaleString('en-US')}), the others HS256 JWTs` : 'HS256 JWTs only';
console.log(`heap after full GC, ${TOKENS.toLocaleString('en-US')} distinct tokens: ${mix}; other bounds default`);
console.table(rows);
const last = rows.slice(-Math.ceil(rows.length / 2)).map((r) => Number(r['heap used MiB']));
console.log(
  `heap used over the second half: ${Math.min(...last).toFixed(1)}–${Math.max(...last).toFixed(1)} MiB; run took ${((performance.now() - start) / 1000).toFixed(0)} s`,
);
