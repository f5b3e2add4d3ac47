// Differential test of the memo (Check.memo, holder.passed): the same random request sequences go through a guard
// as built and through a guard whose memo is switched off (passStands answers false for its store), and every
// decision, requireScopes decision and audit event must be the same. A sanity test breaks the memo on purpose
// (passStands always true) and expects the differential to notice. `npm test` runs 112 sequences; `npm run fuzz`
// (FUZZ_RUNS set) all 760.
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  createGuard,
  issueApiKey,
  MemoryStore,
  type AuthResult,
  type Decision,
  type DecisionEvent,
  type Guard,
  type GuardRequest,
  type RulePolicy,
  type TokenGuardPolicy,
} from '../../src/index.js';
import { jwtPolicy, NOW, NOW_S, sameTail, signToken, testKeys } from '../helpers/tokens.js';
import { mulberry32 } from '../helpers/prng.js';
import { asyncStore } from '../helpers/stores.js';

vi.mock('../../src/core/registry.js', async (importOriginal) => {
  const m = await importOriginal<typeof import('../../src/core/registry.js')>();
  const g = globalThis as unknown as { __memoWrites?: number; __breakMemo?: boolean };
  return {
    ...m,
    passStands: (...args: Parameters<typeof m.passStands>) => {
      const store = (args[1] as unknown as { e?: { store?: { __noMemo?: boolean } } }).e?.store;
      if (store?.__noMemo === true) return false;
      const stands = g.__breakMemo === true ? true : m.passStands(...args);
      if (stands) g.__memoWrites = (g.__memoWrites ?? 0) + 1;
      return stands;
    },
  };
});

const G = globalThis as unknown as { __memoWrites?: number; __breakMemo?: boolean };
// `npm test` runs a seeded subset; a search (`FUZZ_RUNS` set, as `npm run fuzz` does) runs every sequence.
const FULL = process.env['FUZZ_RUNS'] !== undefined;
const SYNC_SEEDS = FULL ? 400 : 60;
const ASYNC_SEEDS = FULL ? 300 : 40;
const OPAQUE_SEEDS = FULL ? 60 : 12;
afterEach(() => {
  G.__breakMemo = false;
});

type Rnd = () => number;
const pick = <T>(rnd: Rnd, xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
const chance = (rnd: Rnd, p: number): boolean => rnd() < p;

// ---- tokens (signed once) ----
const der = Buffer.from('a client certificate');
const thumb = createHash('sha256').update(der).digest('base64url');
const fingerprint256 = createHash('sha256').update(der).digest('hex').toUpperCase().match(/../g)!.join(':');

/** The id of the forgery that shares the first token's signature (see makeTokens). */
const SAME_TAIL = 'same-tail';

interface Tok {
  token: string;
  id?: string;
  sub: string;
}

async function makeTokens(): Promise<Tok[]> {
  const k = await testKeys();
  const out: Tok[] = [];
  const scopes = ['orders:read', 'orders:read orders:write', 'admin', 'reports:read', 'orders:read admin reports:read', undefined];
  const cnfs = [undefined, undefined, { jkt: 'abc' }, { 'x5t#S256': thumb }, { 'x5t#S256': thumb }, { jwk: {} }, null];
  let n = 0;
  for (const scope of scopes) {
    for (const cnf of cnfs) {
      for (const sub of ['alice', 'bob']) {
        n++;
        const jti = n % 3 === 0 ? undefined : `t-${n}`;
        const iat = n % 4 === 0 ? NOW_S - 3000 : n % 5 === 0 ? NOW_S + 2 : NOW_S - 60;
        const claims: Record<string, unknown> = {};
        if (scope !== undefined) claims['scope'] = scope;
        if (cnf !== undefined) claims['cnf'] = cnf;
        if (jti !== undefined) claims['jti'] = jti;
        if (n % 11 === 0) claims['nbf'] = NOW_S + 120;
        if (n % 3 !== 2) claims['tenant'] = n % 3 === 0 ? 'acme' : 'globex';
        if (n % 7 === 0) {
          claims['auth_time'] = NOW_S - 120;
          claims['amr'] = ['mfa'];
        }
        const alg = n % 2 === 0 ? 'ES256' : 'RS256';
        const exp = n % 5 === 1 ? iat + 900 : iat + 3600;
        out.push({ token: await signToken(claims, { sub, iat, exp, alg }), ...(jti !== undefined && { id: jti }), sub });
      }
    }
  }
  // A token signed by a key the policy does not know, and one for another audience.
  out.push({ token: await signToken({ scope: 'orders:read', jti: 'forged' }, { key: k.otherRsaPrivate }), id: 'forged', sub: 'alice' });
  out.push({ token: await signToken({ scope: 'orders:read', jti: 'aud' }, { aud: 'api://other' }), id: 'aud', sub: 'alice' });
  // Another token's payload under the first one's signature: the same last characters, so the same cache index
  // (tailHash) as a token the guard has verified and cached.
  out.push({ token: sameTail((out[0] as Tok).token), id: SAME_TAIL, sub: 'mallory' });
  return out;
}

// ---- policies ----
const RULES: RulePolicy[] = [
  { path: '/health', public: true },
  { path: '/orders/special', scopes: ['admin'] },
  { methods: ['GET'], path: '/orders/**', scopes: ['orders:read'] },
  { methods: ['POST'], path: '/orders/**', scopes: ['orders:write'] },
  { path: '/Admin/**', scopes: ['admin'] },
  { path: '/reports/**', scopes: { any: ['reports:read', 'admin'] } },
  { path: '/limited/**', scopes: ['orders:read'], rateLimit: { limit: 2, window: '1m' } },
  { path: '/step/**', scopes: ['orders:read'], stepUp: { maxAge: '10m' } },
  { path: '/aged/**', scopes: ['orders:read'], maxTokenAge: '30m' },
  { path: '/net/**', scopes: ['orders:read'], ip: { allow: ['10.0.0.0/8'] } },
  { path: '/tenant/**', scopes: ['orders:read'], claims: { tenant: 'acme' } },
  { path: '/tenant-any/**', claims: { tenant: { oneOf: ['acme', 'globex'] } } },
  // A predicate sees the request: it must never be skipped.
  { path: '/tenant-net/**', claims: (c, r) => c['tenant'] === 'acme' && r.ip !== '192.0.2.7' && r.method === 'GET' },
  // `/files/` and `/files` fall under different rules where the router keeps them apart: a pass memoised for one
  // must never answer the other.
  { path: '/files', public: true },
  { path: '/files/*', scopes: ['admin'] },
  { path: '/files/**', scopes: ['orders:read'] },
];

function randomRules(rnd: Rnd): RulePolicy[] {
  return RULES.filter(() => chance(rnd, 0.85)).map((r) => {
    if (r.public) return r;
    const mode = pick(rnd, [undefined, undefined, 'enforce', 'report-only'] as const);
    return mode === undefined ? r : { ...r, mode };
  });
}

function randomPolicy(rnd: Rnd, jwt: TokenGuardPolicy['jwt']): Omit<TokenGuardPolicy, 'store'> {
  const p: Record<string, unknown> = {
    jwt,
    apiKeys: { prefix: 'tg_' },
    clock: () => NOW,
    rules: randomRules(rnd),
  };
  const mode = pick(rnd, [undefined, 'enforce', 'report-only']);
  if (mode) p['mode'] = mode;
  const dpop = pick(rnd, [undefined, undefined, { origins: ['https://api.example'] }, { origins: ['https://api.example'], required: true }]);
  if (dpop) p['dpop'] = dpop;
  const unmatched = pick(rnd, [undefined, 'deny', 'authenticate']);
  if (unmatched) p['unmatched'] = unmatched;
  const cs = pick(rnd, [undefined, true, false]);
  if (cs !== undefined) p['caseSensitive'] = cs;
  if (chance(rnd, 0.25))
    p['preAuthLimit'] = pick(rnd, [
      { limit: 4, window: '1m' },
      { limit: 2, window: '1m', failedAuth: true },
    ]);
  if (chance(rnd, 0.1)) p['ip'] = { deny: ['192.0.2.0/24'] };
  if (chance(rnd, 0.5)) p['trackUsage'] = false;
  if (chance(rnd, 0.3)) p['realm'] = 'api';
  return p as Omit<TokenGuardPolicy, 'store'>;
}

// ---- stores: plain, or answering every call with a promise ----
function markNoMemo(store: MemoryStore): MemoryStore {
  Object.defineProperty(store, '__noMemo', { value: true, enumerable: false });
  return store;
}

// ---- requests ----
const PATHS = [
  '/orders/1',
  '/Orders/1',
  '/orders/special',
  '/ORDERS/special',
  '/Admin/x',
  '/admin/x',
  '/reports/q',
  '/limited/1',
  '/health',
  '/nowhere',
  '/step/1',
  '/aged/1',
  '/net/1',
  '/tenant/1',
  '/tenant-any/1',
  '/tenant-net/1',
  '/orders/1?x=1',
  '/orders//1',
  '/orders/../Admin/x',
  '/health/',
  '/files',
  '/files/',
  '/files/a',
  '/orders/1/',
];
const TIMES = [0, 0, 0, 0, 0, 0, 1_000, 100_000, 20 * 60_000, 40 * 60_000, 59 * 60_000, 61 * 60_000, -5 * 60_000, 2 * 3_600_000];

function randomRequest(rnd: Rnd, toks: Tok[], apiKey: string, paths: readonly string[] = PATHS): GuardRequest {
  const t = chance(rnd, 0.05) ? apiKey : chance(rnd, 0.02) ? 'garbage!!' : pick(rnd, toks).token;
  const scheme = pick(rnd, ['Bearer', 'Bearer', 'Bearer', 'Bearer', 'bearer', 'BEARER', 'DPoP', 'Basic']);
  // Mostly the one spelling the header cache keeps (scheme, one SP, token); now and then one it must not read as it.
  const value = chance(rnd, 0.6) ? `${scheme} ${t}` : pick(rnd, [`${scheme}  ${t}`, `${scheme} ${t} `, `${scheme}\t${t}`, ` ${scheme} ${t}`]);
  const headers: Record<string, string | string[] | undefined> = {};
  const shape = rnd();
  if (shape < 0.8) headers['authorization'] = value;
  else if (shape < 0.88) headers['authorization'] = [value];
  else if (shape < 0.93) headers['authorization'] = [value, value];
  if (chance(rnd, 0.08)) headers['dpop'] = 'not.a.proof';
  if (chance(rnd, 0.2)) headers['user-agent'] = 'ua/1';
  const r: GuardRequest = {
    method: pick(rnd, ['GET', 'GET', 'POST', 'HEAD', 'get', 'DELETE']),
    path: pick(rnd, paths),
    headers,
    remoteAddress: pick(rnd, ['10.1.2.3', '10.1.2.3', '192.0.2.7', '2001:db8::1']),
    now: new Date(NOW.getTime() + pick(rnd, TIMES)),
  };
  if (chance(rnd, 0.4)) r.peerCertificate = { fingerprint256: pick(rnd, [fingerprint256, fingerprint256, 'AA:BB']) };
  if (chance(rnd, 0.2)) r.caseSensitive = pick(rnd, [true, false, 'mixed'] as const);
  if (chance(rnd, 0.3)) r.ignoreTrailingSlash = chance(rnd, 0.5);
  return r;
}

// ---- comparison ----
const normEvent = (e: DecisionEvent): unknown => {
  const { latencyUs: _l, ...rest } = e;
  return rest;
};
const norm = (x: unknown): string => JSON.stringify(x, (_k, v: unknown) => (v instanceof Date ? `D:${v.toISOString()}` : v));

interface Side {
  guard: Guard;
  events: unknown[];
  last: AuthResult | undefined;
}

function side(policy: Omit<TokenGuardPolicy, 'store'>, store: MemoryStore): Side {
  const s: Side = { guard: undefined as unknown as Guard, events: [], last: undefined };
  s.guard = createGuard({ ...policy, store, onDecision: (e: DecisionEvent) => s.events.push(normEvent(e)) } as unknown as TokenGuardPolicy);
  return s;
}

/** Runs one random sequence on both guards; the first difference, or undefined. */
async function runSequence(seed: number, toks: Tok[], steps: number, async: boolean): Promise<string | undefined> {
  const rnd = mulberry32(seed);
  const jwtChoice = pick(rnd, ['one', 'one', 'multi']);
  const base = await jwtPolicy({ clockTolerance: pick(rnd, [undefined, '0s', '30s']) } as never);
  const jwt: TokenGuardPolicy['jwt'] =
    jwtChoice === 'one'
      ? base
      : ([
          { ...base, name: 'a' },
          { ...base, name: 'b', issuer: 'https://other.example/' },
        ] as TokenGuardPolicy['jwt']);
  const policy = randomPolicy(rnd, jwt);
  const key = issueApiKey({ prefix: 'tg_', subject: 'svc', scopes: ['orders:read'], expiresIn: '30d', now: new Date(NOW.getTime() - 86_400_000) });
  const s1 = new MemoryStore();
  const s2 = new MemoryStore();
  await s1.putApiKey(key.record);
  await s2.putApiKey(key.record);
  // Each sequence works a few tokens on a few paths, so a token comes back to a rule it passed.
  const all = toks;
  toks = Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => pick(rnd, all));
  // Now and then a cached token and the forgery that shares its signature (its cache index) in one sequence.
  if (chance(rnd, 0.2)) toks.push(all[0] as Tok, all.find((t) => t.id === SAME_TAIL) as Tok);
  const paths = ['/orders/1', ...Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => pick(rnd, PATHS))];
  const on = side(policy, async ? asyncStore(s1) : s1);
  const off = side(policy, markNoMemo(async ? asyncStore(s2) : s2));
  const log: string[] = [`seed ${seed} async=${async} policy=${norm({ ...policy, jwt: jwtChoice })}`];
  for (let i = 0; i < steps; i++) {
    const op = rnd();
    if (op < 0.04) {
      const t = pick(rnd, toks);
      const id = t.id ?? 'none';
      const now = new Date(NOW.getTime() + pick(rnd, TIMES));
      log.push(`revoke ${id} at ${now.toISOString()}`);
      await on.guard.revoke(id, { now });
      await off.guard.revoke(id, { now });
    } else if (op < 0.08) {
      const sub = pick(rnd, ['alice', 'bob']);
      const before = NOW.getTime() + pick(rnd, [-3_000_000, -120_000, -30_000, 0, 1_000, 60_000]);
      log.push(`revokeSubject ${sub} before ${before - NOW.getTime()}`);
      await on.guard.revokeSubject(sub, { before, now: NOW });
      await off.guard.revokeSubject(sub, { before, now: NOW });
    } else if (op < 0.1) {
      log.push('clearTokenCache');
      on.guard.clearTokenCache();
      off.guard.clearTokenCache();
    } else if (op < 0.18 && on.last && off.last) {
      const scopes = pick(rnd, [['orders:read'], ['admin'], { any: ['reports:read', 'orders:write'] }]);
      const r = randomRequest(rnd, toks, key.key, paths);
      log.push(`authorize ${norm(scopes)} ${r.method} ${r.path}`);
      const a = on.guard.authorize(on.last, scopes, r);
      const b = off.guard.authorize(off.last, scopes, r);
      if (norm(a) !== norm(b)) return `${log.join('\n')}\nauthorize differs:\n memo: ${norm(a)}\n none: ${norm(b)}`;
    } else if (async && op < 0.3) {
      // A burst of concurrent requests on each guard (same order, same microtask structure).
      const rs = Array.from({ length: 2 + Math.floor(rnd() * 4) }, () => randomRequest(rnd, toks, key.key, paths));
      log.push(`burst ${rs.map((r) => `${r.method} ${r.path} ${norm(r.headers)} t=${r.now!.getTime() - NOW.getTime()}`).join(' | ')}`);
      const [a, b] = await Promise.all([Promise.all(rs.map((r) => on.guard.evaluate(r))), Promise.all(rs.map((r) => off.guard.evaluate(r)))]);
      if (norm(a) !== norm(b)) return `${log.join('\n')}\nburst differs:\n memo: ${norm(a)}\n none: ${norm(b)}`;
      const la = a[a.length - 1] as Decision;
      const lb = b[b.length - 1] as Decision;
      on.last = { token: la.token, decision: la };
      off.last = { token: lb.token, decision: lb };
    } else {
      const r = randomRequest(rnd, toks, key.key, paths);
      log.push(
        `${r.method} ${r.path} ${norm(r.headers)} ip=${r.remoteAddress} t=${r.now!.getTime() - NOW.getTime()} cert=${r.peerCertificate ? 'y' : 'n'} cs=${r.caseSensitive}`,
      );
      const a = await on.guard.decide(r);
      const b = await off.guard.decide(r);
      if (norm(a) !== norm(b)) return `${log.join('\n')}\ndecision differs:\n memo: ${norm(a)}\n none: ${norm(b)}`;
      on.last = { token: a.token, decision: a };
      off.last = { token: b.token, decision: b };
    }
    if (norm(on.events) !== norm(off.events)) return `${log.join('\n')}\naudit events differ:\n memo: ${norm(on.events.at(-1))}\n none: ${norm(off.events.at(-1))}`;
  }
  return undefined;
}

describe('memo: differential (memo on vs off give the same decisions and events)', () => {
  let toks: Tok[] | undefined;
  const tokens = async () => (toks ??= await makeTokens());

  it('the disabled variant really disables it, and a broken memo is caught', async () => {
    const t = await tokens();
    G.__memoWrites = 0;
    let found: string | undefined;
    G.__breakMemo = true;
    for (let seed = 1; seed <= 400 && !found; seed++) found = await runSequence(seed, t, 60, false);
    G.__breakMemo = false;
    expect(found, 'a memo that ignores the binding check must be caught').toBeDefined();
  }, 120_000);

  it('synchronous store: random sequences agree', async () => {
    const t = await tokens();
    G.__memoWrites = 0;
    for (let seed = 1000; seed < 1000 + SYNC_SEEDS; seed++) {
      const diff = await runSequence(seed, t, 80, false);
      expect(diff).toBeUndefined();
    }
    // The memo was in play (recorded passes), so the sequences exercised it.
    expect(G.__memoWrites).toBeGreaterThan(SYNC_SEEDS / 10);
  }, 300_000);

  it('store answering with promises, with concurrent bursts: random sequences agree', async () => {
    const t = await tokens();
    G.__memoWrites = 0;
    for (let seed = 5000; seed < 5000 + ASYNC_SEEDS; seed++) {
      const diff = await runSequence(seed, t, 80, true);
      expect(diff).toBeUndefined();
    }
    expect(G.__memoWrites).toBeGreaterThan(ASYNC_SEEDS / 10);
  }, 300_000);
});

describe('memo: differential with introspected (opaque) tokens', () => {
  it('opaque tokens (bound and unbound, answers that change at the server) agree with and without the memo', async () => {
    // The server's answer per token can change between requests (deactivated, rescoped): with cacheMaxAge the
    // guard keeps its cached answer either way; without, it asks again (a new holder each time).
    const answers: Record<string, Record<string, unknown>> = {};
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const token = new URLSearchParams(Buffer.concat(chunks).toString()).get('token') ?? '';
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(answers[token] ?? { active: false }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/introspect`;
    try {
      const OPAQUE = ['opaque-AAAAAAAAAAAAAAAAAAAAAAAA', 'opaque-BBBBBBBBBBBBBBBBBBBBBBBB', 'opaque-CCCCCCCCCCCCCCCCCCCCCCCC'];
      const variants = [
        { active: true, sub: 'alice', scope: 'orders:read', exp: NOW_S + 3600, iat: NOW_S - 60, jti: 'op-a' },
        { active: true, sub: 'bob', scope: 'orders:read admin', exp: NOW_S + 600, iat: NOW_S - 60 },
        { active: true, sub: 'alice', scope: 'orders:read', exp: NOW_S + 3600, cnf: { 'x5t#S256': thumb }, jti: 'op-c' },
        { active: true, sub: 'alice', scope: 'reports:read', exp: NOW_S + 3600 },
        { active: false },
      ];
      G.__memoWrites = 0;
      for (let seed = 1; seed <= OPAQUE_SEEDS; seed++) {
        const rnd = mulberry32(seed * 7919);
        for (const t of OPAQUE) answers[t] = pick(rnd, variants);
        const policy = {
          jwt: await jwtPolicy(),
          introspection: { endpoint: url, clientId: 'rs', clientSecret: 'secret', cacheMaxAge: pick(rnd, ['0s', '60s']) },
          clock: () => NOW,
          mode: pick(rnd, ['enforce', 'report-only'] as const),
          ...(chance(rnd, 0.3) && { dpop: { origins: ['https://api.example'], required: chance(rnd, 0.5) } }),
          rules: randomRules(rnd).filter((r) => !r.public),
        } as Omit<TokenGuardPolicy, 'store'>;
        const on = side(policy, new MemoryStore());
        const off = side(policy, markNoMemo(new MemoryStore()));
        const log: string[] = [`seed ${seed} ${norm(policy)}`];
        for (let i = 0; i < 40; i++) {
          const op = rnd();
          if (op < 0.1) {
            const t = pick(rnd, OPAQUE);
            answers[t] = pick(rnd, variants);
            log.push(`server now answers ${norm(answers[t])} for ${t}`);
            continue;
          }
          if (op < 0.15) {
            const sub = pick(rnd, ['alice', 'bob']);
            log.push(`revokeSubject ${sub}`);
            await on.guard.revokeSubject(sub, { now: NOW });
            await off.guard.revokeSubject(sub, { now: NOW });
            continue;
          }
          const r: GuardRequest = {
            method: pick(rnd, ['GET', 'POST']),
            path: pick(rnd, ['/orders/1', '/Admin/x', '/reports/q', '/nowhere']),
            headers: { authorization: `${pick(rnd, ['Bearer', 'bearer', 'DPoP'])} ${pick(rnd, OPAQUE)}` },
            remoteAddress: '10.1.2.3',
            now: new Date(NOW.getTime() + pick(rnd, [0, 0, 30_000, 700_000])),
            ...(chance(rnd, 0.5) && { peerCertificate: { fingerprint256 } }),
          };
          log.push(`${r.method} ${r.path} ${norm(r.headers)}`);
          const a = await on.guard.evaluate(r);
          const b = await off.guard.evaluate(r);
          expect(norm(a), log.join('\n')).toBe(norm(b));
        }
        expect(norm(on.events), log.join('\n')).toBe(norm(off.events));
      }
      expect(G.__memoWrites).toBeGreaterThan(0);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  }, 120_000);
});
