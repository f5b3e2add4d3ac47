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
    const issues = await problems({
      apiKeys: { prefix: 'tg_' },
      rules: [
        { path: '/a', public: true },
        { path: '/b', ip: { allow: ['10.0.0.300/8'] } },
      ],
    });
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
      expect(issues).toEqual(
        expect.arrayContaining([expect.stringMatching(/^jwt\.issuer/), expect.stringMatching(/^jwt\.audience/), expect.stringMatching(/^jwt\.algorithms/)]),
      );
    });

    it('never accepts "none"', async () => {
      const issues = await problems({ jwt: await jwtPolicy({ algorithms: ['RS256', 'none' as never] }) });
      expect(issues).toEqual(['jwt.algorithms[1]: "none" is never accepted']);
    });

    it('needs keys for asymmetric algorithms and a secret for HMAC', async () => {
      expect(await problems({ jwt: { issuer: 'i', audience: 'a', algorithms: ['RS256'] } })).toEqual([
        'jwt.algorithms: RS256 needs a public key: give jwt.jwksUri, jwt.keys or jwt.discovery',
      ]);
      expect(await problems({ jwt: { issuer: 'i', audience: 'a', algorithms: ['RS256', 'PS256', 'ES256'] } })).toEqual([
        'jwt.algorithms: RS256, PS256 and ES256 need a public key: give jwt.jwksUri, jwt.keys or jwt.discovery',
      ]);
      expect(await problems({ jwt: { issuer: 'i', audience: 'a', algorithms: ['HS256'] } })).toEqual(['jwt.algorithms: HS256 needs jwt.secret']);
      // "none" gets its own refusal only, not a second one asking for its key.
      expect(await problems({ jwt: { issuer: 'i', audience: 'a', algorithms: ['none'] } })).toEqual(['jwt.algorithms[0]: "none" is never accepted']);
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
      expect(await problems({ jwt: await jwtPolicy({ jwksUri: 'https://id.example.test/jwks.json' }) })).toEqual([
        'jwt.keys: give one of jwksUri, keys or discovery, not jwksUri and keys',
      ]);
    });
  });

  describe('refusals at start-up (issue 8)', () => {
    const keys = { apiKeys: { prefix: 'tg_' } };

    it('refuses router syntax in rule paths and says what glob to write instead', async () => {
      expect(
        await problems({
          ...keys,
          rules: [
            { path: '/orders/:id', scopes: ['orders:delete'] },
            { path: '/**', scopes: ['orders:read'] },
          ],
        }),
      ).toEqual([
        'rules[0].path: ":id" is a route parameter (Express, Koa and Fastify syntax), which a rule path would match literally: use /orders/* for one segment, /orders/** for any depth (in "/orders/:id")',
      ]);
      const [braces] = await problems({ ...keys, rules: [{ path: '/files/{*rest}', public: true }] });
      expect(braces).toMatch(/^rules\[0\]\.path: "\{\*rest\}" is router syntax .*: use \/files\/\*\* for any depth, \/files\/\* for one segment/);
      const [alternatives] = await problems({ ...keys, rules: [{ path: '/(a|b)', public: true }] });
      expect(alternatives).toContain('write one rule per alternative ("a", "b")');
    });

    it('keeps legal URL path characters, including ":" inside a segment', async () => {
      for (const path of ['/v1/things:batchGet', "/users/@me/it's~,;=!&", '/files/*.png', '/café/**', '/a/**/b/*-thumb.jpg']) {
        expect(() => createGuard({ ...keys, rules: [{ path, scopes: ['a'] }] }), path).not.toThrow();
      }
    });

    it('refuses empty requirements instead of dropping them', async () => {
      const issues = await problems({
        ...keys,
        rules: [
          { path: '/a', scopes: [] },
          { path: '/b', scopes: {} },
          { path: '/c', scopes: { all: [] } },
          { path: '/d', scopes: { any: [] } },
          { path: '/e', scopes: ['x'], ip: { allow: [] } },
          { path: '/f', scopes: ['x'], ip: {} },
          { path: '/g', methods: [] },
        ],
      });
      expect(issues).toEqual([
        'rules[0].scopes: an empty scope list requires no scope, so any valid token would pass: list at least one scope, or remove scopes if any valid token may call this route',
        'rules[1].scopes: an object without all or any requires no scope, so any valid token would pass: list at least one scope, or remove scopes if any valid token may call this route',
        'rules[2].scopes.all: an empty "all" requires no scope, so any valid token would pass: list at least one scope, or remove scopes if any valid token may call this route',
        'rules[3].scopes.any: an empty "any" list names no scope a token could have: list at least one scope, or remove any',
        "rules[4].ip.allow: an empty allow list is ambiguous (nobody, or everybody?): list addresses, or to refuse every client write deny: ['0.0.0.0/0', '::/0']",
        'rules[5].ip: an empty ip constraint restricts nothing: list addresses in allow or deny, or remove ip',
        'rules[6].methods: an empty list matches no request, so the rule would never apply: list methods, or remove methods to cover all',
      ]);
      expect(await problems({ ...keys, ip: { deny: [] } })).toEqual(['ip: an empty ip constraint restricts nothing: list addresses in allow or deny, or remove ip']);
    });

    it('refuses misspelled, lower-case and unregistered methods, and accepts declared extension methods', async () => {
      expect(await problems({ ...keys, rules: [{ path: '/a', methods: ['GTE', 'get', 'ALL', 'BREW'] }] })).toEqual([
        `rules[0].methods[0]: "GTE" is not a registered HTTP method (did you mean "GET"?); to use an extension method on purpose, declare it in the policy: extensionMethods: ['GTE']`,
        'rules[0].methods[1]: write "GET": method names are upper-case',
        'rules[0].methods[2]: "ALL" is not a method: omit methods to cover every method',
        `rules[0].methods[3]: "BREW" is not a registered HTTP method; to use an extension method on purpose, declare it in the policy: extensionMethods: ['BREW']`,
      ]);
      // Registered beyond RFC 9110 (http.METHODS): WebDAV and PURGE need no declaration.
      expect(() => createGuard({ ...keys, rules: [{ path: '/a', methods: ['PROPFIND', 'PURGE', 'M-SEARCH'] }] })).not.toThrow();
      const guard = createGuard({ ...keys, extensionMethods: ['BREW'], rules: [{ path: '/pot', methods: ['BREW'], public: true }] });
      expect(await guard.evaluate({ method: 'BREW', path: '/pot', headers: {}, remoteAddress: '127.0.0.1' })).toMatchObject({ effect: 'allow' });
      expect(await problems({ ...keys, extensionMethods: ['brew'] })).toEqual(['extensionMethods[0]: expected an upper-case method name']);
    });

    it('says "required" for a missing key and describes a union by its accepted forms', async () => {
      expect(await problems({ jwt: { issuer: 'i', algorithms: ['HS256'], secret: HMAC_SECRET } })).toEqual(['jwt.audience: required']);
      expect(await problems({ jwt: { issuer: 5, audience: 'a', algorithms: ['HS256'], secret: HMAC_SECRET } })).toEqual([
        'jwt.issuer: expected a string or an array (got a number)',
      ]);
      expect(await problems({ ...keys, rules: [{ scopes: ['a'] }] })).toEqual(['rules[0].path: required']);
      expect(await problems({ ...keys, mode: 'report_only' })).toEqual(['mode: expected "enforce" or "report-only" (did you mean "report-only"?)']);
    });

    it('says where an adapter option or a misplaced key belongs, and suggests the key an unknown one is close to', async () => {
      const [errors] = await problems({ ...keys, errors: 'throw' });
      expect(errors).toMatch(/^errors: `errors` is an adapter option, not a policy key/);
      expect(errors).toContain("tokenGuard(policy, { errors: 'throw' })");
      // Fastify hands its register options to the plugin: a route prefix is not the API key prefix.
      const [prefix] = await problems({ ...keys, prefix: '/v1' });
      expect(prefix).toMatch(/^prefix: `prefix` is not a policy key: an API key prefix goes in apiKeys\.prefix\. A router's prefix/);
      expect(await problems({ ...keys, rule: [], issuer: 'https://id.example.com/' })).toEqual([
        'rule: unknown key (did you mean "rules"?)',
        'issuer: unknown key here: "issuer" belongs in jwt.issuer, introspection.issuer, introspection.jwtResponse.issuer',
      ]);
      expect(await problems({ ...keys, rules: [{ path: '/a', allow: ['10.0.0.0/8'] }] })).toEqual([
        'rules[0].allow: unknown key here: "allow" belongs in rules[0].ip.allow, ip.allow',
      ]);
      expect(await problems({ ...keys, rules: [{ path: '/a', scopes: ['a'], stepUp: { maxage: '5m' } }] })).toEqual([
        'rules[0].stepUp.maxage: unknown key (did you mean "maxAge"?)',
        'rules[0].stepUp: expected at least one of maxAge, amr or acr (an empty step-up is always satisfied)',
      ]);
    });
  });
});
