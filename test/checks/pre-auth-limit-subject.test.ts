// Limits before authentication by IP and claimed subject, IPv6 grouping, and why a claimed subject alone is refused
// (issue 9): each attack a pre-verification limit invites, shown refused.
import { describe, expect, it } from 'vitest';
import express from 'express';
import request from 'supertest';
import { tokenGuard } from '../../src/adapters/express.js';
import { createGuard, MemoryStore, PolicyError, type TokenGuardPolicy } from '../../src/index.js';
import { SUBJECT_BEFORE_VERIFICATION } from '../../src/checks/pre-auth-limit.js';
import { guessedKey, preAuthGuard } from '../helpers/pre-auth.js';
import { countingStore } from '../helpers/stores.js';
import { basePolicy, NOW, NOW_S, signToken, unsignedToken } from '../helpers/tokens.js';
import { ACME, API, GLOBEX, accessToken, signer, tenantIssuers } from '../helpers/tenants.js';
import { bearer } from '../tokens/fixtures.js';

const A = '198.51.100.7';
const B = '203.0.113.9';

/** A forged JWT claiming `sub` (after any `first` claims): well-formed, never verifiable. */
const forged = (sub: string, first: Record<string, unknown> = {}) =>
  unsignedToken({ ...first, sub, scope: 'orders:read', iss: 'https://id.example.test/', aud: 'api://orders', iat: NOW_S, exp: NOW_S + 3600 }, { alg: 'RS256', kid: 'rsa-1' });

const req = (token: string, remoteAddress: string, at = NOW) => bearer(token, { remoteAddress, now: at });

async function guardWith(preAuthLimit: TokenGuardPolicy['preAuthLimit'], overrides: Partial<TokenGuardPolicy> = {}) {
  const { store, calls } = countingStore();
  return { guard: await preAuthGuard(store, preAuthLimit, overrides), calls };
}

describe("preAuthLimit by: 'ip+subject'", () => {
  it("forged tokens claiming alice's sub from IP A do not refuse alice's genuine token from IP B", async () => {
    const { guard } = await guardWith({ limit: 3, window: '1m', by: 'ip+subject', failedAuth: true });
    const alice = await signToken({ scope: 'orders:read' });
    for (let i = 0; i < 3; i++) expect((await guard.evaluate(req(forged('alice'), A))).reason).toBe('token.invalid');
    for (let i = 0; i < 20; i++) expect((await guard.evaluate(req(forged('alice'), A))).reason).toBe('rate.limited');
    const fromB = await guard.evaluate(req(alice, B));
    expect([fromB.reason, fromB.token?.subject]).toEqual(['ok', 'alice']);
  });

  it('a forger at IP A spends only the (A, claimed subject) budget: another subject from the same IP still gets in', async () => {
    const { guard } = await guardWith({ limit: 3, window: '1m', by: 'ip+subject', failedAuth: true });
    for (let i = 0; i < 10; i++) await guard.evaluate(req(forged('bob'), A));
    expect((await guard.evaluate(req(forged('bob'), A))).reason).toBe('rate.limited');
    // alice behind the same NAT: her own bucket is untouched.
    expect((await guard.evaluate(req(await signToken({ scope: 'orders:read' }), A))).reason).toBe('ok');
  });

  it('a guesser cycling subjects from one IP is limited by ipLimit (all subjects of one IP together), before any store call', async () => {
    const { guard, calls } = await guardWith({ limit: 3, window: '1m', by: 'ip+subject', ipLimit: 10 });
    const answers: string[] = [];
    for (let i = 0; i < 15; i++) answers.push((await guard.evaluate(req(forged(`user-${i}`), A))).reason);
    expect(answers.slice(0, 10).every((r) => r === 'token.invalid')).toBe(true);
    expect(answers.slice(10).every((r) => r === 'rate.limited')).toBe(true);
    const before = calls();
    const d = await guard.evaluate(req(forged('fresh-subject'), A));
    expect([d.status, d.reason, d.headers['RateLimit-Limit']]).toEqual([429, 'rate.limited', '10']);
    expect(calls()).toBe(before);
    // Another IP is unaffected.
    expect((await guard.evaluate(req(await signToken({ scope: 'orders:read' }), B))).reason).toBe('ok');
  });

  it('ipLimit defaults to 10 × limit, and RateLimit-Policy names both quotas', async () => {
    const { guard } = await guardWith({ limit: 3, window: '1m', by: 'ip+subject' });
    const d = await guard.evaluate(req(forged('alice'), A));
    expect(d.headers).toMatchObject({ 'RateLimit-Policy': '"preauth";q=3;w=60, "preauth-ip";q=30;w=60', RateLimit: '"preauth";r=2;t=20, "preauth-ip";r=29;t=2' });
    for (let i = 0; i < 2; i++) await guard.evaluate(req(forged('alice'), A));
    const refused = await guard.evaluate(req(forged('alice'), A));
    expect(refused.headers).toMatchObject({
      RateLimit: '"preauth";r=0;t=60, "preauth-ip";r=27;t=6',
      'RateLimit-Limit': '3',
      'RateLimit-Remaining': '0',
      'Retry-After': '20',
    });
  });

  it('an API key (which claims no subject) and an unreadable token are counted by the IP alone, at limit', async () => {
    const { guard } = await guardWith({ limit: 3, window: '1m', by: 'ip+subject' });
    for (let i = 0; i < 2; i++) expect((await guard.evaluate(req(guessedKey(), A))).reason).toBe('token.invalid');
    expect((await guard.evaluate(req('not-a-jwt', A))).reason).not.toBe('rate.limited');
    expect((await guard.evaluate(req(guessedKey(), A))).reason).toBe('rate.limited');
    expect((await guard.evaluate(req('x'.repeat(9000), A))).reason).toBe('rate.limited');
  });

  it("reads only the top-level sub: a nested act.sub naming alice does not spend alice's budget", async () => {
    const { guard } = await guardWith({ limit: 3, window: '1m', by: 'ip+subject', failedAuth: true });
    for (let i = 0; i < 5; i++) await guard.evaluate(req(forged('mallory', { act: { sub: 'alice' } }), A));
    expect((await guard.evaluate(req(forged('mallory'), A))).reason).toBe('rate.limited');
    expect((await guard.evaluate(req(await signToken({ scope: 'orders:read' }), A))).reason).toBe('ok');
  });

  it("counts the claimed subject per claimed issuer: forged tokens spending acme's alice's budget leave globex's alice theirs, behind the same NAT", async () => {
    const [acme, globex] = await Promise.all([signer('acme-1'), signer('globex-1')]);
    const { guard } = await guardWith({ limit: 3, window: '1m', by: 'ip+subject', failedAuth: true }, { jwt: tenantIssuers(acme, globex) });
    const forgedAcme = (first: Record<string, unknown> = {}) =>
      unsignedToken({ ...first, sub: 'alice', scope: 'orders:read', iss: ACME, aud: API, iat: NOW_S, exp: NOW_S + 3600 }, { alg: 'ES256', kid: 'acme-1' });
    for (let i = 0; i < 3; i++) expect((await guard.evaluate(req(forgedAcme(), A))).reason).toBe('token.invalid');
    expect((await guard.evaluate(req(forgedAcme(), A))).reason).toBe('rate.limited');
    // A nested iss (an act claim's) is not the token's: it does not move the forger to a fresh bucket.
    expect((await guard.evaluate(req(forgedAcme({ act: { iss: GLOBEX } }), A))).reason).toBe('rate.limited');
    expect((await guard.evaluate(req(await accessToken(acme, ACME, 'alice', 'a-1'), A))).reason).toBe('rate.limited');
    const globexAlice = await guard.evaluate(req(await accessToken(globex, GLOBEX, 'alice', 'g-1'), A));
    expect([globexAlice.reason, globexAlice.token?.subject]).toEqual(['ok', 'alice']);
  });

  it('answers 429 with both quotas over Express', async () => {
    const app = express();
    app.use(tokenGuard(await basePolicy({ store: new MemoryStore(), preAuthLimit: { limit: 1, window: '1m', by: 'ip+subject' } })));
    app.get('/orders/:id', (_req, res) => res.json({ ok: true }));
    const token = forged('alice');
    expect((await request(app).get('/orders/1').set('authorization', `Bearer ${token}`)).status).toBe(401);
    const refused = await request(app).get('/orders/1').set('authorization', `Bearer ${token}`);
    expect([refused.status, refused.body.reason, refused.headers['ratelimit-policy'], refused.headers['retry-after']]).toEqual([
      429,
      'rate.limited',
      '"preauth";q=1;w=60, "preauth-ip";q=10;w=60',
      '60',
    ]);
  });
});

describe('preAuthLimit and IPv6', () => {
  it('groups IPv6 clients by /64 by default: rotating through one /64 is limited, another /64 is not', async () => {
    const { guard } = await guardWith({ limit: 3, window: '1m' });
    const reasons: string[] = [];
    for (let i = 1; i <= 6; i++) reasons.push((await guard.evaluate(req(guessedKey(), `2001:db8:1:2::${i.toString(16)}`))).reason);
    expect(reasons).toEqual(['token.invalid', 'token.invalid', 'token.invalid', 'rate.limited', 'rate.limited', 'rate.limited']);
    expect((await guard.evaluate(req(guessedKey(), '2001:db8:1:2:ffff:ffff:ffff:ffff'))).reason).toBe('rate.limited');
    expect((await guard.evaluate(req(guessedKey(), '2001:db8:1:3::1'))).reason).toBe('token.invalid');
  });

  it('ipv6Subnet: 56 groups a whole /56, ipv6Subnet: 128 counts every address apart', async () => {
    const wide = (await guardWith({ limit: 2, window: '1m', ipv6Subnet: 56 })).guard;
    await wide.evaluate(req(guessedKey(), '2001:db8:1:200::1'));
    await wide.evaluate(req(guessedKey(), '2001:db8:1:2ff::1'));
    expect((await wide.evaluate(req(guessedKey(), '2001:db8:1:280::9'))).reason).toBe('rate.limited');
    expect((await wide.evaluate(req(guessedKey(), '2001:db8:1:300::1'))).reason).toBe('token.invalid');
    const each = (await guardWith({ limit: 1, window: '1m', ipv6Subnet: 128 })).guard;
    for (let i = 1; i <= 4; i++) expect((await each.evaluate(req(guessedKey(), `2001:db8::${i}`))).reason).toBe('token.invalid');
  });

  it('counts an IPv4-mapped IPv6 address as its IPv4 address', async () => {
    const { guard } = await guardWith({ limit: 2, window: '1m' });
    await guard.evaluate(req(guessedKey(), A));
    await guard.evaluate(req(guessedKey(), `::ffff:${A}`));
    expect((await guard.evaluate(req(guessedKey(), A))).reason).toBe('rate.limited');
  });
});

describe('preAuthLimit policy errors', () => {
  it("refuses by: 'subject' at start-up with policy.invalid saying why (forged tokens lock the subject out) and what to use instead", async () => {
    const policy = await basePolicy({ preAuthLimit: { limit: 3, window: '1m', by: 'subject' } as never });
    let caught: unknown;
    try {
      createGuard(policy);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(PolicyError);
    expect(caught).toMatchObject({
      name: 'PolicyError',
      code: 'policy.invalid',
      status: 500,
      expose: false,
      issues: [{ path: 'preAuthLimit.by', message: SUBJECT_BEFORE_VERIFICATION }],
    });
    expect(SUBJECT_BEFORE_VERIFICATION).toMatch(/forged tokens/);
    expect(SUBJECT_BEFORE_VERIFICATION).toMatch(/by: 'ip\+subject'/);
    expect(SUBJECT_BEFORE_VERIFICATION).toMatch(/rateLimit: \{ by: 'subject' \}/);
  });

  it('refuses ipLimit without ip+subject, an ipLimit below limit, an unknown by and a too-wide ipv6Subnet', async () => {
    const cases: [unknown, string][] = [
      [{ limit: 3, window: '1m', ipLimit: 30 }, 'preAuthLimit.ipLimit'],
      [{ limit: 3, window: '1m', by: 'ip+subject', ipLimit: 2 }, 'preAuthLimit.ipLimit'],
      [{ limit: 3, window: '1m', by: 'token' }, 'preAuthLimit.by'],
      [{ limit: 3, window: '1m', ipv6Subnet: 16 }, 'preAuthLimit.ipv6Subnet'],
    ];
    for (const [preAuthLimit, path] of cases) {
      const policy = await basePolicy({ preAuthLimit: preAuthLimit as never });
      expect(() => createGuard(policy), JSON.stringify(preAuthLimit)).toThrow(PolicyError);
      try {
        createGuard(policy);
      } catch (err) {
        expect((err as PolicyError).issues.map((i) => i.path)).toContain(path);
      }
    }
  });
});
