// Attacks on JWS verification (RFC 7515, RFC 7518, RFC 8725) against the guard's node:crypto signature check:
// algorithm confusion, keys that do not fit the algorithm, signature encodings and lengths, base64url and header
// tricks, claim types, and the verified-token cache and key memo. Tokens are hand-made so every byte is the attacker's.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { constants, createHmac, generateKeyPairSync, KeyObject, sign } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { JWK } from 'jose';
import { createGuard, MemoryStore, type Decision, type JwtAlgorithm, type JwtPolicy } from '../../src/index.js';
import { AUDIENCE, HMAC_SECRET, ISSUER, NOW, NOW_S, testKeys } from '../helpers/tokens.js';
import { ORDERS_RULES, bearer, expectAllowed, expectRefused } from './fixtures.js';

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
let counter = 0;
/** Valid claims for a fresh (never cached) token. */
const claims = (extra: Record<string, unknown> = {}) => ({
  iss: ISSUER,
  aud: AUDIENCE,
  sub: 'alice',
  scope: 'orders:read',
  iat: NOW_S,
  exp: NOW_S + 3600,
  jti: `atk-${++counter}`,
  ...extra,
});

/** The signing input of a header and a payload (objects are JSON-encoded, strings taken as the raw JSON text). */
const inputOf = (header: unknown, payload: unknown) => `${b64(header)}.${b64(payload)}`;
const hmac = (hash: string, secret: string | Buffer, input: string) => createHmac(hash, secret).update(input).digest();
const join = (input: string, signature: Buffer) => `${input}.${signature.toString('base64url')}`;
const hs256 = (header: unknown, payload: unknown, secret: string | Buffer = HMAC_SECRET) => {
  const input = inputOf(header, payload);
  return join(input, hmac('sha256', secret, input));
};

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
const k256 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' });
const ed = generateKeyPairSync('ed25519');
const jwkOf = (k: KeyObject, extra: Partial<JWK> = {}): JWK => ({ ...(k.export({ format: 'jwk' }) as JWK), ...extra });
const pemOf = (k: KeyObject) => k.export({ format: 'pem', type: 'spki' }) as string;

const guardWith = (jwt: Partial<JwtPolicy>) =>
  createGuard({ jwt: { issuer: ISSUER, audience: AUDIENCE, algorithms: ['RS256'], ...jwt } as JwtPolicy, store: new MemoryStore(), clock: () => NOW, rules: ORDERS_RULES });
const check = (guard: ReturnType<typeof guardWith>, token: string, now: Date = NOW): Promise<Decision> => guard.evaluate(bearer(token, { now }));

const rsSign = (key: KeyObject, input: string, hash = 'sha256') => sign(hash, Buffer.from(input), key);
const psSign = (key: KeyObject, input: string, saltLength = 32, hash = 'sha256') =>
  sign(hash, Buffer.from(input), { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength });
const esSign = (key: KeyObject, input: string, hash = 'sha256', dsaEncoding: 'der' | 'ieee-p1363' = 'ieee-p1363') => sign(hash, Buffer.from(input), { key, dsaEncoding });

describe('algorithm confusion', () => {
  it('refuses an HS256 token MACed with the RSA public key (PEM or JWK text) as the secret', async () => {
    const pem = pemOf(rsa.publicKey);
    const jwkText = JSON.stringify(jwkOf(rsa.publicKey));
    const rsOnly = guardWith({ keys: [pem] });
    const both = guardWith({ algorithms: ['RS256', 'HS256'], keys: [pem], secret: HMAC_SECRET });
    for (const secret of [pem, jwkText, Buffer.from(jwkOf(rsa.publicKey).n as string, 'base64url')]) {
      const token = hs256({ alg: 'HS256', typ: 'JWT' }, claims(), secret);
      expectRefused(await check(rsOnly, token), 'token.invalid');
      expectRefused(await check(both, token), 'token.invalid');
    }
    // The guard is otherwise working: the same RSA key's real RS256 token passes.
    const input = inputOf({ alg: 'RS256' }, claims());
    expectAllowed(await check(rsOnly, join(input, rsSign(rsa.privateKey, input))));
  });

  it('refuses alg none in every spelling, a missing or empty alg, and an alg that is not a string', async () => {
    const guard = guardWith({ algorithms: ['RS256', 'HS256'], keys: [pemOf(rsa.publicKey)], secret: HMAC_SECRET });
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      const input = inputOf({ alg }, claims());
      expectRefused(await check(guard, `${input}.`), 'token.invalid');
      expectRefused(await check(guard, join(input, hmac('sha256', HMAC_SECRET, input))), 'token.invalid');
    }
    for (const header of [{}, { alg: '' }, { alg: 256 }, { alg: ['HS256'] }, { alg: null }, { alg: { HS256: true } }]) {
      expectRefused(await check(guard, hs256(header, claims())), 'token.malformed');
    }
  });

  it('refuses an algorithm outside the allow-list even when a configured key would verify it', async () => {
    const ecJwk = jwkOf(p256.publicKey, { kid: 'ec' });
    const guard = guardWith({ algorithms: ['RS256'], keys: [jwkOf(rsa.publicKey, { kid: 'rsa' }), ecJwk] });
    const es = inputOf({ alg: 'ES256', kid: 'ec' }, claims());
    const ps = inputOf({ alg: 'PS256', kid: 'rsa' }, claims());
    const rs512 = inputOf({ alg: 'RS512', kid: 'rsa' }, claims());
    for (const token of [join(es, esSign(p256.privateKey, es)), join(ps, psSign(rsa.privateKey, ps)), join(rs512, rsSign(rsa.privateKey, rs512, 'sha512'))]) {
      const d = await check(guard, token);
      expectRefused(d, 'token.invalid');
      expect(d.detail).toBe('algorithm not allowed');
    }
    // An HS token with no secret configured is refused before any key is looked at.
    expectRefused(await check(guard, hs256({ alg: 'HS256' }, claims())), 'token.invalid');
  });

  it('refuses PS256 under an RS256 signature and RS256 under a PS256 signature (same RSA key, both allowed)', async () => {
    const guard = guardWith({ algorithms: ['RS256', 'PS256'], keys: [pemOf(rsa.publicKey)] });
    const asPs = inputOf({ alg: 'PS256' }, claims());
    const asRs = inputOf({ alg: 'RS256' }, claims());
    expectRefused(await check(guard, join(asPs, rsSign(rsa.privateKey, asPs))), 'token.invalid');
    expectRefused(await check(guard, join(asRs, psSign(rsa.privateKey, asRs))), 'token.invalid');
    expectAllowed(await check(guard, join(asPs, psSign(rsa.privateKey, asPs))));
    expectAllowed(await check(guard, join(asRs, rsSign(rsa.privateKey, asRs))));
  });

  it('refuses a token whose alg does not fit the kid-selected key: curve, key type, secp256k1, OKP', async () => {
    const guard = guardWith({
      algorithms: ['RS256', 'PS256', 'ES256', 'ES384', 'EdDSA'],
      keys: [
        jwkOf(p384.publicKey, { kid: 'p384' }),
        jwkOf(k256.publicKey, { kid: 'k256' }),
        jwkOf(rsa.publicKey, { kid: 'rsa' }),
        jwkOf(p256.publicKey, { kid: 'p256' }),
        jwkOf(ed.publicKey, { kid: 'ed' }),
      ],
    });
    const token = (alg: string, kid: string, signer: (input: string) => Buffer) => {
      const input = inputOf({ alg, kid }, claims());
      return join(input, signer(input));
    };
    const refused = [
      token('ES256', 'p384', (i) => esSign(p384.privateKey, i, 'sha256')), // P-384 key, ES256 token
      token('ES384', 'p256', (i) => esSign(p256.privateKey, i, 'sha384')), // P-256 key, ES384 token
      token('ES256', 'k256', (i) => esSign(k256.privateKey, i)), // secp256k1 (ES256K) key, ES256 token
      token('ES256K', 'k256', (i) => esSign(k256.privateKey, i)), // ES256K is not an algorithm the guard knows
      token('ES256', 'rsa', (i) => rsSign(rsa.privateKey, i)), // RSA key for ES*
      token('RS256', 'p256', (i) => esSign(p256.privateKey, i)), // EC key for RS*
      token('PS256', 'p256', (i) => esSign(p256.privateKey, i)),
      token('RS256', 'ed', (i) => sign(null, Buffer.from(i), ed.privateKey)), // OKP key for anything but EdDSA
      token('ES256', 'ed', (i) => sign(null, Buffer.from(i), ed.privateKey)),
      token('EdDSA', 'p256', (i) => esSign(p256.privateKey, i)), // EC key for EdDSA
    ];
    for (const t of refused) expectRefused(await check(guard, t), 'token.invalid');
    expectAllowed(
      await check(
        guard,
        token('ES384', 'p384', (i) => esSign(p384.privateKey, i, 'sha384')),
      ),
    );
    expectAllowed(
      await check(
        guard,
        token('EdDSA', 'ed', (i) => sign(null, Buffer.from(i), ed.privateKey)),
      ),
    );
  });

  it("refuses a token a JWK's alg, use or key_ops rules out, though the key would verify it", async () => {
    const guard = guardWith({
      algorithms: ['RS256', 'PS256'],
      keys: [
        jwkOf(rsa.publicKey, { kid: 'ps-only', alg: 'PS256' }),
        jwkOf(rsa.publicKey, { kid: 'enc', use: 'enc' }),
        jwkOf(rsa.publicKey, { kid: 'sign-op', key_ops: ['sign'] }),
      ],
    });
    for (const kid of ['ps-only', 'enc', 'sign-op']) {
      const input = inputOf({ alg: 'RS256', kid }, claims());
      expectRefused(await check(guard, join(input, rsSign(rsa.privateKey, input))), 'token.invalid');
    }
    const input = inputOf({ alg: 'PS256', kid: 'ps-only' }, claims());
    expectAllowed(await check(guard, join(input, psSign(rsa.privateKey, input))));
  });
});

describe('ECDSA signatures', () => {
  const guard = guardWith({ algorithms: ['ES256', 'ES384'], keys: [jwkOf(p256.publicKey, { kid: 'p256' }), jwkOf(p384.publicKey, { kid: 'p384' })] });

  it('refuses a DER-encoded signature and an r||s of the wrong length (64 bytes for P-256, 96 for P-384)', async () => {
    const input = inputOf({ alg: 'ES256', kid: 'p256' }, claims());
    const raw = esSign(p256.privateKey, input);
    expect(raw.length).toBe(64);
    expectRefused(await check(guard, join(input, esSign(p256.privateKey, input, 'sha256', 'der'))), 'token.invalid');
    expectRefused(await check(guard, join(input, Buffer.concat([raw, Buffer.alloc(1)]))), 'token.invalid');
    expectRefused(await check(guard, join(input, Buffer.concat([Buffer.alloc(1), raw]))), 'token.invalid');
    expectRefused(await check(guard, join(input, raw.subarray(0, 63))), 'token.invalid');
    expectRefused(await check(guard, join(input, Buffer.alloc(64))), 'token.invalid'); // r = s = 0
    const i384 = inputOf({ alg: 'ES384', kid: 'p384' }, claims());
    const raw384 = esSign(p384.privateKey, i384, 'sha384');
    expect(raw384.length).toBe(96);
    expectRefused(await check(guard, join(i384, esSign(p384.privateKey, i384, 'sha384', 'der'))), 'token.invalid');
    expectRefused(await check(guard, join(i384, raw384.subarray(0, 64))), 'token.invalid');
    expectAllowed(await check(guard, join(input, raw)));
    expectAllowed(await check(guard, join(i384, raw384)));
  });

  it('accepts the high-S twin of a signature (RFC 7518 has no low-S rule) under the same token id', async () => {
    const n = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');
    const input = inputOf({ alg: 'ES256', kid: 'p256' }, claims({ jti: undefined }));
    const raw = esSign(p256.privateKey, input);
    const s = BigInt(`0x${raw.subarray(32).toString('hex')}`);
    const twin = Buffer.concat([raw.subarray(0, 32), Buffer.from((n - s).toString(16).padStart(64, '0'), 'hex')]);
    const first = await check(guard, join(input, raw));
    const second = await check(guard, join(input, twin));
    expectAllowed(first);
    expectAllowed(second);
    // Without jti the id covers header and payload only: the twin cannot sidestep a revocation or a counter.
    expect(second.token?.id).toBe(first.token?.id);
  });
});

describe('RSA signatures', () => {
  const guard = guardWith({ algorithms: ['RS256', 'PS256', 'PS384'], keys: [pemOf(rsa.publicKey)] });

  it('refuses a PS256 or RS256 signature one octet short (leading zero dropped) or one octet long (RFC 8017 §8.1.2, §8.2.2)', async () => {
    for (const [alg, signer] of [
      ['PS256', (i: string) => psSign(rsa.privateKey, i)],
      ['RS256', (i: string) => rsSign(rsa.privateKey, i)],
    ] as const) {
      // About one signature in 256 starts with a zero octet.
      let input = '';
      let signature = Buffer.alloc(0);
      for (let tries = 0; tries < 5000 && signature[0] !== 0; tries++) {
        input = inputOf({ alg }, claims());
        signature = signer(input);
      }
      expect(signature[0]).toBe(0);
      expectRefused(await check(guard, join(input, signature.subarray(1))), 'token.invalid');
      expectRefused(await check(guard, join(input, Buffer.concat([Buffer.alloc(1), signature]))), 'token.invalid');
      expectAllowed(await check(guard, join(input, signature)));
    }
  });

  it('refuses a PSS signature whose salt is not the hash length, and PS384 signed with SHA-256', async () => {
    for (const salt of [0, 20, 64, constants.RSA_PSS_SALTLEN_MAX_SIGN]) {
      const input = inputOf({ alg: 'PS256' }, claims());
      expectRefused(await check(guard, join(input, psSign(rsa.privateKey, input, salt))), 'token.invalid');
    }
    const input = inputOf({ alg: 'PS384' }, claims());
    expectRefused(await check(guard, join(input, psSign(rsa.privateKey, input, 48, 'sha256'))), 'token.invalid');
    expectAllowed(await check(guard, join(input, psSign(rsa.privateKey, input, 48, 'sha384'))));
  });

  it('refuses to start with a configured RSA key under 2048 bits', () => {
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
    expect(() => guardWith({ keys: [pemOf(weak.publicKey)] })).toThrow(/2048/);
    expect(() => guardWith({ keys: [jwkOf(weak.publicKey)] })).toThrow(/2048/);
  });
});

describe('HMAC', () => {
  const secret = HMAC_SECRET.repeat(2);
  const guard = guardWith({ algorithms: ['HS256', 'HS384'], secret });

  it('refuses a truncated, extended, empty or other-hash MAC', async () => {
    const input = inputOf({ alg: 'HS256' }, claims());
    const mac = hmac('sha256', secret, input);
    for (const sig of [
      mac.subarray(0, 16),
      mac.subarray(0, 31),
      Buffer.concat([mac, Buffer.alloc(1)]),
      Buffer.alloc(0),
      hmac('sha512', secret, input),
      hmac('sha384', secret, input),
    ]) {
      expectRefused(await check(guard, join(input, sig)), 'token.invalid');
    }
    const i384 = inputOf({ alg: 'HS384' }, claims());
    expectRefused(await check(guard, join(i384, hmac('sha256', secret, i384))), 'token.invalid');
    expectAllowed(await check(guard, join(i384, hmac('sha384', secret, i384))));
    expectAllowed(await check(guard, join(input, mac)));
  });

  it('refuses an HS512 token when only HS256 and HS384 are allowed, though the secret is long enough', async () => {
    const long = guardWith({ algorithms: ['HS256'], secret: HMAC_SECRET + HMAC_SECRET });
    const input = inputOf({ alg: 'HS512' }, claims());
    expectRefused(await check(long, join(input, hmac('sha512', HMAC_SECRET + HMAC_SECRET, input))), 'token.invalid');
  });

  it('refuses to start with a secret shorter than the hash (RFC 7518 §3.2)', () => {
    expect(() => guardWith({ algorithms: ['HS256'], secret: 'x'.repeat(31) })).toThrow();
    expect(() => guardWith({ algorithms: ['HS512'], secret: 'x'.repeat(63) })).toThrow();
    expect(() => guardWith({ algorithms: ['HS256'], secret: new Uint8Array(0) })).toThrow();
  });
});

describe('compact serialization and base64url', () => {
  const guard = guardWith({ algorithms: ['HS256'], secret: HMAC_SECRET });

  it("refuses padding, '+' and '/', spaces, extra and empty segments", async () => {
    const token = hs256({ alg: 'HS256' }, claims());
    const [h, p, s] = token.split('.') as [string, string, string];
    const std = (seg: string) => Buffer.from(seg, 'base64url').toString('base64'); // may hold + / =
    const bad = [
      `${h}=.${p}.${s}`,
      `${h}.${p}.${s}=`,
      `${h}.${p}==.${s}`,
      `${std(h)}.${std(p)}.${std(s)}`,
      `${h}.${p}.${s.slice(0, 10)}+${s.slice(11)}`,
      `${h}.${p}.${s.slice(0, 10)}/${s.slice(11)}`,
      `${h}.${p}.${s.slice(0, 10)} ${s.slice(11)}`,
      `${h}.${p}.${s}.`,
      `${h}.${p}.${s}.${s}`,
      `${h}.${p}.${s}..${s}`,
      `${h}.${p}`,
      `${h}..${s}`,
      `.${p}.${s}`,
      `${h}.${p}.`,
      '..',
    ];
    expect(std(s)).not.toBe(s);
    // A space is the Authorization header's own syntax error.
    for (const t of bad) expect(['token.malformed', 'token.invalid', 'request.malformed'], t).toContain((await check(guard, t)).reason);
    expectAllowed(await check(guard, token));
  });

  it('treats a signature with non-zero unused trailing bits as the same token (same id), as jose does', async () => {
    // 32 MAC octets are 43 characters whose last carries 2 unused bits: RFC 4648 §3.5 lets decoders accept them.
    const input = inputOf({ alg: 'HS256' }, claims({ jti: undefined }));
    const s = hmac('sha256', HMAC_SECRET, input).toString('base64url');
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = alphabet.indexOf(s.at(-1) as string);
    const twin = `${s.slice(0, -1)}${alphabet[last ^ 1]}`;
    const first = await check(guard, `${input}.${s}`);
    const second = await check(guard, `${input}.${twin}`);
    expectAllowed(first);
    expectAllowed(second);
    expect(second.token?.id).toBe(first.token?.id);
    // A flipped data bit is another signature.
    expectRefused(await check(guard, `${input}.${s.slice(0, -1)}${alphabet[last ^ 4]}`), 'token.invalid');
  });

  it('refuses a payload that is not a JSON object, or not UTF-8, though its MAC holds', async () => {
    for (const payload of ['[1,2]', '"iss"', '42', 'null', 'true', '{"iss":', 'NaN', '']) {
      expectRefused(await check(guard, hs256({ alg: 'HS256' }, payload)), 'token.malformed');
    }
    const input = `${b64({ alg: 'HS256' })}.${Buffer.from([0x7b, 0xff, 0x7d]).toString('base64url')}`;
    expectRefused(await check(guard, join(input, hmac('sha256', HMAC_SECRET, input))), 'token.malformed');
    for (const header of ['[{"alg":"HS256"}]', '"HS256"', 'null', '{"alg":"HS256"']) {
      expectRefused(await check(guard, hs256(header, claims())), 'token.malformed');
    }
  });
});

describe('header parameters', () => {
  const guard = guardWith({ algorithms: ['HS256'], secret: HMAC_SECRET });

  it('refuses b64: false (critical), an unknown critical extension, and a malformed crit', async () => {
    // RFC 7797: the payload signed as is; RFC 7519 JWTs must not use it.
    const raw = JSON.stringify(claims());
    const unencoded = `${b64({ alg: 'HS256', b64: false, crit: ['b64'] })}.${raw}`;
    const d = await check(guard, `${b64({ alg: 'HS256', b64: false, crit: ['b64'] })}..${hmac('sha256', HMAC_SECRET, unencoded).toString('base64url')}`);
    expect(d.effect).toBe('deny');
    const headers: [Record<string, unknown>, 'token.malformed' | 'token.invalid'][] = [
      [{ alg: 'HS256', b64: false, crit: ['b64'] }, 'token.malformed'],
      [{ alg: 'HS256', crit: ['exp'], exp: NOW_S + 60 }, 'token.invalid'],
      [{ alg: 'HS256', crit: ['http://example.test/x'], 'http://example.test/x': 1 }, 'token.invalid'],
      [{ alg: 'HS256', crit: 'b64', b64: true }, 'token.malformed'],
      [{ alg: 'HS256', crit: [], b64: true }, 'token.malformed'],
      [{ alg: 'HS256', crit: [''] }, 'token.malformed'],
      [{ alg: 'HS256', crit: [1] }, 'token.malformed'],
      [{ alg: 'HS256', crit: null }, 'token.malformed'],
      [{ alg: 'HS256', crit: ['b64'] }, 'token.malformed'],
      [{ alg: 'HS256', crit: ['b64'], b64: 'false' }, 'token.malformed'],
    ];
    for (const [header, reason] of headers) expectRefused(await check(guard, hs256(header, claims())), reason);
    // b64 outside crit is ignored (RFC 7797 §6): the payload is still base64url.
    expectAllowed(await check(guard, hs256({ alg: 'HS256', b64: false }, claims())));
  });

  it('reads the last of duplicate header parameters, as JSON.parse and jose do: a trailing alg none is refused', async () => {
    const claimsText = JSON.stringify(claims());
    expectRefused(await check(guard, hs256('{"alg":"HS256","alg":"none"}', claimsText)), 'token.invalid');
    expectRefused(await check(guard, hs256('{"alg":"HS256","crit":["b64"],"b64":true,"crit":["zip"]}', claimsText)), 'token.invalid');
  });

  it('does not take claims or header parameters from a __proto__ key, nor pollute Object.prototype', async () => {
    const proto = (inner: Record<string, unknown>) => `{"__proto__":${JSON.stringify(inner)}}`;
    const noIss = JSON.stringify({ ...claims(), iss: undefined }).replace(/^\{/, `{"__proto__":{"iss":${JSON.stringify(ISSUER)}},`);
    expectRefused(await check(guard, hs256({ alg: 'HS256' }, noIss)), 'token.invalid');
    expectRefused(await check(guard, hs256(proto({ alg: 'HS256' }), claims())), 'token.malformed');
    const withProto = JSON.stringify(claims()).replace(/^\{/, '{"__proto__":{"polluted":true},');
    const d = await check(guard, hs256('{"__proto__":{"crit":["x"]},"alg":"HS256"}', withProto));
    expectAllowed(d);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(({} as Record<string, unknown>)['crit']).toBeUndefined();
  });
});

describe('claims', () => {
  const guard = guardWith({ algorithms: ['HS256'], secret: HMAC_SECRET, audience: [AUDIENCE, 'api://other'], clockTolerance: 0 });

  it('refuses time claims that are strings, null, infinite or past what a Date holds', async () => {
    const bad: Record<string, unknown>[] = [
      { exp: String(NOW_S + 3600) },
      { exp: null },
      { exp: Infinity }, // written as 1e400, which JSON.parse makes Infinity
      { exp: -Infinity },
      { exp: 8.64e12 + 1 },
      { nbf: String(NOW_S) },
      { nbf: Infinity },
      { iat: String(NOW_S) },
      { iat: [NOW_S] },
      { exp: NOW_S + 3600, nbf: NOW_S + 600 },
      { exp: NOW_S },
      { iat: NOW_S + 3600, exp: NOW_S + 7200 },
    ];
    for (const extra of bad) {
      const text = JSON.stringify(claims()).replace(
        /\}$/,
        `,${Object.entries(extra)
          .map(([k, v]) => `"${k}":${typeof v === 'number' && !Number.isFinite(v) ? (v > 0 ? '1e400' : '-1e400') : JSON.stringify(v)}`)
          .join(',')}}`,
      );
      expect(['token.invalid', 'token.expired'], text).toContain((await check(guard, hs256({ alg: 'HS256' }, text))).reason);
    }
  });

  it('matches iss exactly and aud as a string or any member of an array', async () => {
    for (const iss of [ISSUER.slice(0, -1), ISSUER.toUpperCase(), `${ISSUER}x`, [ISSUER], { iss: ISSUER }, null]) {
      expectRefused(await check(guard, hs256({ alg: 'HS256' }, claims({ iss }))), 'token.invalid');
    }
    for (const aud of [['api://nope'], [], [[AUDIENCE]], { aud: AUDIENCE }, `${AUDIENCE} api://other`, AUDIENCE.toUpperCase(), null, 1]) {
      expectRefused(await check(guard, hs256({ alg: 'HS256' }, claims({ aud }))), 'token.invalid');
    }
    const { aud: _aud, ...noAud } = claims();
    expectRefused(await check(guard, hs256({ alg: 'HS256' }, noAud)), 'token.invalid');
    expectAllowed(await check(guard, hs256({ alg: 'HS256' }, claims({ aud: ['api://nope', 'api://other'] }))));
    expectAllowed(await check(guard, hs256({ alg: 'HS256' }, claims({ aud: [1, null, AUDIENCE] }))));
  });
});

describe('the verified-token cache and the key memo', () => {
  it('never serves a cached token past its exp, whatever its cache lifetime', async () => {
    const guard = guardWith({ algorithms: ['HS256'], secret: HMAC_SECRET, clockTolerance: 0 });
    const token = hs256({ alg: 'HS256' }, claims({ exp: NOW_S + 60 }));
    expectAllowed(await check(guard, token));
    expectAllowed(await check(guard, token, new Date(NOW.getTime() + 59_000)));
    expectRefused(await check(guard, token, new Date(NOW.getTime() + 60_000)), 'token.expired');
    expectRefused(await check(guard, token, new Date(NOW.getTime() + 3_600_000)), 'token.expired');
  });

  it("caches only verified tokens: a refused token stays refused, and another token with a cached one's signature is refused", async () => {
    const guard = guardWith({ algorithms: ['HS256'], secret: HMAC_SECRET });
    const forged = hs256({ alg: 'HS256' }, claims(), `${HMAC_SECRET}!`);
    expectRefused(await check(guard, forged), 'token.invalid');
    expectRefused(await check(guard, forged), 'token.invalid');
    const good = hs256({ alg: 'HS256' }, claims({ scope: 'orders:read' }));
    expectAllowed(await check(guard, good));
    const [, , s] = good.split('.') as [string, string, string];
    // The cache is filed under a token's tail (its signature); a hit must still be the whole token.
    const swapped = `${inputOf({ alg: 'HS256' }, claims({ scope: 'orders:read admin' }))}.${s}`;
    expectRefused(await check(guard, swapped), 'token.invalid');
    // A token that failed on time (nbf ahead) is not remembered as failed nor as passed.
    const early = hs256({ alg: 'HS256' }, claims({ nbf: NOW_S + 600 }));
    expectRefused(await check(guard, early), 'token.expired');
    expectAllowed(await check(guard, early, new Date(NOW.getTime() + 600_000)));
  });

  it('checks every later token under a remembered alg + kid (or no kid) with the chosen key', async () => {
    const k = await testKeys();
    const forger = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const guard = guardWith({ algorithms: ['RS256', 'ES256'], keys: [k.rsaPublicJwk] });
    const signRs = (kid: string | undefined, key: KeyObject) => {
      const input = inputOf(kid === undefined ? { alg: 'RS256' } : { alg: 'RS256', kid }, claims());
      return join(input, rsSign(key, input));
    };
    const real = KeyObject.from(k.rsaPrivate);
    for (const kid of ['rsa-1', undefined]) {
      expectAllowed(await check(guard, signRs(kid, real)));
      expectRefused(await check(guard, signRs(kid, forger.privateKey)), 'token.invalid');
      // The forger's signature re-encoded, and an empty one, under the remembered key.
      expectRefused(await check(guard, `${signRs(kid, forger.privateKey).split('.').slice(0, 2).join('.')}.`), 'token.invalid');
      expectAllowed(await check(guard, signRs(kid, real)));
    }
    // A made-up kid is never remembered, nor does it reach the key of another kid.
    expectRefused(await check(guard, signRs('rsa-2', real)), 'token.invalid');
    expectRefused(await check(guard, signRs('rsa-2', real)), 'token.invalid');
    // The memo is per algorithm: ES256 under the RSA key's kid finds no key.
    const es = inputOf({ alg: 'ES256', kid: 'rsa-1' }, claims());
    expectRefused(await check(guard, join(es, esSign(p256.privateKey, es))), 'token.invalid');
  });
});

describe('remote JWK Set rotation', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('checks a new token against the replaced key once the set is refetched, under the same kid', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(NOW);
    const before = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const after = generateKeyPairSync('rsa', { modulusLength: 2048 });
    let served = [jwkOf(before.publicKey, { kid: 'k', alg: 'RS256' })];
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: served }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const jwksUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
      const guard = guardWith({ algorithms: ['RS256' as JwtAlgorithm], jwksUri, jwks: { cooldown: '30s', cacheMaxAge: '10m', timeout: 2000 } });
      const signed = (key: KeyObject) => {
        const input = inputOf({ alg: 'RS256', kid: 'k' }, claims());
        return join(input, rsSign(key, input));
      };
      expectAllowed(await check(guard, signed(before.privateKey)));
      expectRefused(await check(guard, signed(after.privateKey)), 'token.invalid');
      served = [jwkOf(after.publicKey, { kid: 'k', alg: 'RS256' })];
      vi.setSystemTime(NOW.getTime() + 11 * 60_000);
      expectAllowed(await check(guard, signed(after.privateKey)));
      expectRefused(await check(guard, signed(before.privateKey)), 'token.invalid');
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
