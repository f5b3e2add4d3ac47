// JWT verification through the public guard: algorithm and key attacks, claims, token id, scopes, cache.
import { createHash, verify } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { CompactEncrypt, exportJWK, exportPKCS8, exportSPKI, generateKeyPair } from 'jose';
import { createGuard, MemoryStore, PolicyError } from '../../src/index.js';
import { AUDIENCE, HMAC_SECRET, ISSUER, NOW, NOW_S, jwtPolicy, signToken, testKeys, unsignedToken } from '../helpers/tokens.js';
import { bearer, expectAllowed, expectRefused, jwtGuard, signCompact, validClaims } from './fixtures.js';

// node:crypto's verify is wrapped (not replaced) so tests can tell a cache hit from a full signature verification
// (the guard checks signatures with node:crypto; the tests' tokens are RS256).
vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:crypto')>();
  return { ...actual, verify: vi.fn(actual.verify) };
});
const verifications = () => vi.mocked(verify).mock.calls.length;

/** A valid RS256 access token for alice at NOW with `orders:read`, unless claims or options say otherwise. */
const accessToken = (claims: Record<string, unknown> = {}, opts: Parameters<typeof signToken>[1] = {}) => signToken({ scope: 'orders:read', ...claims }, opts);

const segments = (token: string) => token.split('.') as [string, string, string];

/** A P-256 signature (r || s) with s replaced by n - s: a second valid signature nobody signed. */
function highS(token: string): string {
  const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
  const [h, p, sig] = segments(token);
  const raw = Buffer.from(sig, 'base64url');
  const s = BigInt('0x' + raw.subarray(32).toString('hex'));
  const flipped = Buffer.from((P256_N - s).toString(16).padStart(64, '0'), 'hex');
  return `${h}.${p}.${Buffer.concat([raw.subarray(0, 32), flipped]).toString('base64url')}`;
}

describe('algorithms', () => {
  it('accepts a valid RS256 token from a configured key', async () => {
    const guard = await jwtGuard();
    const decision = await guard.evaluate(bearer(await accessToken()));
    expectAllowed(decision);
    expect(decision.token).toMatchObject({ kind: 'jwt', subject: 'alice', scopes: ['orders:read'] });
  });

  it('refuses a token whose alg is not in the allow-list even though the key would verify it', async () => {
    const guard = await jwtGuard({ algorithms: ['ES256'] });
    expectRefused(await guard.evaluate(bearer(await accessToken())), 'token.invalid');
  });

  for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
    it(`refuses an unsigned token with alg "${alg}" and an empty signature`, async () => {
      const guard = await jwtGuard({ algorithms: ['RS256', 'ES256', 'HS256'], secret: HMAC_SECRET });
      expectRefused(await guard.evaluate(bearer(unsignedToken(validClaims(), { alg }))), 'token.invalid');
    });

    it(`refuses an unsigned token with alg "${alg}" and a made-up signature segment`, async () => {
      const guard = await jwtGuard();
      const token = unsignedToken(validClaims(), { alg, kid: 'rsa-1' }) + Buffer.from('signature').toString('base64url');
      expectRefused(await guard.evaluate(bearer(token)), 'token.invalid');
    });
  }

  it('refuses a token whose header has no alg at all as malformed', async () => {
    const guard = await jwtGuard();
    expectRefused(await guard.evaluate(bearer(unsignedToken(validClaims(), { typ: 'JWT' }))), 'token.malformed');
  });
});

describe('key confusion', () => {
  const confusions = [
    ['the PEM of the RSA public key', async () => new TextEncoder().encode((await testKeys()).rsaPublicPem)],
    ['the RSA public JWK "n" as text', async () => new TextEncoder().encode((await testKeys()).rsaPublicJwk.n as string)],
    ['the RSA public JWK "n" as bytes', async () => Buffer.from((await testKeys()).rsaPublicJwk.n as string, 'base64url')],
  ] as const;

  for (const [what, keyBytes] of confusions) {
    it(`refuses an HS256 token signed with ${what} when the policy allows only RS256/ES256`, async () => {
      const guard = await jwtGuard();
      const token = await accessToken({}, { alg: 'HS256', key: await keyBytes(), kid: 'rsa-1' });
      expectRefused(await guard.evaluate(bearer(token)), 'token.invalid');
    });

    it(`refuses an HS256 token signed with ${what} when the policy allows HS256 too`, async () => {
      const guard = await jwtGuard({ algorithms: ['RS256', 'ES256', 'HS256'], secret: HMAC_SECRET });
      const token = await accessToken({}, { alg: 'HS256', key: await keyBytes(), kid: 'rsa-1' });
      expectRefused(await guard.evaluate(bearer(token)), 'token.invalid');
    });
  }

  it('refuses an HS256 token signed with the PEM bytes when that same PEM is the configured key', async () => {
    const k = await testKeys();
    const guard = await jwtGuard({ algorithms: ['RS256', 'HS256'], keys: [k.rsaPublicPem], secret: HMAC_SECRET });
    const token = await accessToken({}, { alg: 'HS256', key: new TextEncoder().encode(k.rsaPublicPem), kid: '' });
    expectRefused(await guard.evaluate(bearer(token)), 'token.invalid');
  });

  it('accepts an HS256 token signed with the configured secret (the control for the confusion tests)', async () => {
    const guard = await jwtGuard({ algorithms: ['RS256', 'ES256', 'HS256'], secret: HMAC_SECRET });
    expectAllowed(await guard.evaluate(bearer(await accessToken({}, { alg: 'HS256' }))));
  });
});

describe('keys', () => {
  it('refuses a token signed by a key the policy does not know, even under a known kid', async () => {
    const k = await testKeys();
    const guard = await jwtGuard();
    expectRefused(await guard.evaluate(bearer(await accessToken({}, { key: k.otherRsaPrivate, kid: 'rsa-1' }))), 'token.invalid');
  });

  it('refuses a token whose kid names no configured key', async () => {
    const k = await testKeys();
    const guard = await jwtGuard();
    expectRefused(await guard.evaluate(bearer(await accessToken({}, { key: k.otherRsaPrivate, kid: 'rsa-2' }))), 'token.invalid');
    // The same holds for the right signature under a kid the set does not have.
    expectRefused(await guard.evaluate(bearer(await accessToken({}, { kid: 'rsa-2' }))), 'token.invalid');
  });

  it('refuses a token that carries its own public key in the jwk header', async () => {
    const attacker = await generateKeyPair('RS256', { extractable: true });
    const jwk = await exportJWK(attacker.publicKey);
    const guard = await jwtGuard();
    for (const kid of ['rsa-1', 'attacker']) {
      const token = await accessToken({}, { key: attacker.privateKey, kid, header: { jwk: { ...jwk, kid } } });
      expectRefused(await guard.evaluate(bearer(token)), 'token.invalid');
    }
  });

  it('verifies tokens against a PEM public key given in keys, with or without a kid in the token', async () => {
    const k = await testKeys();
    const guard = await jwtGuard({ algorithms: ['RS256'], keys: [k.rsaPublicPem] });
    expectAllowed(await guard.evaluate(bearer(await accessToken({}, { kid: '' }))));
    // Issuers put a kid in every token; a PEM has none, so the kid cannot be what selects it.
    expectAllowed(await guard.evaluate(bearer(await accessToken({ jti: 'with-kid' }, { kid: 'rsa-1' }))));
    expectRefused(await guard.evaluate(bearer(await accessToken({}, { key: k.otherRsaPrivate, kid: '' }))), 'token.invalid');
  });

  it('verifies tokens against either of two PEM keys during a rotation', async () => {
    const k = await testKeys();
    const next = await generateKeyPair('RS256', { extractable: true });
    const guard = await jwtGuard({ algorithms: ['RS256'], keys: [k.rsaPublicPem, await exportSPKI(next.publicKey)] });
    expectAllowed(await guard.evaluate(bearer(await accessToken({ jti: 'old' }, { kid: 'rsa-1' }))));
    expectAllowed(await guard.evaluate(bearer(await accessToken({ jti: 'new' }, { key: next.privateKey, kid: 'rsa-2' }))));
    expectRefused(await guard.evaluate(bearer(await accessToken({ jti: 'other' }, { key: k.otherRsaPrivate }))), 'token.invalid');
  });

  it('refuses a private key PEM in keys with a PolicyError naming the entry', async () => {
    const k = await testKeys();
    const pkcs8 = await exportPKCS8(k.rsaPrivate);
    await expect(jwtGuard({ keys: [pkcs8] })).rejects.toThrow(PolicyError);
    await expect(jwtGuard({ keys: [pkcs8] })).rejects.toMatchObject({
      code: 'policy.invalid',
      issues: [{ path: 'jwt.keys[0]', message: expect.stringMatching(/private key/) }],
    });
  });

  it('refuses a private JWK in keys with a PolicyError naming the entry', async () => {
    const k = await testKeys();
    const privateJwk = await exportJWK(k.ecPrivate);
    await expect(jwtGuard({ keys: [(await testKeys()).rsaPublicJwk, privateJwk] })).rejects.toMatchObject({
      name: 'PolicyError',
      issues: [{ path: 'jwt.keys[1]', message: expect.stringMatching(/public/) }],
    });
  });

  it('refuses an HS256 secret shorter than 32 bytes with a PolicyError, and takes one of exactly 32', () => {
    const hs256 = (secret: string | Uint8Array) => () => createGuard({ jwt: { issuer: ISSUER, audience: AUDIENCE, algorithms: ['HS256'], secret } });
    expect(hs256('x'.repeat(31))).toThrow(PolicyError);
    expect(hs256('x'.repeat(31))).toThrow(/jwt\.secret: HS256 needs a secret of at least 32 bytes \(got 31\)/);
    expect(hs256(new Uint8Array(16))).toThrow(/jwt\.secret: HS256 needs a secret of at least 32 bytes \(got 16\)/);
    expect(hs256('x'.repeat(32))).not.toThrow();
  });

  it("refuses algorithms: ['none'] with a PolicyError", () => {
    for (const none of ['none', 'None']) {
      const build = () => createGuard({ jwt: { issuer: ISSUER, audience: AUDIENCE, algorithms: [none as 'RS256'], secret: HMAC_SECRET } });
      expect(build).toThrow(PolicyError);
      expect(build).toThrow(/jwt\.algorithms\[0\]: "none" is never accepted/);
    }
  });
});

describe('issuer and audience', () => {
  it('refuses a token from another issuer', async () => {
    const guard = await jwtGuard();
    expectRefused(await guard.evaluate(bearer(await accessToken({}, { iss: 'https://evil.example.test/' }))), 'token.invalid');
  });

  it('refuses a token without iss', async () => {
    const guard = await jwtGuard();
    expectRefused(await guard.evaluate(bearer(await accessToken({}, { iss: null }))), 'token.invalid');
  });

  it('refuses a token for another audience', async () => {
    const guard = await jwtGuard();
    expectRefused(await guard.evaluate(bearer(await accessToken({}, { aud: 'api://payments' }))), 'token.invalid');
    expectRefused(await guard.evaluate(bearer(await accessToken({}, { aud: ['api://payments', 'api://users'] }))), 'token.invalid');
  });

  it('refuses a token without aud', async () => {
    const guard = await jwtGuard();
    expectRefused(await guard.evaluate(bearer(await accessToken({}, { aud: null }))), 'token.invalid');
  });

  it('accepts a token whose aud array contains the expected audience', async () => {
    const guard = await jwtGuard();
    expectAllowed(await guard.evaluate(bearer(await accessToken({}, { aud: ['api://payments', AUDIENCE] }))));
  });
});

describe('time claims', () => {
  it('refuses a token without exp by default', async () => {
    const guard = await jwtGuard();
    expectRefused(await guard.evaluate(bearer(await accessToken({}, { exp: null }))), 'token.invalid');
  });

  it('accepts a token without exp when requireExp is false', async () => {
    const guard = await jwtGuard({ requireExp: false });
    const decision = await guard.evaluate(bearer(await accessToken({}, { exp: null })));
    expectAllowed(decision);
    expect(decision.token?.expiresAt).toBeUndefined();
  });

  for (const claim of ['exp', 'nbf', 'iat'] as const) {
    for (const [kind, value] of [
      ['a string', String(NOW_S + 60)],
      ['an object', { $date: NOW_S + 60 }],
      ['an array', [NOW_S + 60]],
    ] as const) {
      it(`refuses a token whose ${claim} is ${kind}`, async () => {
        const guard = await jwtGuard({ requireExp: false });
        const opts = claim === 'exp' ? { exp: null } : claim === 'iat' ? { iat: null, exp: NOW_S + 3600 } : {};
        expectRefused(await guard.evaluate(bearer(await accessToken({ [claim]: value }, opts))), 'token.invalid');
      });
    }
  }

  it('refuses a token whose exp has passed beyond the clock tolerance', async () => {
    const guard = await jwtGuard();
    expectRefused(await guard.evaluate(bearer(await accessToken({}, { iat: NOW_S - 3600, exp: NOW_S - 6 }))), 'token.expired');
  });

  it('accepts a token that expired within the clock tolerance (default 5s)', async () => {
    const guard = await jwtGuard();
    expectAllowed(await guard.evaluate(bearer(await accessToken({}, { iat: NOW_S - 3600, exp: NOW_S - 4 }))));
  });

  it('refuses a token whose nbf is in the future beyond the clock tolerance', async () => {
    const guard = await jwtGuard();
    expectRefused(await guard.evaluate(bearer(await accessToken({ nbf: NOW_S + 6 }))), 'token.expired');
  });

  it('accepts a token whose nbf is in the future within the clock tolerance', async () => {
    const guard = await jwtGuard({ clockTolerance: '30s' });
    expectAllowed(await guard.evaluate(bearer(await accessToken({ nbf: NOW_S + 25 }))));
    expectRefused(await guard.evaluate(bearer(await accessToken({ nbf: NOW_S + 31 }))), 'token.expired');
  });

  it('refuses a token issued in the future beyond the clock tolerance', async () => {
    const guard = await jwtGuard();
    expectRefused(await guard.evaluate(bearer(await accessToken({}, { iat: NOW_S + 60 }))), 'token.invalid');
    expectAllowed(await guard.evaluate(bearer(await accessToken({}, { iat: NOW_S + 4 }))));
  });

  it('refuses a token from the future under maxTokenAge too', async () => {
    const guard = await jwtGuard({ maxTokenAge: '1h' });
    expectRefused(await guard.evaluate(bearer(await accessToken({}, { iat: NOW_S + 60 }))), 'token.invalid');
  });

  it('refuses a token whose iat is older than maxTokenAge although its exp is later', async () => {
    const guard = await jwtGuard({ maxTokenAge: '1h' });
    expectRefused(await guard.evaluate(bearer(await accessToken({}, { iat: NOW_S - 3606, exp: NOW_S + 3600 }))), 'token.expired');
    expectAllowed(await guard.evaluate(bearer(await accessToken({}, { iat: NOW_S - 3500, exp: NOW_S + 3600 }))));
  });

  it('refuses a token without iat under maxTokenAge', async () => {
    const guard = await jwtGuard({ maxTokenAge: '1h' });
    expectRefused(await guard.evaluate(bearer(await accessToken({}, { iat: null, exp: NOW_S + 600 }))), 'token.invalid');
  });
});

describe('token type', () => {
  it("refuses an ID-token-typed JWT when the policy requires typ 'at+jwt'", async () => {
    const guard = await jwtGuard({ typ: 'at+jwt' });
    expectRefused(await guard.evaluate(bearer(await accessToken({ nonce: 'n-0S6_WzA2Mj' }, { header: { typ: 'JWT' } }))), 'token.invalid');
    expectRefused(await guard.evaluate(bearer(await accessToken({ jti: 'untyped' }))), 'token.invalid');
  });

  it("accepts 'at+jwt' and 'application/at+jwt' when the policy requires typ 'at+jwt'", async () => {
    const guard = await jwtGuard({ typ: 'at+jwt' });
    expectAllowed(await guard.evaluate(bearer(await accessToken({ jti: 'a' }, { header: { typ: 'at+jwt' } }))));
    expectAllowed(await guard.evaluate(bearer(await accessToken({ jti: 'b' }, { header: { typ: 'application/at+jwt' } }))));
  });
});

describe('malformed tokens', () => {
  it('refuses a five-segment JWE as malformed without decrypting it', async () => {
    const guard = await jwtGuard({ algorithms: ['RS256', 'HS256'], secret: HMAC_SECRET });
    const jwe = await new CompactEncrypt(new TextEncoder().encode(JSON.stringify(validClaims())))
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
      .encrypt(new TextEncoder().encode(HMAC_SECRET).slice(0, 32));
    expect(jwe.split('.')).toHaveLength(5);
    const before = verifications();
    expectRefused(await guard.evaluate(bearer(jwe)), 'token.malformed');
    expect(verifications()).toBe(before);
  });

  it('refuses a token longer than the default 8 KiB before verifying it, even with a valid signature', async () => {
    const guard = await jwtGuard();
    const big = await accessToken({ padding: 'x'.repeat(6500) });
    expect(big.length).toBeGreaterThan(8192);
    const before = verifications();
    expectRefused(await guard.evaluate(bearer(big)), 'token.malformed');
    expect(verifications()).toBe(before);
    expectAllowed(await guard.evaluate(bearer(await accessToken({ padding: 'x'.repeat(5500) }))));
  });

  it('refuses an oversized token as malformed whatever characters it holds', async () => {
    const guard = await jwtGuard();
    for (const token of ['a'.repeat(8193), `${'a'.repeat(8191)}%%`, `${'a'.repeat(8191)} b`, 'a.'.repeat(50_000)]) {
      expectRefused(await guard.evaluate(bearer(token)), 'token.malformed');
    }
  });

  it('applies maxTokenBytes to the byte: a token of exactly the limit passes, one byte over does not', async () => {
    const token = await accessToken();
    expectAllowed(await (await jwtGuard({}, { maxTokenBytes: token.length })).evaluate(bearer(token)));
    expectRefused(await (await jwtGuard({}, { maxTokenBytes: token.length - 1 })).evaluate(bearer(token)), 'token.malformed');
  });

  it('refuses segments that are not base64url', async () => {
    const guard = await jwtGuard();
    const [h, p, s] = segments(await accessToken());
    for (const token of [`${h}.${p}.${s}=`, `${h}.${p}+.${s}`, `${h.replace(/-|_/g, '/')}/.${p}.${s}`, `${h}.${p}.~${s}`]) {
      expectRefused(await guard.evaluate(bearer(token)), 'token.malformed');
    }
  });

  it('refuses garbage that is not a compact JWS', async () => {
    const guard = await jwtGuard();
    const notJson = Buffer.from('not json').toString('base64url');
    for (const token of ['not-a-jwt', 'a.b', '..', `${notJson}.${notJson}.${notJson}`, `${Buffer.from('[]').toString('base64url')}.${notJson}.sig`]) {
      expectRefused(await guard.evaluate(bearer(token)), 'token.malformed');
    }
  });

  it('refuses a correctly signed token whose payload is not a JSON object as malformed', async () => {
    const k = await testKeys();
    const guard = await jwtGuard();
    for (const payload of ['not json', '[1,2]', '"alice"']) {
      const token = await signCompact({ alg: 'RS256', kid: 'rsa-1' }, Buffer.from(payload).toString('base64url'), k.rsaPrivate);
      expectRefused(await guard.evaluate(bearer(token)), 'token.malformed');
    }
  });

  it('checks the signature before reading the payload: garbage under a forged signature is invalid', async () => {
    const guard = await jwtGuard();
    const token = `${Buffer.from('{"alg":"RS256","kid":"rsa-1"}').toString('base64url')}.${Buffer.from('not json').toString('base64url')}.c2ln`;
    expectRefused(await guard.evaluate(bearer(token)), 'token.invalid');
  });

  it('refuses a token whose payload was changed under its original signature', async () => {
    const guard = await jwtGuard();
    const [h, , s] = segments(await accessToken());
    const forged = Buffer.from(JSON.stringify(validClaims({ scope: 'orders:read admin', sub: 'root' }))).toString('base64url');
    expectRefused(await guard.evaluate(bearer(`${h}.${forged}.${s}`)), 'token.invalid');
  });

  it('refuses a token whose header was changed under its original signature', async () => {
    const guard = await jwtGuard();
    const [, p, s] = segments(await accessToken());
    const header = Buffer.from(JSON.stringify({ alg: 'RS256', kid: 'rsa-1', typ: 'at+jwt' })).toString('base64url');
    expectRefused(await guard.evaluate(bearer(`${header}.${p}.${s}`)), 'token.invalid');
  });

  it('refuses a correctly signed token that marks an unknown extension as critical', async () => {
    const k = await testKeys();
    const guard = await jwtGuard();
    const token = await signCompact({ alg: 'RS256', kid: 'rsa-1', crit: ['urn:example:must-understand'], 'urn:example:must-understand': true }, validClaims(), k.rsaPrivate);
    expectRefused(await guard.evaluate(bearer(token)), 'token.invalid');
  });

  it('refuses a correctly signed JWT with an unencoded (b64: false) payload', async () => {
    const k = await testKeys();
    const guard = await jwtGuard();
    const token = await signCompact({ alg: 'RS256', kid: 'rsa-1', b64: false, crit: ['b64'] }, 'payload', k.rsaPrivate);
    expectRefused(await guard.evaluate(bearer(token)), 'token.malformed');
  });
});

describe('token id', () => {
  it('uses jti as the token id when present', async () => {
    const guard = await jwtGuard();
    const decision = await guard.evaluate(bearer(await accessToken({ jti: 'at-7f3c' })));
    expectAllowed(decision);
    expect(decision.token?.id).toBe('at-7f3c');
  });

  it('derives the id without jti from the SHA-256 of the signed header and payload', async () => {
    const guard = await jwtGuard();
    const token = await accessToken();
    const [h, p] = segments(token);
    const decision = await guard.evaluate(bearer(token));
    expect(decision.token?.id).toBe('sha256:' + createHash('sha256').update(`${h}.${p}`).digest('base64url'));
  });

  it('refuses a token whose jti is empty or not a string, or whose sub is not a string', async () => {
    const guard = await jwtGuard();
    expectRefused(await guard.evaluate(bearer(await accessToken({ jti: '' }))), 'token.invalid');
    expectRefused(await guard.evaluate(bearer(await accessToken({ jti: 42 }))), 'token.invalid');
    expectRefused(await guard.evaluate(bearer(await accessToken({ sub: { id: 'alice' } }, { sub: null }))), 'token.invalid');
  });

  it('gives two different ES256 signatures over the same header and payload the same id, and a revocation catches both', async () => {
    const guard = await jwtGuard();
    const first = await accessToken({}, { alg: 'ES256' });
    const second = await accessToken({}, { alg: 'ES256' });
    expect(segments(second)[2]).not.toBe(segments(first)[2]); // ECDSA is randomized
    expect(segments(second).slice(0, 2)).toEqual(segments(first).slice(0, 2));

    const a = await guard.evaluate(bearer(first));
    const b = await guard.evaluate(bearer(second));
    expectAllowed(a);
    expectAllowed(b);
    expect(b.token?.id).toBe(a.token?.id);

    await guard.revoke(a.token!.id);
    expectRefused(await guard.evaluate(bearer(second)), 'token.revoked');
    expectRefused(await guard.evaluate(bearer(first)), 'token.revoked');
  });

  it('gives a malleated ES256 signature (s replaced by n - s, made without the key) the id of the original, so its revocation holds', async () => {
    const guard = await jwtGuard();
    const original = await accessToken({}, { alg: 'ES256' });
    const malleated = highS(original);
    expect(malleated).not.toBe(original);
    const a = await guard.evaluate(bearer(original));
    // WebCrypto accepts both s and n - s: the re-encoding is a valid token anyone holding the original can make.
    const b = await guard.evaluate(bearer(malleated));
    expectAllowed(b);
    expect(b.token?.id).toBe(a.token?.id);
    await guard.revoke(a.token!.id);
    expectRefused(await guard.evaluate(bearer(malleated)), 'token.revoked');
    expectRefused(await guard.evaluate(bearer(highS(malleated))), 'token.revoked');
  });

  it('revoking a jti refuses every encoding of that token', async () => {
    const guard = await jwtGuard();
    const first = await accessToken({ jti: 'at-1' }, { alg: 'ES256' });
    const second = await accessToken({ jti: 'at-1' }, { alg: 'ES256' });
    expectAllowed(await guard.evaluate(bearer(first)));
    await guard.revoke('at-1');
    expectRefused(await guard.evaluate(bearer(second)), 'token.revoked');
  });
});

describe('scopes', () => {
  const scopesOf = async (claims: Record<string, unknown>) => {
    const guard = await jwtGuard();
    return guard.evaluate(bearer(await signToken(claims)));
  };

  it('reads scopes from a space-separated scope string', async () => {
    const decision = await scopesOf({ scope: 'profile orders:read  orders:write' });
    expectAllowed(decision);
    expect(decision.token?.scopes).toEqual(['profile', 'orders:read', 'orders:write']);
  });

  it('reads scopes from an scp array when there is no scope claim', async () => {
    const decision = await scopesOf({ scp: ['orders:read', 'profile'] });
    expectAllowed(decision);
    expect(decision.token?.scopes).toEqual(['orders:read', 'profile']);
  });

  it('uses scope alone when both scope and scp are present, never their union', async () => {
    const decision = await scopesOf({ scope: 'profile', scp: ['orders:read'] });
    expectRefused(decision, 'scope.insufficient');
    expect(decision.token?.scopes).toEqual(['profile']);
    expect(decision.headers['WWW-Authenticate']).toContain('scope="orders:read"');
  });

  it('grants no scopes when scope is not a string, and does not fall back to scp', async () => {
    for (const scope of [['orders:read'], { 'orders:read': true }, 1, null]) {
      const decision = await scopesOf({ scope, scp: ['orders:read'] });
      expectRefused(decision, 'scope.insufficient');
      expect(decision.token?.scopes).toEqual([]);
    }
  });

  it('grants no scopes from an scp array holding a non-string', async () => {
    const decision = await scopesOf({ scp: ['orders:read', 7] });
    expectRefused(decision, 'scope.insufficient');
    expect(decision.token?.scopes).toEqual([]);
  });

  it('never matches a scope by substring, prefix or case', async () => {
    for (const scope of ['orders:readonly', 'orders', 'orders:rea', 'Orders:Read', 'orders:read:all', 'xorders:read', 'orders:read,orders:write']) {
      expectRefused(await scopesOf({ scope }), 'scope.insufficient');
    }
    expectRefused(await scopesOf({ scp: ['orders:readonly', 'orders'] }), 'scope.insufficient');
  });
});

describe('verified-token cache', () => {
  it('verifies a new token once when a burst of requests presents it at the same time', async () => {
    const guard = await jwtGuard();
    const token = await signToken({ scope: 'orders:read', jti: 'burst-1' });
    const before = verifications();
    const decisions = await Promise.all(Array.from({ length: 20 }, () => guard.evaluate(bearer(token))));
    expect(decisions.every((d) => d.reason === 'ok')).toBe(true);
    expect(verifications() - before).toBe(1);
  });

  it('does not share a verification between different instants (the outcome depends on the time)', async () => {
    const guard = await jwtGuard();
    const token = await signToken({ scope: 'orders:read' }, { exp: NOW_S + 10 });
    const [now, later] = await Promise.all([guard.evaluate(bearer(token)), guard.evaluate(bearer(token, { now: new Date((NOW_S + 60) * 1000) }))]);
    expect([now.reason, later.reason]).toEqual(['ok', 'token.expired']);
  });

  it('skips verification for a token seen again and returns the same token', async () => {
    const guard = await jwtGuard();
    const token = await accessToken();
    const first = await guard.evaluate(bearer(token));
    const before = verifications();
    const second = await guard.evaluate(bearer(token));
    expect(verifications()).toBe(before);
    expectAllowed(second);
    expect(second.token).toEqual(first.token);
  });

  it('still refuses a cached token once its exp has passed', async () => {
    const guard = await jwtGuard();
    const token = await accessToken({}, { exp: NOW_S + 60 });
    expectAllowed(await guard.evaluate(bearer(token)));
    const before = verifications();
    expectAllowed(await guard.evaluate(bearer(token, { now: new Date(NOW.getTime() + 30_000) })));
    expectRefused(await guard.evaluate(bearer(token, { now: new Date(NOW.getTime() + 66_000) })), 'token.expired');
    expect(verifications()).toBe(before);
  });

  it('still refuses a cached token once it is revoked', async () => {
    const guard = await jwtGuard();
    const token = await accessToken({ jti: 'cached-then-revoked' });
    expectAllowed(await guard.evaluate(bearer(token)));
    await guard.revoke('cached-then-revoked');
    expectRefused(await guard.evaluate(bearer(token)), 'token.revoked');
  });

  it('still refuses a cached token before its nbf or outside maxTokenAge at a later request time', async () => {
    const guard = await jwtGuard({ maxTokenAge: '2h' });
    const token = await accessToken({ nbf: NOW_S }, { exp: NOW_S + 86_400 });
    expectAllowed(await guard.evaluate(bearer(token)));
    expectRefused(await guard.evaluate(bearer(token, { now: new Date(NOW.getTime() - 60_000) })), 'token.expired');
    expectRefused(await guard.evaluate(bearer(token, { now: new Date(NOW.getTime() + 3 * 3_600_000) })), 'token.expired');
  });

  it("does not keep a far-future token past its exp relative to the request's now", async () => {
    const guard = await jwtGuard();
    const exp = NOW_S + 10 * 365 * 86_400;
    const token = await accessToken({}, { exp });
    expectAllowed(await guard.evaluate(bearer(token)));
    expectAllowed(await guard.evaluate(bearer(token, { now: new Date((exp - 60) * 1000) })));
    expectRefused(await guard.evaluate(bearer(token, { now: new Date((exp + 6) * 1000) })), 'token.expired');
  });

  it('does not cache a refused token', async () => {
    const guard = await jwtGuard();
    const token = await accessToken({}, { iss: 'https://evil.example.test/' });
    const before = verifications();
    expectRefused(await guard.evaluate(bearer(token)), 'token.invalid');
    expectRefused(await guard.evaluate(bearer(token)), 'token.invalid');
    expect(verifications()).toBe(before + 2);
  });

  it('verifies again after clearTokenCache', async () => {
    const guard = await jwtGuard();
    const token = await accessToken();
    expectAllowed(await guard.evaluate(bearer(token)));
    guard.clearTokenCache();
    const before = verifications();
    expectAllowed(await guard.evaluate(bearer(token)));
    expect(verifications()).toBe(before + 1);
  });

  it('keeps guards apart: a token cached by one guard is still verified by another', async () => {
    const lenient = await jwtGuard();
    const strict = await jwtGuard({ typ: 'at+jwt' });
    const token = await accessToken();
    expectAllowed(await lenient.evaluate(bearer(token)));
    expectRefused(await strict.evaluate(bearer(token)), 'token.invalid');
  });
});

it('uses the store given in the policy for JWT revocations', async () => {
  const store = new MemoryStore();
  const guard = createGuard({ jwt: await jwtPolicy(), store, clock: () => NOW, unmatched: 'authenticate' });
  await store.revoke('shared-jti', { now: NOW.getTime() });
  expectRefused(await guard.evaluate(bearer(await accessToken({ jti: 'shared-jti' }))), 'token.revoked');
});
