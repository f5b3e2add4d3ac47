// Property: guard.evaluate on random requests never throws, answers 5xx only as 503 from a failing store,
// and never allows a guarded rule without a valid token that carries the rule's scopes.
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createGuard, issueApiKey, MemoryStore, type Decision, type Guard, type GuardRequest, type TokenGuardPolicy, type TokenStore } from '../../src/index.js';
import { wrapStore } from '../helpers/stores.js';
import { HMAC_SECRET, NOW, NOW_S, basePolicy, signToken, unsignedToken } from '../helpers/tokens.js';
import { FUZZ_TIMEOUT, fuzzParams } from './runs.js';

const RULES: NonNullable<TokenGuardPolicy['rules']> = [
  { path: '/health', public: true },
  { methods: ['GET'], path: '/orders/*/items/**', scopes: ['orders:read'] },
  { path: '/orders/**', scopes: ['orders:write'] },
  { path: '/admin/**', scopes: ['admin'], ip: { allow: ['10.0.0.0/8'] } },
  { path: '/reports/**', scopes: ['reports:read'], mode: 'report-only' },
];
/** The scopes a rule demands (by index), for the "no allow without the scopes" check. */
/** A decision names its rule; the fuzz checks look the rule up by that name (each rule's default name is unique). */
const ruleIndex = (name: string | undefined): number =>
  name === undefined ? -1 : RULES.findIndex((r) => name === `${r.methods ? r.methods.flatMap((m) => (m === 'GET' ? ['GET', 'HEAD'] : [m])).join(',') : '*'} ${r.path}`);
const RULE_SCOPES: (string | undefined)[] = RULES.map((r) => (Array.isArray(r.scopes) ? (r.scopes[0] as string) : undefined));

interface Pool {
  /** Credentials that are valid (signature, issuer, expiry, unrevoked), with the scopes each grants. */
  valid: Map<string, string[]>;
  /** Everything a client may send: valid, expired, forged, revoked, mistyped, garbage. */
  all: string[];
}
let pool: Pool;
const freshStore = () => new MemoryStore({ maxApiKeys: 64, maxCounters: 4096, maxUsage: 1024 });
let store: MemoryStore;

beforeAll(async () => {
  store = freshStore();
  const valid = new Map<string, string[]>();
  const all: string[] = [];
  for (const scope of ['orders:read', 'orders:write', 'admin', 'reports:read', 'orders:read admin', '']) {
    const t = await signToken(scope ? { scope, jti: `jwt-${scope}` } : { jti: 'jwt-none' });
    valid.set(t, scope ? scope.split(' ') : []);
    all.push(t);
  }
  all.push(
    await signToken({ scope: 'admin' }, { iat: NOW_S - 7200, exp: NOW_S - 3600 }), // expired
    await signToken({ scope: 'admin' }, { iss: 'https://evil.example/' }),
    await signToken({ scope: 'admin' }, { alg: 'HS256', key: new TextEncoder().encode(`${HMAC_SECRET}-other`) }),
    await signToken({ scope: 'admin', cnf: { jkt: 'x'.repeat(43) } }), // DPoP-bound, no proof
    unsignedToken({ iss: 'https://id.example.test/', aud: 'api://orders', sub: 'mallory', scope: 'admin', exp: NOW_S + 3600 }),
  );
  const revokedJwt = await signToken({ scope: 'admin', jti: 'jwt-revoked' });
  store.revoke('jwt-revoked', { now: NOW.getTime() - 1000, expiresAt: NOW.getTime() + 86_400_000 });
  all.push(revokedJwt);
  const issue = (scopes: string[], extra: object = {}) => {
    const { key, record } = issueApiKey({ prefix: 'tg_', subject: 'svc', scopes, expiresIn: '30d', now: new Date(NOW.getTime() - 86_400_000), ...extra });
    store.putApiKey(record);
    return { key, record };
  };
  for (const scopes of [['orders:read'], ['admin'], ['orders:write', 'reports:read']]) {
    const { key } = issue(scopes);
    valid.set(key, scopes);
    all.push(key);
  }
  const revoked = issue(['admin']);
  store.revoke(revoked.record.id, { now: NOW.getTime() - 1000 });
  const expired = issue(['admin'], { expiresIn: '1h' });
  const unknown = issueApiKey({ prefix: 'tg_', subject: 'x', scopes: ['admin'], expiresIn: '1d' }).key;
  const good = [...valid.keys()].find((k) => k.startsWith('tg_')) as string;
  all.push(revoked.key, expired.key, unknown, `${good.slice(0, -1)}${good.endsWith('A') ? 'B' : 'A'}`, 'tg_', 'a.b.c', '...', 'e30.e30.', 'x'.repeat(9000));
  pool = { valid, all };
});

const method = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('GET', 'get', 'HEAD', 'POST', 'DELETE', 'OPTIONS', 'PATCH') },
  { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
);
// Mostly paths that read cleanly, so that most requests get as far as the token and the rules.
const path = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('/orders/1/items', '/orders/7/items/2', '/orders/1', '/admin/x', '/reports/q3', '/health', '/elsewhere') },
  fc.constantFrom(
    '/health',
    '/HEALTH',
    '/health/',
    '/health?x=1',
    '/orders/1/items',
    '/orders/1/items/2',
    '/orders/1',
    '/orders',
    '/admin',
    '/admin/x',
    '/ADMIN/x',
    '/reports/q3',
    '/elsewhere',
    '/',
    '//admin',
    '/%61dmin',
    '/admin/%2e%2e/health',
    '/health/../admin',
    '/admin%2Fx',
    '/orders/1/items;x',
    '*',
    '',
  ),
  fc.array(fc.constantFrom('orders', 'admin', 'health', 'items', '1', '%2e', '..', '', 'Admin', '%41', 'ü', '%C3%BC', '%ff'), { maxLength: 5 }).map((s) => `/${s.join('/')}`),
  fc.string({ unit: 'binary', maxLength: 30 }),
);
const credential = () => fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...pool.all) }, { weight: 1, arbitrary: fc.string({ maxLength: 30 }) });
const authValue = () =>
  fc.oneof(
    { weight: 3, arbitrary: credential().map((c) => `Bearer ${c}`) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.constantFrom('Bearer', 'bearer', 'DPoP', 'Basic', 'Bearer,', ''), fc.constantFrom(' ', '  ', '\t', ''), credential())
        .map(([s, sep, c]) => `${s}${sep}${c}`),
    },
  );
const authorization = () =>
  fc.oneof({ weight: 8, arbitrary: authValue() }, { weight: 1, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.array(authValue(), { maxLength: 3 }) });
const address = fc.oneof(fc.constantFrom('10.1.2.3', '203.0.113.9', '::ffff:10.0.0.1', '2001:db8::1', '::1', '', 'unknown', '010.0.0.1'), fc.string({ maxLength: 12 }));
const xff = fc.option(
  fc.oneof(
    fc.array(address, { maxLength: 4 }).map((a) => a.join(', ')),
    fc.array(address, { maxLength: 2 }),
  ),
);
const request = () =>
  fc
    .record({
      method,
      path,
      authorization: authorization(),
      dpop: fc.oneof(
        { weight: 4, arbitrary: fc.constant(null) },
        { weight: 1, arbitrary: fc.oneof(fc.string({ maxLength: 20 }), fc.array(fc.string({ maxLength: 5 }), { maxLength: 2 })) },
      ),
      remoteAddress: fc.option(address),
      xff,
      ua: fc.option(fc.string({ maxLength: 20 })),
      skew: fc.oneof(fc.constant(0), fc.integer({ min: -600, max: 600 })),
    })
    .map((r): GuardRequest => {
      const headers: GuardRequest['headers'] = {};
      if (r.authorization !== undefined) headers['authorization'] = r.authorization;
      if (r.dpop !== null) headers['dpop'] = r.dpop;
      if (r.xff !== null) headers['x-forwarded-for'] = r.xff;
      if (r.ua !== null) headers['user-agent'] = r.ua;
      return { method: r.method, path: r.path, headers, remoteAddress: r.remoteAddress as string, now: new Date(NOW.getTime() + r.skew * 1000) };
    });

/** The credential a request carries, if it carries exactly one header. */
function credentialOf(req: GuardRequest): string | undefined {
  const a = req.headers['authorization'];
  const v = Array.isArray(a) ? (a.length === 1 ? a[0] : undefined) : a;
  return v?.trim().split(/\s+/)[1];
}

function checkDecision(d: Decision, req: GuardRequest, failing: boolean): void {
  const where = `${req.method} ${JSON.stringify(req.path)} ${JSON.stringify(req.headers)} from ${JSON.stringify(req.remoteAddress)}`;
  expect([200, 400, 401, 403, 429, 503], where).toContain(d.status);
  if (d.status === 503) {
    expect(failing, `503 from a healthy store (${d.detail}): ${where}`).toBe(true);
    expect(d.reason).toBe('store.unavailable');
  }
  if (d.effect !== 'allow') return;
  expect(d.reason).toBe('ok');
  const index = ruleIndex(d.rule);
  if (d.rule !== undefined) expect(index, `unknown rule name ${d.rule}`).toBeGreaterThanOrEqual(0);
  const rule = RULES[index];
  if (rule?.public) return;
  const cred = credentialOf(req);
  const scopes = cred === undefined ? undefined : pool.valid.get(cred);
  expect(scopes, `allowed without a valid token: ${where}`).toBeDefined();
  expect(failing, `allowed a guarded rule through a failing store: ${where}`).toBe(false);
  const needed = RULE_SCOPES[index];
  if (needed !== undefined && rule?.mode !== 'report-only') expect(scopes, where).toContain(needed);
}

async function policy(overrides: Partial<TokenGuardPolicy>): Promise<TokenGuardPolicy> {
  return basePolicy({ rules: RULES, trustProxy: ['10.0.0.0/8', '::1'], rateLimit: { limit: 1_000_000, window: '1m' }, ...overrides });
}

/** A store whose every call fails: a throw or a rejection, chosen per call from `modes`. */
function failingStore(inner: TokenStore, modes: { current: boolean[] }): TokenStore {
  let n = 0;
  return wrapStore(inner, () => {
    if (modes.current[n++ % modes.current.length]) throw new Error('store down');
    return Promise.reject(new Error('store down'));
  });
}

describe('fuzz: guard.evaluate on random requests', () => {
  const cases: [string, Partial<TokenGuardPolicy>][] = [
    ['enforce, unmatched deny', {}],
    ['enforce, unmatched authenticate, case-sensitive', { unmatched: 'authenticate', caseSensitive: true }],
    ['report-only policy', { mode: 'report-only' }],
  ];
  for (const [name, overrides] of cases) {
    it(
      `never throws, never 5xx, never allows without a valid token (${name})`,
      async () => {
        const guard: Guard = createGuard(await policy({ ...overrides, store }));
        await fc.assert(
          fc.asyncProperty(request(), async (req) => checkDecision(await guard.evaluate(req), req, false)),
          fuzzParams(1 / cases.length),
        );
      },
      FUZZ_TIMEOUT,
    );
  }

  it(
    'answers 503 store.unavailable, and only that, when every store call fails',
    async () => {
      const modes = { current: [true] };
      const guard = createGuard(await policy({ store: failingStore(store, modes), unmatched: 'authenticate' }));
      await fc.assert(
        fc.asyncProperty(fc.array(fc.boolean(), { minLength: 1, maxLength: 4 }), request(), fc.constantFrom('Bearer', 'bearer'), fc.nat(), async (m, req, scheme, pick) => {
          modes.current = m;
          checkDecision(await guard.evaluate(req), req, true);
          // The same request with a credential valid at NOW, read cleanly: the store is asked, so the answer is 503.
          const valid = [...pool.valid.keys()];
          const clean: GuardRequest = { ...req, now: NOW, headers: { ...req.headers, authorization: `${scheme} ${valid[pick % valid.length] as string}` } };
          delete clean.headers['dpop'];
          const d = await guard.evaluate(clean);
          checkDecision(d, clean, true);
          const rule = RULES[ruleIndex(d.rule)];
          if (d.reason !== 'request.malformed' && !rule?.public) expect([d.status, d.reason], JSON.stringify(clean)).toEqual([503, 'store.unavailable']);
        }),
        fuzzParams(0.5),
      );
    },
    FUZZ_TIMEOUT,
  );
});
