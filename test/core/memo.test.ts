// A token that passed a rule's checks skips them on its later requests on that rule (Check.memo), and nothing
// else: each test below first lets a token pass (so the skip is in place), then changes one thing a skipped or
// still-run check depends on, and expects the refusal the guard gives without the skip.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createGuard, MemoryStore, type Decision, type GuardRequest, type RulePolicy, type TokenGuardPolicy } from '../../src/index.js';
import { compilePolicy } from '../../src/core/policy.js';
import { jwtPolicy, NOW, NOW_S, signToken } from '../helpers/tokens.js';

const at = (ms: number) => new Date(NOW.getTime() + ms);
const req = (token: string | undefined, over: Partial<GuardRequest> = {}): GuardRequest => ({
  method: 'GET',
  path: '/orders/1',
  headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
  remoteAddress: '10.1.2.3',
  now: NOW,
  ...over,
});

async function policyWith(rules: RulePolicy[], over: Partial<TokenGuardPolicy> = {}): Promise<TokenGuardPolicy> {
  return { jwt: await jwtPolicy(), store: new MemoryStore(), clock: () => NOW, rules, ...over };
}

/** The decision for `r` (synchronous for a cached token against MemoryStore, awaited alike). */
async function decide(guard: ReturnType<typeof createGuard>, r: GuardRequest): Promise<Decision> {
  return await guard.decide(r);
}

describe('which rules a token may skip checks on (memoSlots)', () => {
  const skippable = async (rule: RulePolicy, over: Partial<TokenGuardPolicy> = {}) => compilePolicy(await policyWith([rule], over)).rules[0]?.checks.memoSlots !== undefined;

  it('a rule with scopes only (and the always-on binding check) may be skipped', async () => {
    expect(await skippable({ path: '/orders/**', scopes: ['orders:read'] })).toBe(true);
  });

  it('a rule with any check whose answer depends on the request, the time or the store may not', async () => {
    expect(await skippable({ path: '/orders/**', scopes: ['orders:read'], ip: { allow: ['10.0.0.0/8'] } })).toBe(false);
    expect(await skippable({ path: '/orders/**', scopes: ['orders:read'], hours: { timezone: 'UTC', windows: [{ from: '08:00', to: '18:00' }] } })).toBe(false);
    expect(await skippable({ path: '/orders/**', scopes: ['orders:read'], rateLimit: { limit: 5, window: '1m' } })).toBe(false);
    expect(await skippable({ path: '/orders/**', scopes: ['orders:read'], stepUp: { maxAge: '10m' } })).toBe(false);
    expect(await skippable({ path: '/orders/**', scopes: ['orders:read'], maxTokenAge: '1h' })).toBe(false);
    expect(await skippable({ path: '/orders/**', scopes: ['orders:read'] }, { ip: { deny: ['192.0.2.0/24'] } })).toBe(false);
  });

  it('a rule with claim tests may be skipped; a claims predicate is never skipped (it sees the request)', async () => {
    expect(await skippable({ path: '/orders/**', scopes: ['orders:read'], claims: { tenant: 'acme', 'org.roles': { includes: 'admin' } } })).toBe(true);
    const guard = createGuard(
      await policyWith([
        { path: '/orders/**', claims: { tenant: 'acme' } },
        { path: '/reports/**', claims: (claims, request) => claims['tenant'] === 'acme' && request.ip !== '192.0.2.7' },
      ]),
    );
    const acme = await signToken({ scope: 'orders:read', tenant: 'acme' });
    const other = await signToken({ scope: 'orders:read', tenant: 'globex' });
    expect((await decide(guard, req(acme))).reason).toBe('ok');
    expect((await decide(guard, req(acme))).reason).toBe('ok');
    expect((await decide(guard, req(other))).reason).toBe('claims.mismatch');
    expect((await decide(guard, req(acme, { path: '/reports/1' }))).reason).toBe('ok');
    expect((await decide(guard, req(acme, { path: '/reports/1' }))).reason).toBe('ok');
    expect((await decide(guard, req(acme, { path: '/reports/1', remoteAddress: '192.0.2.7' }))).reason).toBe('claims.mismatch');
  });

  it('a report-only rule under an enforcing policy is never skipped (its reasons are reported on every request)', async () => {
    expect(await skippable({ path: '/orders/**', scopes: ['orders:read'], mode: 'report-only' })).toBe(false);
  });
});

describe('a token that passed a rule before', () => {
  it('is still refused once revoked, and once expired', async () => {
    const guard = createGuard(await policyWith([{ path: '/orders/**', scopes: ['orders:read'] }]));
    // Expires in 10 minutes: past exp (and the clock tolerance), the cache still holds the verification and its memo.
    const token = await signToken({ scope: 'orders:read', jti: 'memo-1' }, { exp: NOW_S + 600 });
    expect((await decide(guard, req(token))).reason).toBe('ok');
    expect((await decide(guard, req(token))).reason).toBe('ok');
    expect((await decide(guard, req(token, { now: at(15 * 60_000) }))).reason).toBe('token.expired');
    await guard.revoke('memo-1', { now: NOW });
    expect((await decide(guard, req(token))).reason).toBe('token.revoked');
  });

  it('is refused by a subject-wide revocation after it passed', async () => {
    const guard = createGuard(await policyWith([{ path: '/orders/**', scopes: ['orders:read'] }]));
    const token = await signToken({ scope: 'orders:read' }, { iat: NOW_S - 60 });
    expect((await decide(guard, req(token))).reason).toBe('ok');
    await guard.revokeSubject('alice', { now: NOW });
    expect((await decide(guard, req(token))).reason).toBe('token.revoked');
  });

  it('is refused on another rule whose scopes it lacks, and on a path no rule names', async () => {
    const guard = createGuard(
      await policyWith([
        { path: '/orders/**', scopes: ['orders:read'] },
        { path: '/admin/**', scopes: ['admin'] },
      ]),
    );
    const token = await signToken({ scope: 'orders:read' });
    expect((await decide(guard, req(token))).reason).toBe('ok');
    expect((await decide(guard, req(token, { path: '/admin/users' }))).reason).toBe('scope.insufficient');
    expect((await decide(guard, req(token, { path: '/elsewhere' }))).reason).toBe('rule.unmatched');
    // And back on the first rule, it is allowed again.
    expect((await decide(guard, req(token))).reason).toBe('ok');
  });

  it('is refused when it comes in the DPoP scheme (the binding check runs again for another scheme)', async () => {
    const guard = createGuard(await policyWith([{ path: '/orders/**', scopes: ['orders:read'] }]));
    const token = await signToken({ scope: 'orders:read' });
    expect((await decide(guard, req(token))).reason).toBe('ok');
    expect((await decide(guard, req(undefined, { headers: { authorization: `DPoP ${token}` } }))).reason).toBe('pop.invalid');
  });

  it('is refused from an address the rule does not allow, and outside the rule’s hours (those checks run every time)', async () => {
    const guard = createGuard(
      await policyWith([
        { path: '/orders/**', scopes: ['orders:read'], ip: { allow: ['10.0.0.0/8'] } },
        { path: '/batch/**', scopes: ['orders:read'], hours: { timezone: 'UTC', windows: [{ from: '09:00', to: '10:30' }] } },
      ]),
    );
    const token = await signToken({ scope: 'orders:read' });
    expect((await decide(guard, req(token))).reason).toBe('ok');
    expect((await decide(guard, req(token, { remoteAddress: '192.0.2.7' }))).reason).toBe('ip.denied');
    expect((await decide(guard, req(token, { path: '/batch/1' }))).reason).toBe('ok');
    expect((await decide(guard, req(token, { path: '/batch/1', now: at(45 * 60_000) }))).reason).toBe('hours.outside');
  });

  it('spends a rate-limit unit on every request (counters are never skipped)', async () => {
    const guard = createGuard(await policyWith([{ path: '/orders/**', scopes: ['orders:read'], rateLimit: { limit: 2, window: '1m' } }]));
    const token = await signToken({ scope: 'orders:read' });
    expect((await decide(guard, req(token))).reason).toBe('ok');
    expect((await decide(guard, req(token))).reason).toBe('ok');
    expect((await decide(guard, req(token))).reason).toBe('rate.limited');
  });

  it('needs its client certificate on every request when it is certificate-bound', async () => {
    const guard = createGuard(await policyWith([{ path: '/orders/**', scopes: ['orders:read'] }]));
    const der = Buffer.from('not really a certificate');
    const thumb = createHash('sha256').update(der).digest('base64url');
    const fingerprint256 = createHash('sha256').update(der).digest('hex').toUpperCase().match(/../g)?.join(':');
    const token = await signToken({ scope: 'orders:read', cnf: { 'x5t#S256': thumb } });
    expect((await decide(guard, req(token, { peerCertificate: { fingerprint256 } }))).reason).toBe('ok');
    expect((await decide(guard, req(token, { peerCertificate: { fingerprint256 } }))).reason).toBe('ok');
    expect((await decide(guard, req(token))).reason).toBe('pop.invalid');
    expect((await decide(guard, req(token, { peerCertificate: { fingerprint256: 'AA:BB' } }))).reason).toBe('pop.invalid');
  });

  it('still has every check in guard.explain, and its scopes for requireScopes', async () => {
    const guard = createGuard(await policyWith([{ path: '/orders/**', scopes: ['orders:read'] }]));
    const token = await signToken({ scope: 'orders:read' });
    expect((await decide(guard, req(token))).reason).toBe('ok');
    expect((await decide(guard, req(token))).reason).toBe('ok');
    const explained = await guard.explain(req(token));
    expect(explained.decision.reason).toBe('ok');
    const steps = explained.steps.map((s) => `${s.step}:${s.outcome}`);
    expect(steps).toContain('pop:pass');
    expect(steps).toContain('scopes:pass');
  });

  it('is reported on every request under a report-only rule (a trialled rule is never skipped)', async () => {
    const guard = createGuard(await policyWith([{ path: '/orders/**', scopes: ['orders:write'], mode: 'report-only' }]));
    const token = await signToken({ scope: 'orders:read' });
    for (let i = 0; i < 3; i++) {
      // What enforcing would have done, marked report-only: the adapters let it through.
      expect(await decide(guard, req(token))).toMatchObject({ effect: 'deny', mode: 'report-only', reasons: ['scope.insufficient'] });
    }
  });
});
