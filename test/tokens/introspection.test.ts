// Token introspection (RFC 7662, RFC 9701): a local HTTP server on 127.0.0.1 stands in for the authorization server.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SignJWT, exportJWK, generateKeyPair, jwtVerify, type JWK, type CryptoKey } from 'jose';
import { createGuard, MemoryStore, type Guard, type TokenGuardPolicy } from '../../src/index.js';
import { basePolicy, signToken, storeApiKey } from '../helpers/tokens.js';
import { compileIntrospection, introspectionSchema, Introspector, isJwtShaped, opaqueTokenHash, type IntrospectionPolicy } from '../../src/tokens/introspection.js';

const NOW_MS = Date.parse('2026-11-25T10:00:00Z');
const NOW_S = NOW_MS / 1000;
const TOKEN = 'opaque-token-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
const OTHER = 'opaque-token-BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB';

type Reply = (req: IncomingMessage, body: URLSearchParams, res: ServerResponse) => void | Promise<void>;

interface As {
  url: string;
  requests: { headers: IncomingMessage['headers']; body: URLSearchParams }[];
  reply: Reply;
  server: Server;
}

let as: As;

const json = (res: ServerResponse, body: unknown, status = 200, type = 'application/json') => {
  res.writeHead(status, { 'content-type': type });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
};

/** An answer per token, as a real server keeps one per token. */
const activeFor: Record<string, Record<string, unknown>> = {
  [TOKEN]: { active: true, sub: 'alice', scope: 'orders:read orders:write', exp: NOW_S + 3600, iat: NOW_S - 10, client_id: 'app', cnf: { jkt: 'thumb' } },
  [OTHER]: { active: true, sub: 'bob', scope: 'reports:read', exp: NOW_S + 3600, jti: 'tok-bob' },
};

beforeEach(async () => {
  const reply: Reply = (_req, body, res) => json(res, activeFor[body.get('token') ?? ''] ?? { active: false });
  const state = { url: '', requests: [], reply } as unknown as As;
  state.server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = new URLSearchParams(Buffer.concat(chunks).toString());
      state.requests.push({ headers: req.headers, body });
      void state.reply(req, body, res);
    });
  });
  await new Promise<void>((r) => state.server.listen(0, '127.0.0.1', r));
  state.url = `http://127.0.0.1:${(state.server.address() as AddressInfo).port}/introspect`;
  as = state;
});

afterEach(async () => {
  as.server.closeAllConnections();
  await new Promise<void>((r) => as.server.close(() => r()));
});

function introspector(extra: Partial<IntrospectionPolicy> = {}): Introspector {
  const policy = { endpoint: as.url, clientId: 'rs-orders', clientSecret: 's3cr:et é', ...extra } as IntrospectionPolicy;
  const parsed = introspectionSchema.safeParse(policy);
  if (!parsed.success) throw new Error(parsed.error.message);
  return new Introspector(compileIntrospection(policy, 5));
}

describe('introspection: active and inactive tokens', () => {
  it('reads scopes, subject, expiry and cnf from an active answer, authenticated with client_secret_basic', async () => {
    const a = await introspector().introspect(TOKEN, NOW_MS);
    expect(a).toMatchObject({
      info: { id: `sha256:${opaqueTokenHash(TOKEN)}`, kind: 'opaque', subject: 'alice', scopes: ['orders:read', 'orders:write'], expiresAt: new Date((NOW_S + 3600) * 1000) },
      exp: NOW_S + 3600,
      cnf: { jkt: 'thumb' },
    });
    expect('info' in a && a.info.claims).toMatchObject({ client_id: 'app' });
    expect('info' in a && a.info.claims && 'active' in a.info.claims).toBe(false);
    const [r] = as.requests;
    // RFC 6749 §2.3.1: form-encoded before base64.
    expect(r?.headers.authorization).toBe(`Basic ${Buffer.from('rs-orders:s3cr%3Aet+%C3%A9').toString('base64')}`);
    expect(r?.body.get('token')).toBe(TOKEN);
    expect(r?.body.get('token_type_hint')).toBe('access_token');
  });

  it('takes jti as the token id when the server gives one', async () => {
    const a = await introspector().introspect(OTHER, NOW_MS);
    expect(a).toMatchObject({ info: { id: 'tok-bob', subject: 'bob', scopes: ['reports:read'] } });
  });

  it('refuses a token the server says is not active (token.invalid)', async () => {
    expect(await introspector().introspect('unknown-token', NOW_MS)).toEqual({ reason: 'token.invalid', detail: 'token is not active' });
  });

  it('refuses an active token whose exp is past, and one not yet valid', async () => {
    as.reply = (_r, _b, res) => json(res, { active: true, exp: NOW_S - 60 });
    expect(await introspector().introspect(TOKEN, NOW_MS)).toMatchObject({ reason: 'token.expired' });
    as.reply = (_r, _b, res) => json(res, { active: true, nbf: NOW_S + 600 });
    expect(await introspector().introspect(OTHER, NOW_MS)).toMatchObject({ reason: 'token.expired' });
  });

  it('refuses a refresh token presented as an access token', async () => {
    as.reply = (_r, _b, res) => json(res, { active: true, sub: 'alice', token_type: 'refresh_token' });
    expect(await introspector().introspect(TOKEN, NOW_MS)).toMatchObject({ reason: 'token.invalid', detail: 'token is a refresh token' });
  });

  it('refuses a refresh or ID token in every spelling servers use (RFC 8693 URN, Keycloak typ), and still accepts access tokens', async () => {
    const refused: Record<string, unknown>[] = [
      { token_type: 'urn:ietf:params:oauth:token-type:refresh_token' },
      { token_type: 'Refresh' },
      { token_type: 'refresh-token' },
      { typ: 'Refresh' },
      { typ: 'Offline' },
      { typ: 'ID' },
      { token_type: 'urn:ietf:params:oauth:token-type:id_token' },
    ];
    for (const extra of refused) {
      as.reply = (_r, _b, res) => json(res, { active: true, sub: 'alice', ...extra });
      expect(await introspector().introspect(TOKEN, NOW_MS), JSON.stringify(extra)).toMatchObject({ reason: 'token.invalid' });
    }
    for (const extra of [{ token_type: 'Bearer' }, { token_type: 'urn:ietf:params:oauth:token-type:access_token' }, { typ: 'Bearer' }, { token_type: 'N_A' }]) {
      as.reply = (_r, _b, res) => json(res, { active: true, sub: 'alice', ...extra });
      expect(await introspector().introspect(TOKEN, NOW_MS), JSON.stringify(extra)).toMatchObject({ info: { kind: 'opaque' } });
    }
  });

  it('refuses a token for another audience or issuer when they are configured', async () => {
    as.reply = (_r, _b, res) => json(res, { active: true, aud: ['api://billing'], iss: 'https://as.example/' });
    expect(await introspector({ audience: 'api://orders' }).introspect(TOKEN, NOW_MS)).toMatchObject({ reason: 'token.invalid', detail: 'token is not for this audience' });
    expect(await introspector({ issuer: 'https://other.example/' }).introspect(TOKEN, NOW_MS)).toMatchObject({ reason: 'token.invalid' });
    expect(await introspector({ audience: ['api://x', 'api://billing'], issuer: 'https://as.example/' }).introspect(TOKEN, NOW_MS)).toMatchObject({ info: { kind: 'opaque' } });
  });

  it('refuses answers with claims of the wrong type', async () => {
    for (const bad of ['"sub": 7', '"scope": ["a"]', '"exp": 1e400', '"jti": ""', '"exp": "soon"']) {
      as.reply = (_r, _b, res) => json(res, `{"active": true, ${bad}}`);
      expect(await introspector().introspect(TOKEN, NOW_MS)).toMatchObject({ reason: 'token.invalid' });
    }
  });
});

describe('introspection: the server failing fails closed (503)', () => {
  const cases: [string, Reply][] = [
    ['a 500', (_r, _b, res) => json(res, { error: 'boom' }, 500)],
    ['a 401 (the resource server misconfigured)', (_r, _b, res) => json(res, { error: 'invalid_client' }, 401)],
    ['a body that is not JSON', (_r, _b, res) => json(res, '{"active": tru')],
    ['JSON that is not an object', (_r, _b, res) => json(res, [true])],
    ['an object without a boolean active', (_r, _b, res) => json(res, { active: 'true' })],
    ['another content type', (_r, _b, res) => json(res, { active: true }, 200, 'text/html')],
    ['an answer larger than 64 KiB', (_r, _b, res) => json(res, { active: true, pad: 'x'.repeat(70_000) })],
    [
      'a redirect (would resend the token elsewhere)',
      (_r, _b, res) => {
        res.writeHead(307, { location: `${as.url}?again` });
        res.end();
      },
    ],
  ];
  for (const [name, reply] of cases) {
    it(`answers idp.unavailable for ${name}`, async () => {
      as.reply = reply;
      const a = await introspector().introspect(TOKEN, NOW_MS);
      expect(a).toMatchObject({ reason: 'idp.unavailable' });
    });
  }

  it('answers idp.unavailable when the endpoint is down, and never caches the failure', async () => {
    const i = introspector();
    as.server.closeAllConnections();
    await new Promise<void>((r) => as.server.close(() => r()));
    expect(await i.introspect(TOKEN, NOW_MS)).toMatchObject({ reason: 'idp.unavailable', detail: 'introspection request failed' });
    await new Promise<void>((r) => as.server.listen(Number(new URL(as.url).port), '127.0.0.1', r));
    expect(await i.introspect(TOKEN, NOW_MS)).toMatchObject({ info: { subject: 'alice' } });
  });

  it('answers idp.unavailable when the server does not answer within the timeout', async () => {
    as.reply = () => undefined; // never answers
    expect(await introspector({ timeout: 50 }).introspect(TOKEN, NOW_MS)).toEqual({ reason: 'idp.unavailable', detail: 'introspection timed out' });
  });
});

describe('introspection: cache and coalescing', () => {
  it('asks once for a token seen again, and keys the cache by the token hash, never the raw token', async () => {
    const i = introspector();
    await i.introspect(TOKEN, NOW_MS);
    expect(i.lookup(TOKEN, NOW_MS + 1000)).toMatchObject({ info: { subject: 'alice' } });
    await i.introspect(TOKEN, NOW_MS + 2000);
    expect(as.requests).toHaveLength(1);
    const keys = [...(Reflect.get(i, 'cache') as { keys(): Iterable<string> }).keys()];
    expect(keys).toEqual([opaqueTokenHash(TOKEN)]);
    expect(keys.join()).not.toContain(TOKEN);
  });

  it('remembers an answer no longer than cacheMaxAge, by the requests’ clock', async () => {
    const i = introspector({ cacheMaxAge: '30s' });
    await i.introspect(TOKEN, NOW_MS);
    expect(i.lookup(TOKEN, NOW_MS + 29_999)).toBeDefined();
    expect(i.lookup(TOKEN, NOW_MS + 30_000)).toBeUndefined();
    await i.introspect(TOKEN, NOW_MS + 30_000);
    expect(as.requests).toHaveLength(2);
  });

  it('remembers an answer no longer than the token lives', async () => {
    as.reply = (_r, _b, res) => json(res, { active: true, sub: 'alice', exp: NOW_S + 10 });
    const i = introspector({ cacheMaxAge: '1h' });
    await i.introspect(TOKEN, NOW_MS);
    expect(i.lookup(TOKEN, NOW_MS + 9_000)).toMatchObject({ info: { subject: 'alice' } });
    // Past exp (plus tolerance) the entry is gone or refused, never served as active.
    const later = i.lookup(TOKEN, NOW_MS + 16_000);
    expect(later === undefined || 'reason' in later).toBe(true);
  });

  it('with cacheMaxAge 0 asks on every request', async () => {
    const i = introspector({ cacheMaxAge: 0 });
    await i.introspect(TOKEN, NOW_MS);
    await i.introspect(TOKEN, NOW_MS);
    expect(as.requests).toHaveLength(2);
  });

  it('is bounded: the least recently used answer goes first', async () => {
    const i = introspector({ cacheSize: 1 });
    await i.introspect(TOKEN, NOW_MS);
    await i.introspect(OTHER, NOW_MS);
    expect(i.lookup(TOKEN, NOW_MS)).toBeUndefined();
    expect(i.lookup(OTHER, NOW_MS)).toBeDefined();
  });

  it('coalesces concurrent lookups of one token into one request', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    as.reply = async (_r, body, res) => {
      await gate;
      json(res, activeFor[body.get('token') ?? ''] ?? { active: false });
    };
    const i = introspector();
    const all = Promise.all(Array.from({ length: 8 }, () => i.introspect(TOKEN, NOW_MS)));
    await new Promise((r) => setImmediate(r));
    release();
    const answers = await all;
    expect(as.requests).toHaveLength(1);
    for (const a of answers) expect(a).toMatchObject({ info: { subject: 'alice' } });
  });

  it('never hands one token the answer given for another, even when both are in flight at once', async () => {
    const i = introspector();
    const [a, b] = await Promise.all([i.introspect(TOKEN, NOW_MS), i.introspect(OTHER, NOW_MS)]);
    expect(a).toMatchObject({ info: { subject: 'alice' } });
    expect(b).toMatchObject({ info: { subject: 'bob' } });
    expect(i.lookup(TOKEN, NOW_MS)).toMatchObject({ info: { subject: 'alice' } });
    expect(i.lookup(OTHER, NOW_MS)).toMatchObject({ info: { subject: 'bob' } });
  });

  it('answers idp.unavailable for new tokens beyond maxInFlight', async () => {
    as.reply = () => undefined;
    const i = introspector({ maxInFlight: 1, timeout: 200 });
    const first = i.introspect(TOKEN, NOW_MS);
    expect(await i.introspect(OTHER, NOW_MS)).toEqual({ reason: 'idp.unavailable', detail: 'too many introspection requests under way' });
    await first;
  });
});

describe('introspection: private_key_jwt (RFC 7523)', () => {
  it('authenticates with a signed assertion the server can verify', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const jwk = { ...(await exportJWK(privateKey)), kid: 'rs-key-1' };
    const i = introspector({ clientSecret: undefined, privateKeyJwt: { key: jwk, alg: 'ES256', audience: 'https://as.example/' } });
    expect(await i.introspect(TOKEN, NOW_MS)).toMatchObject({ info: { subject: 'alice' } });
    await i.introspect(OTHER, NOW_MS);
    const [r1, r2] = as.requests;
    expect(r1?.headers.authorization).toBeUndefined();
    expect(r1?.body.get('client_assertion_type')).toBe('urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
    const { payload, protectedHeader } = await jwtVerify(r1?.body.get('client_assertion') ?? '', publicKey, {
      issuer: 'rs-orders',
      subject: 'rs-orders',
      audience: 'https://as.example/',
      currentDate: new Date(NOW_MS),
    });
    expect(protectedHeader).toMatchObject({ alg: 'ES256', kid: 'rs-key-1' });
    expect(payload.exp).toBe(NOW_S + 60);
    // A fresh jti per assertion: the server refuses a replayed one.
    const { payload: p2 } = await jwtVerify(r2?.body.get('client_assertion') ?? '', publicKey, { currentDate: new Date(NOW_MS) });
    expect(p2.jti).not.toBe(payload.jti);
  });
  it('signs with a private key given in PEM, PKCS#1 as well as PKCS#8', async () => {
    for (const type of ['pkcs1', 'pkcs8'] as const) {
      const { privateKey, publicKey } = generateKeyPairSync('rsa', {
        modulusLength: 2048,
        privateKeyEncoding: { type, format: 'pem' },
        publicKeyEncoding: { type: 'spki', format: 'pem' },
      });
      as.requests.length = 0;
      const i = introspector({ clientSecret: undefined, privateKeyJwt: { key: privateKey, alg: 'RS256', audience: 'https://as.example/' } });
      expect(await i.introspect(TOKEN, NOW_MS)).toMatchObject({ info: { subject: 'alice' } });
      const { protectedHeader } = await jwtVerify(as.requests[0]?.body.get('client_assertion') ?? '', createPublicKey(publicKey), { currentDate: new Date(NOW_MS) });
      expect(protectedHeader.alg).toBe('RS256');
    }
  });

  it('refuses a PEM that is not a private key when the policy is read', () => {
    const { publicKey } = generateKeyPairSync('ec', {
      namedCurve: 'P-256',
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    const settings = (key: string) => ({ endpoint: 'https://as.example/introspect', clientId: 'rs', privateKeyJwt: { key, alg: 'ES256' } });
    expect(introspectionSchema.safeParse(settings(publicKey)).success).toBe(false);
    expect(introspectionSchema.safeParse(settings('-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----')).success).toBe(false);
  });
});

describe('introspection: signed answers (RFC 9701)', () => {
  let asKey: CryptoKey;
  let asJwk: JWK;
  let rogue: CryptoKey;
  beforeEach(async () => {
    const k = await generateKeyPair('ES256', { extractable: true });
    asKey = k.privateKey;
    asJwk = { ...(await exportJWK(k.publicKey)), kid: 'as-1' };
    rogue = (await generateKeyPair('ES256')).privateKey;
  });

  const signed = (claims: Record<string, unknown>, opts: { key?: CryptoKey; aud?: string; iat?: number; typ?: string; iss?: string } = {}) =>
    new SignJWT({ token_introspection: claims })
      .setProtectedHeader({ alg: 'ES256', kid: 'as-1', typ: opts.typ ?? 'token-introspection+jwt' })
      .setIssuer(opts.iss ?? 'https://as.example/')
      .setAudience(opts.aud ?? 'rs-orders')
      .setIssuedAt(opts.iat ?? NOW_S)
      .sign(opts.key ?? asKey);

  const jwtIntrospector = () => introspector({ jwtResponse: { issuer: 'https://as.example/', algorithms: ['ES256'], keys: [asJwk] } });
  const answerWith = (jwt: Promise<string>, type = 'application/token-introspection+jwt'): Reply => {
    return async (_r, _b, res) => json(res, await jwt, 200, type);
  };

  it('accepts a signed answer verified with the server key, and asks for one', async () => {
    as.reply = answerWith(signed(activeFor[TOKEN] as Record<string, unknown>));
    expect(await jwtIntrospector().introspect(TOKEN, NOW_MS)).toMatchObject({ info: { subject: 'alice', scopes: ['orders:read', 'orders:write'] } });
    expect(as.requests[0]?.headers.accept).toBe('application/token-introspection+jwt');
  });

  it('reads active: false from a signed answer as token.invalid', async () => {
    as.reply = answerWith(signed({ active: false }));
    expect(await jwtIntrospector().introspect(TOKEN, NOW_MS)).toMatchObject({ reason: 'token.invalid' });
  });

  const refusals: [string, () => Reply][] = [
    ['signed with another key (forged)', () => answerWith(signed({ active: true }, { key: rogue }))],
    ['addressed to another resource server', () => answerWith(signed({ active: true }, { aud: 'rs-billing' }))],
    ['from another issuer', () => answerWith(signed({ active: true }, { iss: 'https://evil.example/' }))],
    ['replayed later (stale iat: an answer captured for another token or time)', () => answerWith(signed({ active: true }, { iat: NOW_S - 600 }))],
    ['of another JWT type', () => answerWith(signed({ active: true }, { typ: 'at+jwt' }))],
    ['plain JSON where a signed answer was asked for (downgrade)', () => (_r, _b, res) => json(res, { active: true, sub: 'alice' })],
  ];
  for (const [name, reply] of refusals) {
    it(`refuses an answer ${name}, failing closed`, async () => {
      as.reply = reply();
      expect(await jwtIntrospector().introspect(TOKEN, NOW_MS)).toMatchObject({ reason: 'idp.unavailable' });
    });
  }
});

describe('introspection: which tokens and which settings', () => {
  it('tells JWT-shaped tokens from opaque ones', () => {
    expect(isJwtShaped('eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln')).toBe(true);
    expect(isJwtShaped('a.b.c.d.e')).toBe(true);
    expect(isJwtShaped(TOKEN)).toBe(false);
    expect(isJwtShaped('a.b')).toBe(false);
    expect(isJwtShaped('.b.c')).toBe(false);
    expect(isJwtShaped('a+b.c.d')).toBe(false);
  });

  it('refuses settings that would leak the token or authenticate twice', () => {
    const base = { endpoint: 'https://as.example/introspect', clientId: 'rs', clientSecret: 'x' };
    expect(introspectionSchema.safeParse(base).success).toBe(true);
    expect(introspectionSchema.safeParse({ ...base, endpoint: 'http://as.example/introspect' }).success).toBe(false);
    expect(introspectionSchema.safeParse({ ...base, privateKeyJwt: { key: { kty: 'EC', d: 'x' }, alg: 'ES256' } }).success).toBe(false);
    expect(introspectionSchema.safeParse({ endpoint: base.endpoint, clientId: 'rs' }).success).toBe(false);
    expect(introspectionSchema.safeParse({ endpoint: base.endpoint, clientId: 'rs', privateKeyJwt: { key: { kty: 'EC', x: 'public-only' }, alg: 'ES256' } }).success).toBe(
      false,
    );
    expect(introspectionSchema.safeParse({ endpoint: base.endpoint, clientId: 'rs', privateKeyJwt: { key: { kty: 'EC', d: 'x' }, alg: 'HS256' } }).success).toBe(false);
    expect(introspectionSchema.safeParse({ ...base, jwtResponse: { issuer: 'i', algorithms: ['ES256'] } }).success).toBe(false);
  });
});

describe('introspection: through the guard', () => {
  beforeEach(() => {
    as.reply = (_r, body, res) => json(res, body.get('token') === TOKEN ? { active: true, sub: 'alice', scope: 'orders:read', exp: NOW_S + 3600 } : { active: false });
  });
  const guardWith = async (extra: Partial<TokenGuardPolicy> = {}) =>
    createGuard(
      await basePolicy({
        introspection: { endpoint: as.url, clientId: 'rs-orders', clientSecret: 'secret' },
        rules: [{ path: '/orders/**', scopes: ['orders:read'] }],
        ...extra,
      }),
    );
  const ask = (guard: Guard, authorization: string) =>
    guard.evaluate({ method: 'GET', path: '/orders/1', headers: { authorization }, remoteAddress: '127.0.0.1', now: new Date(NOW_MS) });

  it('sends opaque tokens to the server and refuses inactive ones with 401 invalid_token', async () => {
    const guard = await guardWith();
    const ok = await ask(guard, `Bearer ${TOKEN}`);
    expect(ok).toMatchObject({ reason: 'ok', token: { kind: 'opaque', subject: 'alice' } });
    const inactive = await ask(guard, 'Bearer not-a-token-the-server-knows');
    expect(inactive).toMatchObject({ status: 401, reason: 'token.invalid' });
    expect(inactive.headers['WWW-Authenticate']).toContain('error="invalid_token"');
  });

  it('never sends a JWT-shaped token or an API key to the server when jwt and apiKeys are configured', async () => {
    const store = new MemoryStore();
    const guard = await guardWith({ store });
    expect((await ask(guard, `Bearer ${await signToken({ scope: 'orders:read' })}`)).reason).toBe('ok');
    const { key } = await storeApiKey(store, { scopes: ['orders:read'] });
    expect((await ask(guard, `Bearer ${key}`)).reason).toBe('ok');
    expect(as.requests).toHaveLength(0);
  });

  it('sends JWT-shaped tokens too when the policy has no jwt', async () => {
    const guard = await guardWith({ jwt: undefined });
    await ask(guard, `Bearer ${await signToken({ scope: 'orders:read' })}`);
    expect(as.requests).toHaveLength(1);
  });

  it('answers 503 idp.unavailable (fail closed) when the server is down, with no challenge and no token in the detail', async () => {
    const guard = await guardWith();
    as.reply = (_r, _b, res) => json(res, 'oops', 502, 'text/plain');
    const d = await ask(guard, `Bearer ${TOKEN}`);
    expect(d).toMatchObject({ effect: 'deny', status: 503, reason: 'idp.unavailable' });
    expect(d.headers['WWW-Authenticate']).toBeUndefined();
    expect(JSON.stringify(d)).not.toContain(TOKEN);
  });

  it('refuses a DPoP-bound introspected token presented as a bearer token', async () => {
    as.reply = (_r, _b, res) => json(res, { active: true, sub: 'alice', scope: 'orders:read', cnf: { jkt: 'thumbprint-of-the-client-key' } });
    const guard = await guardWith({ dpop: { origins: ['https://api.example.test'] } });
    const d = await ask(guard, `Bearer ${TOKEN}`);
    expect(d).toMatchObject({ status: 401, reason: 'pop.invalid' });
  });

  it('revokes an introspected token by its id on the guard’s store', async () => {
    const guard = await guardWith();
    const ok = await ask(guard, `Bearer ${TOKEN}`);
    await guard.revoke(ok.token as NonNullable<typeof ok.token>, { now: new Date(NOW_MS) });
    expect((await ask(guard, `Bearer ${TOKEN}`)).reason).toBe('token.revoked');
  });
});
