// `npm run bench:first-seen` (part of `npm run bench`; alone: `npm run build && npm run bench:first-seen`): a token the
// guard has never seen (signature verified, nothing cached) against jose's own `jwtVerify` of the same token, on the
// built package (dist/). Issue 9's target: guard.evaluate of a first-seen ES256 / RS256 / HS256 token no slower than
// jwtVerify in the same run, i.e. the ratio printed (guard decisions per CPU-second / jose verifications per
// CPU-second, = jose's CPU time per token / the guard's) is ≥ 1.0.
//
// Both sides get the same keys (jose one CryptoKey per algorithm, imported once; the guard the same public key as a JWK,
// or the same secret, which it imports once itself) and the same claim checks: issuer, audience, algorithm allow-list, `typ` (the tokens say `at+jwt`, which the guard accepts by
// default), `exp` required, 5 s clock tolerance, the clock read per call (no `now`). The guard has its default options
// besides `jwt` and one scoped rule (without a rule it refuses every request: `unmatched: 'deny'`), so its figure also
// holds the whole decision: rule match, revocation read, usage record, the verification cache's insert.
//
// Every token is seen once by each side. A round measures N tokens through the guard and the same N through jose,
// every other round jose first; each batch starts after a full GC (not counted) and is timed in process CPU time (the
// machine is shared: wall time counts waiting for a core). Printed: medians over rounds and the median of the
// per-round ratios, with their range.
//
// Env: ROUNDS (9), N tokens per round and algorithm (ES256/HS256: 2000, RS256: 1000), ONLY (ES256, RS256 or HS256).
import { webcrypto } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair, jwtVerify, type JWTVerifyOptions } from 'jose';
import { createGuard, type GuardRequest, type TokenGuardPolicy } from 'token-guard';

type JwtPolicy = Exclude<NonNullable<TokenGuardPolicy['jwt']>, readonly unknown[]>;

const int = (name: string, fallback: number): number => {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer`);
  return v;
};
const ROUNDS = int('ROUNDS', 9);
const ONLY = process.env.ONLY ?? '';
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc (npm run bench:first-seen does)');

const ISSUER = 'https://id.example.com/';
const AUDIENCE = 'api://orders';
const SECRET = 'bench-secret-bench-secret-bench-secret!!';

type Alg = 'ES256' | 'RS256' | 'HS256';

/** One algorithm's keys: what signs, what jose verifies with, and the guard's `jwt` configuration of the same key. */
async function keysFor(alg: Alg): Promise<{ sign: CryptoKey | Uint8Array; verify: CryptoKey; jwt: JwtPolicy }> {
  const base: JwtPolicy = { issuer: ISSUER, audience: AUDIENCE, algorithms: [alg] };
  if (alg === 'HS256') {
    const raw = new TextEncoder().encode(SECRET);
    // Imported once: a raw secret handed to jwtVerify is imported again on every call, which would slow jose down.
    const verify = await webcrypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
    return { sign: raw, verify, jwt: { ...base, secret: SECRET } };
  }
  const pair = await generateKeyPair(alg);
  return { sign: pair.privateKey, verify: pair.publicKey, jwt: { ...base, keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg }] } };
}

/** `count` distinct tokens, valid for an hour from now, signed a few at a time (signing is the slow part of the set-up). */
async function tokens(alg: Alg, key: CryptoKey | Uint8Array, count: number, tag: string): Promise<string[]> {
  const out: string[] = [];
  const iat = Math.floor(Date.now() / 1000);
  for (let i = 0; i < count; i += 64) {
    const batch: Promise<string>[] = [];
    for (let j = i; j < Math.min(count, i + 64); j++) {
      batch.push(
        new SignJWT({ scope: 'orders:read profile', jti: `${tag}-${j}` })
          .setProtectedHeader(alg === 'HS256' ? { alg, typ: 'at+jwt' } : { alg, typ: 'at+jwt', kid: 'k1' })
          .setIssuer(ISSUER)
          .setAudience(AUDIENCE)
          .setSubject('alice')
          .setIssuedAt(iat)
          .setExpirationTime(iat + 3600)
          .sign(key),
      );
    }
    for (const t of await Promise.all(batch)) out.push(flat(t));
  }
  return out;
}

const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** CPU µs per call of `each` over the items, sequentially awaited, after a full GC (not counted). */
async function timed<T>(items: readonly T[], each: (item: T) => Promise<unknown>): Promise<number> {
  gc?.();
  const start = cpuMs();
  for (const item of items) await each(item);
  return ((cpuMs() - start) * 1000) / items.length;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

/**
 * A string in one piece, as Node's HTTP parser hands header values over. A template literal makes a rope instead, which
 * V8 copies into one piece the first time it is read character by character: a cost real requests do not have.
 */
const flat = (s: string): string => Buffer.from(s, 'latin1').toString('latin1');

const request = (token: string): GuardRequest => ({
  method: 'GET',
  path: '/orders/42',
  headers: { host: 'localhost:3000', authorization: flat(`Bearer ${token}`), 'user-agent': 'bench', accept: '*/*' },
  remoteAddress: '127.0.0.1',
});

const rows: Record<string, string>[] = [];
for (const alg of (['ES256', 'RS256', 'HS256'] as const).filter((a) => a.includes(ONLY))) {
  const n = int('N', alg === 'RS256' ? 1000 : 2000);
  const keys = await keysFor(alg);
  const guard = createGuard({ jwt: keys.jwt, rules: [{ methods: ['GET'], path: '/orders/**', scopes: ['orders:read'] }] });
  const options: JWTVerifyOptions = { issuer: ISSUER, audience: AUDIENCE, algorithms: [alg], typ: 'at+jwt', requiredClaims: ['exp'], clockTolerance: 5 };
  let sink = 0;
  const byGuard = async (r: GuardRequest) => {
    const d = await guard.evaluate(r);
    if (d.reason !== 'ok') throw new Error(`${alg}: expected ok, got ${d.reason} (${d.detail ?? ''})`);
    sink += d.status;
  };
  const byJose = async (t: string) => {
    const { payload } = await jwtVerify(t, keys.verify, options);
    sink += payload.jti === undefined ? 0 : 1;
  };
  // Warm-up (JIT) on tokens of their own, so the measured ones stay first-seen.
  const warm = await tokens(alg, keys.sign, Math.min(n, 1000), 'warm');
  for (let k = 0; k < 3; k++) {
    await timed(warm.map(request), byGuard);
    await timed(warm, byJose);
  }
  const guardUs: number[] = [];
  const joseUs: number[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    // Signed just before the round, so none nears its exp whatever the round's length.
    const fresh = await tokens(alg, keys.sign, n, `r${r}`);
    const reqs = fresh.map(request);
    let g: number;
    let j: number;
    if (r % 2) {
      j = await timed(fresh, byJose);
      g = await timed(reqs, byGuard);
    } else {
      g = await timed(reqs, byGuard);
      j = await timed(fresh, byJose);
    }
    guardUs.push(g);
    joseUs.push(j);
    ratios.push(j / g);
  }
  if (sink === 0) throw new Error('nothing was verified');
  rows.push({
    algorithm: alg,
    'guard CPU µs/token': median(guardUs).toFixed(1),
    'jose CPU µs/token': median(joseUs).toFixed(1),
    'ratio (median)': median(ratios).toFixed(3),
    'ratio range': `${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}`,
    tokens: `${ROUNDS} × ${n}`,
  });
}
console.log(
  `first-seen tokens, guard.evaluate vs jose jwtVerify, CPU time, ${ROUNDS} interleaved rounds; ratio = jose CPU time / guard CPU time per token (≥ 1.0: the guard is no slower)`,
);
console.table(rows);
