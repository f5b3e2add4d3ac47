// The world every scenario runs in: one policy (and two variants), its fixtures, a fake clock and the
// client address the next request comes from. Each adapter run builds a fresh world.
import { createGuard, MemoryStore, issueApiKey, type TokenGuardPolicy, type TokenStore } from '../../src/index.js';
import { NOW, NOW_S, jwtPolicy, signToken, storeApiKey, testKeys } from '../helpers/tokens.js';

/** A reverse proxy the policy trusts (`trustProxy`): its X-Forwarded-For is believed. */
export const PROXY = '192.0.2.10';
/** An ordinary client on the internet. */
export const OUTSIDE = '203.0.113.9';
/** A client inside the admin allow-list (10.0.0.0/8). */
export const OFFICE = '10.1.2.3';
/** Another internet client, not a proxy, who may forge X-Forwarded-For. */
export const STRANGER = '198.51.100.4';

/** Which app a case talks to: the main policy, the same rules (and store) in policy-level report-only, a store that fails, or the main policy with `preflight: 'pass'`. */
export type Variant = 'main' | 'report-only' | 'broken-store' | 'preflight' | 'idp-down';

/** A second issuer whose JWK Set nobody serves (port 1 on loopback refuses connections): its tokens meet an IdP outage. */
export const DOWN_ISSUER = 'https://down.example.test/';

/** Credentials the cases send. Made once per world, since signing is async and API keys live in its store. */
export interface Fixtures {
  /** JWT with `orders:read`. */
  read: string;
  /** JWT with `orders:read` from DOWN_ISSUER, whose keys cannot be fetched (variant `idp-down`). */
  downIssuer: string;
  /** JWT with `orders:read` and the claim `tenant: 'acme'`. */
  acme: string;
  /** JWT with `orders:write`, no recent MFA. */
  write: string;
  /** JWT with `orders:write`, MFA one minute ago. */
  writeMfa: string;
  /** JWT with `admin`. */
  admin: string;
  /** JWT with `reports:read`. */
  reports: string;
  /** JWT with `reports:read`, issued on SATURDAY (so only the hours rule can refuse it then). */
  reportsSaturday: string;
  /** JWT with `things:read` (the scope `requireScopes` asks for). */
  things: string;
  /** JWT with `orders:read` that expired an hour ago. */
  expired: string;
  /** JWT with `orders:read` not valid before an hour from now. */
  notYetValid: string;
  /** JWT signed with a key the policy does not know. */
  foreignKey: string;
  /** JWT for another audience. */
  wrongAudience: string;
  /** JWT whose `jti` is revoked in the store. */
  revoked: string;
  /** JWT bound to a client certificate (`cnf.x5t#S256`). */
  certBound: string;
  /** JWT with `orders:read` whose rule-level rate limit (1 per hour on /limited) is already spent. */
  limited: string;
  /** API key with `orders:read`. */
  apiKey: string;
  /** API key revoked in the store. */
  apiKeyRevoked: string;
  /** API key with one use, already taken. */
  apiKeyUsedUp: string;
  /** A well-formed API key (checksum fine) that no store knows. */
  apiKeyUnknown: string;
  /** An API key with one character changed: its checksum fails. */
  apiKeyMangled: string;
  /** A token longer than the policy's `maxTokenBytes`. */
  oversized: string;
}

/** The scenario policy's rules; the comment on each says which cases lean on it. */
const RULES: NonNullable<TokenGuardPolicy['rules']> = [
  { path: '/health', public: true },
  { methods: ['GET'], path: '/orders/**', scopes: ['orders:read'] },
  { methods: ['POST', 'PUT', 'PATCH', 'DELETE'], path: '/orders/**', scopes: ['orders:write'], stepUp: { maxAge: '10m', amr: ['mfa'] } },
  // NOW (Wednesday 11:00 in Berlin) is inside; Saturday is not.
  {
    path: '/reports/**',
    scopes: { any: ['reports:read', 'admin'] },
    hours: { timezone: 'Europe/Berlin', windows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '08:00', to: '18:00' }] },
  },
  { path: '/admin/**', scopes: ['admin'], ip: { allow: ['10.0.0.0/8'] } },
  { path: '/beta/**', scopes: ['beta'], mode: 'report-only' },
  // Enforced even under the report-only variant: "trial everything but keep /vault enforced".
  { path: '/vault/**', scopes: ['admin'], mode: 'enforce' },
  { path: '/limited/**', scopes: ['orders:read'], rateLimit: { limit: 1, window: '1h' } },
  // Any valid token; the route itself adds requireScopes('things:read').
  { path: '/things/**' },
  { path: '/boom' },
  // Claims: only tokens of tenant acme.
  { path: '/tenants/acme/**', claims: { tenant: 'acme' } },
];

/** A store that is down: lookups throw synchronously, everything else rejects. */
export class BrokenStore implements TokenStore {
  private fail(): Promise<never> {
    return Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:6379'));
  }
  getApiKey(): never {
    throw new Error('connect ECONNREFUSED 127.0.0.1:6379');
  }
  putApiKey = () => this.fail();
  updateApiKey = () => this.fail();
  deleteApiKey = () => this.fail();
  useApiKey = () => this.fail();
  revoke = () => this.fail();
  revokeSubject = () => this.fail();
  getRevocation = () => this.fail();
  consume = () => this.fail();
  recordUsage = () => this.fail();
  getUsage = () => this.fail();
  claimOnce = () => this.fail();
}

/** Saturday 2026-11-28 11:00 in Berlin: outside the reports rule's hours. */
export const SATURDAY = new Date('2026-11-28T10:00:00Z');

/** Everything one adapter run shares: mutable clock and peer address, fixtures, and the policies. */
export interface World {
  /** What the policy's clock returns; each case sets it. */
  now: Date;
  /** The socket address of the next request; undefined models a unix socket or a bare test harness. */
  peer: string | undefined;
  fixtures: Fixtures;
  /** The policy of a variant (each variant's store is created once, so call it once per app). */
  policy(variant: Variant): TokenGuardPolicy;
}

/** Builds a world: signs the tokens, stores the API keys, and spends what must be spent. */
export async function createWorld(): Promise<World> {
  const store = new MemoryStore();
  const keys = await testKeys();
  const jwt = await jwtPolicy();
  const world: World = {
    now: NOW,
    peer: OUTSIDE,
    fixtures: undefined as unknown as Fixtures,
    policy(variant) {
      return {
        jwt,
        apiKeys: { prefix: 'tg_' },
        // Never the wall clock: every case sets world.now.
        clock: () => world.now,
        trustProxy: [PROXY],
        rules: RULES,
        // Deterministic risk: a scanner's User-Agent is refused, a raw HTTP tool must step up.
        risk: { custom: { tooling: (ctx) => (/sqlmap|nikto/i.test(ctx.userAgent ?? '') ? 100 : /curl\//i.test(ctx.userAgent ?? '') ? 50 : 0) }, stepUpAt: 50, denyAt: 100 },
        ...(variant === 'main' && { store }),
        // The main store, so that its revocations hold on the report-only variant's enforced rule too.
        ...(variant === 'report-only' && { store, mode: 'report-only' as const }),
        ...(variant === 'broken-store' && { store: new BrokenStore(), storeTimeout: '200ms' }),
        ...(variant === 'preflight' && { store, preflight: 'pass' as const }),
        ...(variant === 'idp-down' && {
          store,
          jwt: [jwt, { issuer: DOWN_ISSUER, audience: jwt.audience, algorithms: ['RS256' as const], jwksUri: 'http://127.0.0.1:1/jwks.json', jwks: { timeout: '2s' } }],
        }),
      };
    },
  };

  const apiKey = await storeApiKey(store);
  const apiKeyRevoked = await storeApiKey(store, { subject: 'svc-old' });
  const apiKeyUsedUp = await storeApiKey(store, { uses: 1 });
  const unknown = issueApiKey({ prefix: 'tg_', subject: 'svc-ghost', scopes: ['orders:read'], expiresIn: '1d', now: NOW });
  const last = apiKey.key.at(-1) === 'A' ? 'B' : 'A';
  const fixtures: Fixtures = {
    read: await signToken({ scope: 'orders:read' }),
    downIssuer: await signToken({ scope: 'orders:read' }, { iss: DOWN_ISSUER }),
    acme: await signToken({ scope: 'orders:read', tenant: 'acme' }),
    write: await signToken({ scope: 'orders:write' }),
    writeMfa: await signToken({ scope: 'orders:write', auth_time: NOW_S - 60, amr: ['pwd', 'mfa'] }),
    admin: await signToken({ scope: 'admin' }),
    reports: await signToken({ scope: 'reports:read' }),
    reportsSaturday: await signToken({ scope: 'reports:read' }, { iat: Math.floor(SATURDAY.getTime() / 1000) }),
    things: await signToken({ scope: 'things:read' }),
    expired: await signToken({ scope: 'orders:read' }, { iat: NOW_S - 7200, exp: NOW_S - 3600 }),
    notYetValid: await signToken({ scope: 'orders:read', nbf: NOW_S + 3600 }),
    foreignKey: await signToken({ scope: 'orders:read' }, { key: keys.otherRsaPrivate }),
    wrongAudience: await signToken({ scope: 'orders:read' }, { aud: 'api://billing' }),
    revoked: await signToken({ scope: 'orders:read', jti: 'revoked-1' }),
    certBound: await signToken({ scope: 'orders:read', cnf: { 'x5t#S256': 'bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2' } }),
    limited: await signToken({ scope: 'orders:read', jti: 'limited-1' }),
    apiKey: apiKey.key,
    apiKeyRevoked: apiKeyRevoked.key,
    apiKeyUsedUp: apiKeyUsedUp.key,
    apiKeyUnknown: unknown.key,
    apiKeyMangled: apiKey.key.slice(0, -1) + last,
    oversized: 'a'.repeat(9000),
  };
  world.fixtures = fixtures;

  // Store state is set through a guard on the same store, as an app's admin code would do it.
  const admin = createGuard(world.policy('main'));
  await admin.revoke('revoked-1', { now: NOW });
  await admin.revoke(apiKeyRevoked.record.id, { now: NOW });
  for (const [token, path] of [
    [fixtures.limited, '/limited/x'],
    [apiKeyUsedUp.key, '/orders/1'],
  ] as const) {
    const spent = await admin.evaluate({ method: 'GET', path, headers: { authorization: `Bearer ${token}` }, remoteAddress: OUTSIDE, now: NOW });
    if (spent.reason !== 'ok') throw new Error(`fixture setup: expected to spend ${path}, got ${spent.reason}`);
  }
  return world;
}
