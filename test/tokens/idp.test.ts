// Issue 12 part 1 against a real authorization server (oidc-provider on 127.0.0.1): discovery, RFC 9068
// access tokens through Express, key rotation while the guard runs, outages within and past jwks.maxStale,
// several issuers with colliding jti, and metadata whose issuer is not the configured one.
import { afterEach, describe, expect, it, vi } from 'vitest';
import express from 'express';
import request from 'supertest';
import { SignJWT, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair } from 'jose';
import { tokenGuard, requireScopes } from '../../src/adapters/express.js';
import { createGuard, MemoryStore, PolicyError, type DecisionEvent, type JwtPolicy, type TokenGuardPolicy } from '../../src/index.js';
import { fakeDateEachTest } from '../helpers/fake-date.js';
import { startOidcProvider, type OidcProviderOptions, type OidcServer } from '../helpers/oidc.js';
import { bearer, expectAllowed, expectRefused } from './fixtures.js';

const running: OidcServer[] = [];
async function idp(options: OidcProviderOptions = {}): Promise<OidcServer> {
  // Tokens live a day: the outage tests move the clock by hours.
  const s = await startOidcProvider({ accessTokenTtl: 86_400, ...options });
  running.push(s);
  return s;
}

const T0 = new Date('2026-11-25T10:00:00Z');
/** Moves the wall clock (key-set freshness, token times, the provider's own clock) without faking timers. */
const advance = (ms: number) => vi.setSystemTime(Date.now() + ms);

fakeDateEachTest(T0);
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.close()));
});

const discovered = (s: OidcServer, over: Partial<JwtPolicy> = {}): JwtPolicy => ({
  issuer: s.issuer,
  audience: s.resource,
  algorithms: ['ES256'],
  discovery: true,
  typ: 'at+jwt',
  ...over,
});

function app(policy: TokenGuardPolicy) {
  const a = express();
  a.use(tokenGuard(policy));
  a.get('/orders/:id', (req, res) => {
    res.json({ id: req.params.id, client: req.auth?.token?.claims?.['client_id'], tokenId: req.auth?.token?.id });
  });
  a.post('/orders', requireScopes('orders:write'), (_req, res) => {
    res.status(201).json({ created: true });
  });
  return a;
}

const RULES: TokenGuardPolicy['rules'] = [{ path: '/orders/**', scopes: ['orders:read'] }];

describe('discovery against oidc-provider', () => {
  it('finds jwks_uri in the authorization server metadata and accepts an RFC 9068 at+jwt access token through Express', async () => {
    const s = await idp();
    const token = await s.accessToken({ scope: 'orders:read' });
    expect(decodeProtectedHeader(token).typ).toBe('at+jwt');
    const a = app({ jwt: discovered(s), rules: RULES, store: new MemoryStore() });
    const res = await request(a).get('/orders/7').set('authorization', `Bearer ${token}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ id: '7', client: s.clientId, tokenId: decodeJwt(token).jti });
    // RFC 8414's location answers (oidc-provider serves both), so OpenID Connect's is not asked; each
    // document is fetched once however many requests.
    await request(a)
      .get('/orders/8')
      .set('authorization', `Bearer ${await s.accessToken({ scope: 'orders:read' })}`);
    expect(s.hits.get('/.well-known/oauth-authorization-server')).toBe(1);
    expect(s.hits.get('/.well-known/openid-configuration')).toBeUndefined();
    expect(s.hits.get('/jwks')).toBe(1);
  });

  it('answers 403 insufficient_scope through requireScopes for a token without the scope, and 401 without a token', async () => {
    const s = await idp();
    const a = app({ jwt: discovered(s), rules: RULES });
    const res = await request(a)
      .post('/orders')
      .set('authorization', `Bearer ${await s.accessToken({ scope: 'orders:read' })}`);
    expect(res.status).toBe(403);
    expect(res.headers['www-authenticate']).toContain('error="insufficient_scope"');
    const ok = await request(a)
      .post('/orders')
      .set('authorization', `Bearer ${await s.accessToken({ scope: 'orders:read orders:write' })}`);
    expect(ok.status).toBe(201);
    expect((await request(a).get('/orders/1')).status).toBe(401);
  });

  it('refuses metadata whose issuer is not exactly the configured issuer, and never fetches the keys it names', async () => {
    // The provider calls itself http://localhost:<port> while the guard asked http://127.0.0.1:<port>.
    const s = await idp({ issuer: (base) => base.replace('127.0.0.1', 'localhost') });
    const events: DecisionEvent[] = [];
    const guard = createGuard({
      jwt: discovered(s, { issuer: s.baseUrl }),
      rules: RULES,
      onDecision: (e) => {
        events.push(e);
      },
    });
    const token = await s.accessToken({ scope: 'orders:read' });
    const d = await guard.evaluate(bearer(token));
    expectRefused(d, 'idp.unavailable');
    expect(d.detail).toMatch(/metadata issuer .* is not the configured issuer/);
    expect(s.hits.get('/jwks')).toBeUndefined();
    expect(events[0]).toMatchObject({ reason: 'idp.unavailable', status: 503 });
    expect(events[0]?.error).toBeUndefined(); // not reported as a store failure
  });

  it('refuses a token whose iss is not the discovered issuer as token.invalid', async () => {
    const s = await idp();
    const other = await idp();
    const guard = createGuard({ jwt: discovered(s), rules: RULES });
    expectRefused(await guard.evaluate(bearer(await other.accessToken({ resource: s.resource, scope: 'orders:read' }))), 'token.invalid');
  });
});

describe('key rotation at the provider while the guard runs', () => {
  it('accepts tokens signed with the new key after one refetch (unknown kid, past the cooldown), and old tokens still verify', async () => {
    const s = await idp();
    const guard = createGuard({ jwt: discovered(s), rules: RULES });
    const before = await s.accessToken({ scope: 'orders:read' });
    expectAllowed(await guard.evaluate(bearer(before)));
    await s.rotateKeys();
    const after = await s.accessToken({ scope: 'orders:read' });
    expect(decodeProtectedHeader(after).kid).not.toBe(decodeProtectedHeader(before).kid);
    // Within the cooldown of the first fetch the new kid is unknown and not fetched: refused, provider up.
    expectRefused(await guard.evaluate(bearer(after)), 'token.invalid');
    expect(s.hits.get('/jwks')).toBe(1);
    advance(31_000);
    expectAllowed(await guard.evaluate(bearer(after)));
    guard.clearTokenCache();
    expectAllowed(await guard.evaluate(bearer(before)));
    expect(s.hits.get('/jwks')).toBe(2);
  });

  it('refuses tokens of a key the provider withdrew once the set is refetched', async () => {
    const s = await idp();
    const guard = createGuard({ jwt: discovered(s), rules: RULES });
    const old = await s.accessToken({ scope: 'orders:read' });
    expectAllowed(await guard.evaluate(bearer(old)));
    await s.rotateKeys({ keepOld: false });
    advance(11 * 60_000); // past cacheMaxAge
    guard.clearTokenCache();
    expectRefused(await guard.evaluate(bearer(old)), 'token.invalid');
  });
});

describe('when the provider is down', () => {
  const policy = (s: OidcServer, events: DecisionEvent[] = []): TokenGuardPolicy => ({
    jwt: discovered(s, { jwks: { cacheMaxAge: '10m', maxStale: '1h', timeout: '2s' } }),
    rules: RULES,
    onDecision: (e) => {
      events.push(e);
    },
  });

  it('keeps verifying with the known keys until cacheMaxAge + maxStale, then answers 503 idp.unavailable (Express)', async () => {
    const s = await idp();
    const events: DecisionEvent[] = [];
    const a = app(policy(s, events));
    const tokens = await Promise.all([1, 2, 3].map(() => s.accessToken({ scope: 'orders:read' })));
    expect((await request(a).get('/orders/1').set('authorization', `Bearer ${tokens[0]}`)).status).toBe(200);
    await s.stop();

    advance(30 * 60_000); // past cacheMaxAge: the refetch fails, the known set still serves
    expect((await request(a).get('/orders/2').set('authorization', `Bearer ${tokens[1]}`)).status).toBe(200);

    advance(45 * 60_000); // 75 minutes after the fetch: past 10m + 1h
    const res = await request(a).get('/orders/3').set('authorization', `Bearer ${tokens[2]}`);
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ reason: 'idp.unavailable' });
    expect(res.headers['www-authenticate']).toBeUndefined();
    const last = events.at(-1);
    expect(last).toMatchObject({ reason: 'idp.unavailable', status: 503 });
    expect(last?.detail).toMatch(/maxStale/);

    // Back up: the next refetch (after the backoff) restores service.
    await s.start();
    advance(60_000);
    expect((await request(a).get('/orders/3').set('authorization', `Bearer ${tokens[2]}`)).status).toBe(200);
  });

  it('retries with backoff instead of once per request while the provider fails', async () => {
    const s = await idp();
    const guard = createGuard(policy(s));
    const tokens = await Promise.all(Array.from({ length: 6 }, () => s.accessToken({ scope: 'orders:read' })));
    expectAllowed(await guard.evaluate(bearer(tokens[0] as string)));
    s.setMode('error');
    advance(11 * 60_000);
    const before = s.hits.get('/.well-known/oauth-authorization-server') ?? 0;
    for (const t of tokens.slice(1)) expectAllowed(await guard.evaluate(bearer(t)));
    // One failed refetch (metadata), then the backoff holds further attempts back.
    expect((s.hits.get('/.well-known/oauth-authorization-server') ?? 0) - before).toBe(1);
  });

  it('answers 503 idp.unavailable, not store.unavailable, when the provider never answered', async () => {
    const s = await idp();
    s.setMode('error');
    const guard = createGuard(policy(s));
    const d = await guard.evaluate(bearer(await signedBy(s.issuer, s.resource)));
    expectRefused(d, 'idp.unavailable');
    expect(d.detail).toMatch(/HTTP 503/);
  });

  it('answers 503 idp.unavailable within jwks.timeout when the provider hangs', async () => {
    vi.useRealTimers();
    const s = await idp();
    s.setMode('hang');
    const guard = createGuard({ jwt: discovered(s, { jwks: { timeout: 150 } }), rules: RULES });
    const d = await guard.evaluate(bearer(await signedBy(s.issuer, s.resource)));
    expectRefused(d, 'idp.unavailable');
    expect(d.detail).toMatch(/timed out/);
  });

  it('answers an unknown kid while the provider fails as idp.unavailable (the key may exist), not as a bad token', async () => {
    const s = await idp();
    const guard = createGuard(policy(s));
    expectAllowed(await guard.evaluate(bearer(await s.accessToken({ scope: 'orders:read' }))));
    await s.rotateKeys();
    const rotated = await s.accessToken({ scope: 'orders:read' });
    s.setMode('error');
    advance(31_000);
    expectRefused(await guard.evaluate(bearer(rotated)), 'idp.unavailable');
  });
});

/** A token for `iss`/`aud` signed by a key nobody publishes (verification never gets past the key lookup). */
async function signedBy(iss: string, aud: string, jti?: string, key?: CryptoKey): Promise<string> {
  const k = key ?? (await generateKeyPair('ES256')).privateKey;
  const jwt = new SignJWT({ scope: 'orders:read' })
    .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'k' })
    .setIssuer(iss)
    .setAudience(aud)
    .setIssuedAt()
    .setExpirationTime('1h');
  if (jti) jwt.setJti(jti);
  return jwt.sign(k);
}

describe('several issuers', () => {
  it('namespaces token ids per issuer: the same jti from two tenants never collides on revocation', async () => {
    const a = await idp({ jti: () => 'same-jti' });
    const b = await idp({ jti: () => 'same-jti' });
    const store = new MemoryStore();
    const guard = createGuard({ jwt: [discovered(a, { name: 'tenant-a' }), discovered(b, { audience: b.resource })], rules: RULES, store });
    const ta = await a.accessToken({ scope: 'orders:read' });
    const tb = await b.accessToken({ scope: 'orders:read' });
    expect(decodeJwt(ta).jti).toBe(decodeJwt(tb).jti);
    const da = await guard.evaluate(bearer(ta));
    const db = await guard.evaluate(bearer(tb));
    expectAllowed(da);
    expectAllowed(db);
    expect(da.token?.id).toBe('tenant-a:same-jti');
    expect(db.token?.id).toMatch(/^[A-Za-z0-9_-]{16}:same-jti$/);
    await guard.revoke(da.token as NonNullable<typeof da.token>);
    expectRefused(await guard.evaluate(bearer(ta)), 'token.revoked');
    expectAllowed(await guard.evaluate(bearer(tb)));
  });

  it('keeps token ids unchanged with one issuer configuration, as an object or a one-entry list', async () => {
    const s = await idp({ jti: () => 'plain-jti' });
    const token = await s.accessToken({ scope: 'orders:read' });
    for (const jwt of [discovered(s), [discovered(s)]]) {
      expect((await createGuard({ jwt, rules: RULES }).evaluate(bearer(token))).token?.id).toBe('plain-jti');
    }
  });

  it('picks the configuration by iss before any signature check: an unknown iss costs no fetch at all', async () => {
    const a = await idp();
    const b = await idp();
    const guard = createGuard({ jwt: [discovered(a), discovered(b)], rules: RULES });
    const d = await guard.evaluate(bearer(await signedBy('https://unknown.example.test', a.resource)));
    expectRefused(d, 'token.invalid');
    expect(d.detail).toBe('iss is not an accepted issuer');
    expect(a.hits.size + b.hits.size).toBe(0);
  });

  it("never verifies a token naming one issuer with another issuer's keys", async () => {
    const a = await idp();
    const b = await idp();
    const guard = createGuard({ jwt: [discovered(a), discovered(b, { audience: a.resource })], rules: RULES });
    // Issued and signed by b, but claiming to be a's: only a's keys are tried, and they do not fit.
    const forged = await b.accessToken({ resource: a.resource, scope: 'orders:read' });
    const payload = decodeJwt(forged);
    expect(payload.iss).toBe(b.issuer);
    const [h, , sig] = forged.split('.');
    const relabelled = `${h}.${Buffer.from(JSON.stringify({ ...payload, iss: a.issuer })).toString('base64url')}.${sig}`;
    expectRefused(await guard.evaluate(bearer(relabelled)), 'token.invalid');
    expect(b.hits.get('/jwks') ?? 0).toBe(0);
  });

  it('refuses a token without iss, or whose payload is not JSON, before any key is looked up', async () => {
    const a = await idp();
    const b = await idp();
    const guard = createGuard({ jwt: [discovered(a), discovered(b)], rules: RULES });
    const { privateKey } = await generateKeyPair('ES256');
    const noIss = await new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setAudience(a.resource).setExpirationTime('1h').sign(privateKey);
    expectRefused(await guard.evaluate(bearer(noIss)), 'token.invalid');
    expectRefused(await guard.evaluate(bearer(`${noIss.split('.')[0]}.bm90IGpzb24.${noIss.split('.')[2]}`)), 'token.malformed');
  });

  it('mixes discovery, a jwksUri and local keys, each for its own issuer', async () => {
    const a = await idp();
    const b = await idp();
    const local = await generateKeyPair('ES256');
    const localJwk = { ...(await exportJWK(local.publicKey)), kid: 'k', alg: 'ES256' };
    const guard = createGuard({
      jwt: [
        discovered(a),
        { issuer: b.issuer, audience: b.resource, algorithms: ['ES256'], jwksUri: b.jwksUri },
        { issuer: 'https://local.example.test', audience: 'api://local', algorithms: ['ES256'], keys: [localJwk] },
      ],
      rules: RULES,
    });
    expectAllowed(await guard.evaluate(bearer(await a.accessToken({ scope: 'orders:read' }))));
    expectAllowed(await guard.evaluate(bearer(await b.accessToken({ scope: 'orders:read' }))));
    expectAllowed(await guard.evaluate(bearer(await signedBy('https://local.example.test', 'api://local', 'x', local.privateKey))));
  });
});

describe('the policy', () => {
  const problems = (policy: unknown): string[] => {
    try {
      createGuard(policy as TokenGuardPolicy);
      return [];
    } catch (err) {
      if (!(err instanceof PolicyError)) throw err;
      return err.issues.map((i) => `${i.path}: ${i.message}`);
    }
  };
  const base = { audience: 'api://a', algorithms: ['ES256'] };

  it('refuses discovery of a plain-http issuer that is not loopback, or of several issuers in one configuration', () => {
    expect(problems({ jwt: { ...base, issuer: 'http://id.example.test', discovery: true } })).toEqual([
      expect.stringMatching(/^jwt\.issuer: discovery needs an https issuer URL/),
    ]);
    expect(problems({ jwt: { ...base, issuer: ['https://a.example.test', 'https://b.example.test'], discovery: true } })).toEqual([
      expect.stringMatching(/^jwt\.issuer: discovery reads one issuer's metadata/),
    ]);
    expect(problems({ jwt: { ...base, issuer: 'https://a.example.test', discovery: true, jwksUri: 'https://a.example.test/jwks' } })).toEqual([
      'jwt.discovery: give one of jwksUri, keys or discovery, not jwksUri and discovery',
    ]);
  });

  it('refuses an issuer or a name in two configurations, and points at the entry', () => {
    const one = { ...base, issuer: 'https://a.example.test', discovery: true };
    expect(problems({ jwt: [one, { ...one }] })).toEqual(['jwt[1].issuer: issuer "https://a.example.test" is already configured in jwt[0]']);
    expect(
      problems({
        jwt: [
          { ...one, name: 'x' },
          { ...one, issuer: 'https://b.example.test', name: 'x' },
        ],
      }),
    ).toEqual(['jwt[1].name: name "x" is already taken by jwt[0]: token ids would collide']);
    expect(problems({ jwt: [{ ...one, audience: 7 }] })).toEqual([expect.stringMatching(/^jwt\[0\]\.audience/)]);
    expect(problems({ jwt: [] })).toEqual(['jwt: expected at least one issuer configuration']);
  });

  it('bounds the JWK Set limits and refuses a resourceMetadata URL over plain http', () => {
    const jwt = { ...base, issuer: 'https://a.example.test', discovery: true };
    expect(problems({ jwt: { ...jwt, jwks: { maxKeys: 0, maxBytes: 10, maxStale: '1h' } } })).toHaveLength(2);
    expect(problems({ jwt, resourceMetadata: 'http://api.example.test/.well-known/oauth-protected-resource' })).toEqual([
      'resourceMetadata: expected an https URL (plain http only for loopback addresses)',
    ]);
  });
});
