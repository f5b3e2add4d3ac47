import { describe, expect, it } from 'vitest';
import { createGuard, PolicyError, TokenGuardError, type TokenGuardPolicy } from '../../src/index.js';
import { jwtPolicy, HMAC_SECRET, testKeys } from '../helpers/tokens.js';

async function problems(policy: Record<string, unknown>): Promise<string[]> {
  try {
    createGuard(policy as TokenGuardPolicy);
  } catch (err) {
    expect(err).toBeInstanceOf(PolicyError);
    return (err as PolicyError).issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message));
  }
  throw new Error('expected a PolicyError');
}

describe('policy validation', () => {
  it('accepts a minimal JWT policy and a minimal API key policy', async () => {
    expect(() => createGuard({ apiKeys: { prefix: 'tg_' } })).not.toThrow();
    const jwt = await jwtPolicy();
    expect(() => createGuard({ jwt })).not.toThrow();
  });

  it('throws a PolicyError with a stable code, status 500 and expose false', async () => {
    let error: unknown;
    try {
      createGuard({} as TokenGuardPolicy);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TokenGuardError);
    expect(error).toMatchObject({ name: 'PolicyError', code: 'policy.invalid', status: 500, expose: false });
    expect((error as PolicyError).message).toContain('accept at least one token kind');
  });

  it('names a bad CIDR with its path and value', async () => {
    const issues = await problems({ apiKeys: { prefix: 'tg_' }, rules: [{ path: '/a', public: true }, { path: '/b', ip: { allow: ['10.0.0.300/8'] } }] });
    expect(issues).toEqual(['rules[1].ip.allow[0]: not an IP or CIDR: "10.0.0.300/8"']);
  });

  it('refuses non-canonical IPv4 in policy CIDRs instead of re-reading it', async () => {
    expect(await problems({ apiKeys: { prefix: 'tg_' }, ip: { allow: ['010.0.0.0/8'] } })).toEqual(['ip.allow[0]: not an IP or CIDR: "010.0.0.0/8"']);
    expect(await problems({ apiKeys: { prefix: 'tg_' }, trustProxy: ['0x7f.0.0.1'] })).toEqual(['trustProxy[0]: not an IP or CIDR: "0x7f.0.0.1"']);
  });

  it('treats an unknown key as an error, so a typo cannot open a route', async () => {
    const issues = await problems({ apiKeys: { prefix: 'tg_' }, rules: [{ path: '/admin/**', scope: ['admin'] }] });
    expect(issues).toEqual(['rules[0].scope: unknown key (did you mean "scopes"?)']);
    expect(await problems({ apiKeys: { prefix: 'tg_' }, rateLimits: {} })).toEqual(['rateLimits: unknown key (did you mean "rateLimit"?)']);
    expect(await problems({ apiKeys: { prefix: 'tg_', length: 32 } })).toEqual([expect.stringMatching(/^apiKeys\.length: unknown key/)]);
  });

  it('lists every problem, not only the first', async () => {
    const issues = await problems({ apiKeys: { prefix: 'bad' }, unmatched: 'allow', rules: [{ path: 'x', methods: ['G E T'] }] });
    expect(issues).toHaveLength(4);
    expect(issues.join('\n')).toMatch(/apiKeys\.prefix/);
    expect(issues.join('\n')).toMatch(/unmatched/);
    expect(issues.join('\n')).toMatch(/rules\[0\]\.path: path glob must start with "\/"/);
    expect(issues.join('\n')).toMatch(/rules\[0\]\.methods\[0\]: expected an HTTP method name/);
  });

  it('refuses a public rule that also asks for token constraints', async () => {
    expect(await problems({ apiKeys: { prefix: 'tg_' }, rules: [{ path: '/x', public: true, scopes: ['a'] }] })).toEqual([
      'rules[0].scopes: a public rule cannot also require a token constraint',
    ]);
  });

  it('validates durations and names the offending value', async () => {
    const issues = await problems({ apiKeys: { prefix: 'tg_' }, rateLimit: { limit: 10, window: '1 minute' } });
    expect(issues).toEqual([`rateLimit.window: expected a duration like '30s', '10m', '1h', '7d' or milliseconds (got "1 minute")`]);
    expect(await problems({ apiKeys: { prefix: 'tg_' }, rateLimit: { limit: 0, window: '1m' } })).toHaveLength(1);
    expect(await problems({ apiKeys: { prefix: 'tg_' }, storeTimeout: 0 })).toEqual(['storeTimeout: expected a duration greater than zero']);
  });

  it('validates scopes: strings without spaces, or { all, any }', async () => {
    expect(await problems({ apiKeys: { prefix: 'tg_' }, rules: [{ path: '/x', scopes: ['a b'] }] })).toHaveLength(1);
    expect(await problems({ apiKeys: { prefix: 'tg_' }, rules: [{ path: '/x', scopes: 'admin' }] })).toEqual([
      'rules[0].scopes: expected an array of scopes or { all?: [...], any?: [...] }',
    ]);
    expect(() => createGuard({ apiKeys: { prefix: 'tg_' }, rules: [{ path: '/x', scopes: { all: ['a'], any: ['b', 'c'] } }] })).not.toThrow();
  });

  describe('jwt', () => {
    it('requires issuer, audience and an algorithm allow-list', async () => {
      const issues = await problems({ jwt: { keys: [(await testKeys()).rsaPublicJwk] } });
      expect(issues).toEqual(expect.arrayContaining([expect.stringMatching(/^jwt\.issuer/), expect.stringMatching(/^jwt\.audience/), expect.stringMatching(/^jwt\.algorithms/)]));
    });

    it('never accepts "none"', async () => {
      const issues = await problems({ jwt: await jwtPolicy({ algorithms: ['RS256', 'none' as never] }) });
      expect(issues).toEqual(['jwt.algorithms[1]: "none" is never accepted']);
    });

    it('needs keys for asymmetric algorithms and a secret for HMAC', async () => {
      expect(await problems({ jwt: { issuer: 'i', audience: 'a', algorithms: ['RS256'] } })).toEqual(['jwt.algorithms: RS256 need jwksUri or keys']);
      expect(await problems({ jwt: { issuer: 'i', audience: 'a', algorithms: ['HS256'] } })).toEqual(['jwt.algorithms: HS256 need a secret']);
    });

    it('refuses an HMAC secret shorter than the hash', async () => {
      expect(await problems({ jwt: { issuer: 'i', audience: 'a', algorithms: ['HS256'], secret: 'short' } })).toEqual([
        'jwt.secret: HS256 needs a secret of at least 32 bytes (got 5)',
      ]);
      expect(() => createGuard({ jwt: { issuer: 'i', audience: 'a', algorithms: ['HS256'], secret: HMAC_SECRET } })).not.toThrow();
    });

    it('refuses private keys and symmetric JWKs in keys', async () => {
      const issues = await problems({ jwt: await jwtPolicy({ keys: ['-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----', { kty: 'oct', k: 'abc' }] }) });
      expect(issues).toEqual(['jwt.keys[0]: a private key was given: give the public key', 'jwt.keys[1]: only public JWKs belong in keys (symmetric secrets go in secret)']);
    });

    it('parses every configured key at start-up, so a broken key is a PolicyError and not a stream of 401s', async () => {
      const k = await testKeys();
      const issues = await problems({ jwt: await jwtPolicy({ keys: [{ ...k.rsaPublicJwk, n: 'AAAA' }, '-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----'] }) });
      expect(issues).toHaveLength(2);
      expect(issues[0]).toMatch(/^jwt\.keys\[0\]: RSA key of \d+ bits: at least 2048 are required/);
      expect(issues[1]).toMatch(/^jwt\.keys\[1\]: not a usable public key/);
      expect(() => createGuard({ jwt: { issuer: 'i', audience: 'a', algorithms: ['RS256'], keys: [k.rsaPublicPem] } })).not.toThrow();
    });

    it('fetches a JWKS over https only, except from loopback', async () => {
      const base = { issuer: 'i', audience: 'a', algorithms: ['RS256'] as const };
      expect(await problems({ jwt: { ...base, algorithms: ['RS256'], jwksUri: 'http://id.example.com/jwks.json' } })).toEqual([
        'jwt.jwksUri: must be https (plain http is allowed only for loopback addresses): signing keys fetched over http can be swapped in transit',
      ]);
      for (const uri of ['https://id.example.com/jwks.json', 'http://127.0.0.1:8080/jwks.json', 'http://localhost/jwks', 'http://[::1]:9/jwks']) {
        expect(() => createGuard({ jwt: { ...base, algorithms: ['RS256'], jwksUri: uri } })).not.toThrow();
      }
    });

    it('refuses jwksUri and keys together', async () => {
      expect(await problems({ jwt: await jwtPolicy({ jwksUri: 'https://id.example.test/jwks.json' }) })).toEqual(['jwt.keys: give either jwksUri or keys, not both']);
    });
  });
});
