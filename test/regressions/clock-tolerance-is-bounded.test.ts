// A clock tolerance had no upper bound: `jwt.clockTolerance: '7d'` (meant as a maximum token age?) was accepted and
// stretched exp, nbf, maxTokenAge and step-up max_age by a week, so a token expired six days ago still passed. Every
// clock tolerance is now at most 5 minutes, refused above that at start-up with the path and the reason: the policy's
// (each issuer configuration of several; introspection reads the same one), a SET receiver's, and the key lifecycle
// functions' (`listApiKeys`, `findApiKey`, `rotateApiKey`).
import { describe, expect, it } from 'vitest';
import { generateKeyPair, exportJWK } from 'jose';
import { createApiKey, createGuard, findApiKey, listApiKeys, MemoryStore, PolicyError, rotateApiKey, UsageError, type TokenGuardPolicy } from '../../src/index.js';
import { createSetReceiver } from '../../src/receivers/set.js';
import { basePolicy, jwtPolicy, NOW, NOW_S, signToken } from '../helpers/tokens.js';

async function issuesFor(policy: TokenGuardPolicy): Promise<{ path: string; message: string }[]> {
  try {
    createGuard(policy);
  } catch (err) {
    expect(err).toBeInstanceOf(PolicyError);
    return (err as PolicyError).issues;
  }
  return [];
}

const TOO_LARGE = expect.stringMatching(/^expected at most '5m' \(got .*\): the tolerance stretches exp, nbf, maxTokenAge and step-up max_age/);

describe('jwt.clockTolerance', () => {
  it.each<[string | number]>([['7d'], ['1h'], ['301s'], [300_001]])('refuses %j at start-up, naming the limit and why', async (clockTolerance) => {
    expect(await issuesFor(await basePolicy({ jwt: await jwtPolicy({ clockTolerance: clockTolerance as never }) }))).toEqual([
      { path: 'jwt.clockTolerance', message: TOO_LARGE },
    ]);
  });

  it('says what to use to limit a token age instead', async () => {
    const [issue] = await issuesFor(await basePolicy({ jwt: await jwtPolicy({ clockTolerance: '7d' }) }));
    expect(issue?.message).toContain('use jwt.maxTokenAge');
  });

  it('refuses it in each issuer configuration of several, by its index', async () => {
    const other = await jwtPolicy({ issuer: 'https://other.example/', clockTolerance: '1d' });
    expect(await issuesFor(await basePolicy({ jwt: [await jwtPolicy(), other] }))).toEqual([{ path: 'jwt[1].clockTolerance', message: TOO_LARGE }]);
  });

  it.each<[string | number]>([['5m'], [300_000], ['0s'], [0], ['5s'], ['299.5s']])('accepts %j', async (clockTolerance) => {
    expect(await issuesFor(await basePolicy({ jwt: await jwtPolicy({ clockTolerance: clockTolerance as never }) }))).toEqual([]);
  });

  it('at the limit, still forgives a token 4 minutes past its exp, and not one 6 minutes past', async () => {
    const guard = createGuard(await basePolicy({ jwt: await jwtPolicy({ clockTolerance: '5m' }) }));
    const at = async (exp: number) =>
      (
        await guard.evaluate({
          method: 'GET',
          path: '/orders/1',
          headers: { authorization: `Bearer ${await signToken({ scope: 'orders:read' }, { iat: exp - 600, exp })}` },
          remoteAddress: '203.0.113.9',
          now: NOW,
        })
      ).reason;
    expect(await at(NOW_S - 240)).toBe('ok');
    expect(await at(NOW_S - 360)).toBe('token.expired');
  });

  it('introspection has no tolerance of its own to stretch: it reads the bounded jwt one', async () => {
    const introspection = { endpoint: 'https://as.example/introspect', clientId: 'api', clientSecret: 's3cret', clockTolerance: '1h' };
    const issues = await issuesFor({ store: new MemoryStore(), introspection } as unknown as TokenGuardPolicy);
    expect(issues).toEqual([{ path: 'introspection.clockTolerance', message: expect.stringContaining('jwt.clockTolerance') }]);
  });
});

describe("a SET receiver's clockTolerance", () => {
  const options = async () => ({
    store: new MemoryStore(),
    issuer: 'https://idp.example/',
    audience: 'https://api.example/',
    keys: [await exportJWK((await generateKeyPair('ES256', { extractable: true })).publicKey)],
  });

  it.each<[string | number]>([['7d'], ['6m'], [300_001]])('refuses %j with a UsageError naming the option and the limit', async (clockTolerance) => {
    const o = { ...(await options()), clockTolerance: clockTolerance as never };
    expect(() => createSetReceiver(o)).toThrow(UsageError);
    expect(() => createSetReceiver(o)).toThrow(/^createSetReceiver: clockTolerance: expected at most '5m'/);
  });

  it.each<[string | number]>([['5m'], [0], ['5s']])('accepts %j', async (clockTolerance) => {
    const o = { ...(await options()), clockTolerance: clockTolerance as never };
    expect(() => createSetReceiver(o)).not.toThrow();
  });
});

describe("the key lifecycle functions' clockTolerance", () => {
  it.each<[string | number]>([['7d'], ['6m'], [300_001]])('refuses %j with a coded UsageError, before reading or changing the store', async (clockTolerance) => {
    const store = new MemoryStore();
    const made = await createApiKey(store, { prefix: 'tg_', subject: 'svc', scopes: [], expiresIn: '30d', now: NOW });
    const options = { now: NOW, clockTolerance: clockTolerance as never };
    for (const [where, call] of [
      ['listApiKeys', () => listApiKeys(store, 'svc', options)],
      ['findApiKey', () => findApiKey(store, made.record.id, options)],
      ['rotateApiKey', () => rotateApiKey(store, made.record.id, options)],
    ] as const) {
      const err = await call().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UsageError);
      expect(err).toMatchObject({
        code: 'usage.invalid_argument',
        message: expect.stringMatching(new RegExp(`^${where}: clockTolerance: expected at most '5m'`)),
        help: expect.stringContaining('guard.clockTolerance * 1000'),
      });
    }
    expect((await listApiKeys(store, 'svc', { now: NOW })).map((k) => k.state)).toEqual(['active']);
  });

  it("accepts the guard's own, up to 5 minutes", async () => {
    const store = new MemoryStore();
    const guard = createGuard({ apiKeys: { prefix: 'tg_' }, jwt: await jwtPolicy({ clockTolerance: '5m' }), store });
    await createApiKey(store, { prefix: 'tg_', subject: 'svc', scopes: [], expiresIn: '30d', now: NOW });
    expect((await listApiKeys(store, 'svc', { now: NOW, clockTolerance: guard.clockTolerance * 1000 })).map((k) => k.state)).toEqual(['active']);
    expect((await listApiKeys(store, 'svc', { now: NOW, clockTolerance: '5m' })).map((k) => k.state)).toEqual(['active']);
  });
});
