// `tsx --tsconfig bench/tsconfig.json bench/pre-auth.bench.ts` (after `npm run build`): what preAuthLimit by 'ip+subject'
// costs over by 'ip' on the path a flood takes (forged JWTs from one IP, already over the limit: refused before
// verification), as a ratio of CPU time within one run, in interleaved rounds (the machine is shared: absolute numbers
// are noise, the ratio is what this reports, with its median over the rounds).
import { createGuard, MemoryStore, type Guard, type GuardRequest, type TokenGuardPolicy } from 'token-guard';

const NOW = new Date('2026-11-25T10:00:00Z');
const iat = Math.floor(NOW.getTime() / 1000);
const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
// A realistic payload (about 600 bytes) with the claimed sub after other claims.
const forged = (sub: string) =>
  `${enc({ alg: 'RS256', kid: 'k1' })}.${enc({ iss: 'https://id.example.com/', aud: 'api://orders', iat, exp: iat + 3600, scope: 'orders:read orders:write reports:read', org: { id: 'acme', roles: ['a', 'b', 'c'] }, amr: ['pwd', 'mfa'], sid: 'x'.repeat(300), sub })}.${'s'.repeat(342)}`;

const base = (preAuthLimit: TokenGuardPolicy['preAuthLimit']): TokenGuardPolicy => ({
  jwt: { issuer: 'https://id.example.com/', audience: 'api://orders', algorithms: ['HS256'], secret: 'bench-secret-that-is-at-least-32-bytes-long!!' },
  store: new MemoryStore(),
  trackUsage: false,
  unmatched: 'authenticate',
  preAuthLimit,
});

const guards: [string, Guard][] = [
  ['ip', createGuard(base({ limit: 1, window: '1h' }))],
  ['ip+subject', createGuard(base({ limit: 1, window: '1h', by: 'ip+subject' }))],
];
const requests: GuardRequest[] = Array.from({ length: 64 }, (_, i) => ({
  method: 'GET',
  path: '/orders/1',
  headers: { authorization: `Bearer ${forged(`user-${i % 4}`)}` },
  remoteAddress: '198.51.100.7',
  now: NOW,
}));

function cpuMicros(guard: Guard, n: number): number {
  const start = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const d = guard.decide(requests[i & 63] as GuardRequest);
    if (d instanceof Promise) throw new Error('the flood path must answer synchronously');
    if (d.reason !== 'rate.limited') throw new Error(`expected rate.limited, got ${d.reason}`);
  }
  const used = process.cpuUsage(start);
  return (used.user + used.system) / n;
}

// Spend each bucket's one request (verified, asynchronously): from then on every request is refused before verification.
for (const [, g] of guards) for (const r of requests.slice(0, 4)) await g.evaluate(r);
const N = 20_000;
for (const [, g] of guards) cpuMicros(g, N); // warm-up
const per: Record<string, number[]> = { ip: [], 'ip+subject': [] };
const ratios: number[] = [];
for (let round = 0; round < 15; round++) {
  // Alternate which goes first, so neither always runs on a warmer or quieter core.
  const order = round % 2 === 0 ? guards : [...guards].reverse();
  const t: Record<string, number> = {};
  for (const [name, g] of order) t[name] = cpuMicros(g, N);
  per.ip?.push(t.ip as number);
  per['ip+subject']?.push(t['ip+subject'] as number);
  ratios.push((t['ip+subject'] as number) / (t.ip as number));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
console.log(`preAuthLimit flood path (refused, forged JWT ~${forged('user-0').length} bytes), CPU µs per decision, median of 15 rounds:`);
console.log(`  by 'ip':         ${median(per.ip ?? []).toFixed(2)} µs`);
console.log(`  by 'ip+subject': ${median(per['ip+subject'] ?? []).toFixed(2)} µs`);
console.log(`  ratio ip+subject / ip: median ${median(ratios).toFixed(2)} (min ${Math.min(...ratios).toFixed(2)}, max ${Math.max(...ratios).toFixed(2)})`);
