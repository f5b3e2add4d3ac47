// Checks the scenario table itself: big enough, and covering every reason code the core implements.
import { describe, expect, it } from 'vitest';
import { REASON_CODES, REASONS, type ReasonCode } from '../../src/index.js';
import { CASES } from './cases.js';

const NOT_IMPLEMENTED: ReasonCode[] = [];

describe('the scenario table', () => {
  it('has at least 30 cases with unique names', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(30);
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
  });

  it('refuses with every implemented reason code at least once', () => {
    const refused = new Set(CASES.filter((c) => c.expectStatus !== 200).map((c) => c.expectReason));
    const wanted = REASON_CODES.filter((r) => r !== 'ok' && !NOT_IMPLEMENTED.includes(r));
    expect(wanted.filter((r) => !refused.has(r))).toEqual([]);
  });

  it('expects the status the reason table gives each refusal', () => {
    for (const c of CASES) {
      for (const e of [c, ...(c.whatwg ? [c.whatwg] : [])]) {
        if (e.expectStatus !== 200) expect([c.name, e.expectStatus]).toEqual([c.name, REASONS[e.expectReason].status]);
      }
    }
  });

  it('covers public routes, both report-only levels, X-Forwarded-For, unknown peers, requireScopes and path tricks', () => {
    expect(CASES.some((c) => c.path === '/health' && c.expectStatus === 200)).toBe(true);
    expect(CASES.some((c) => c.variant === 'report-only' && c.expectReason !== 'ok' && c.expectStatus === 200)).toBe(true);
    expect(CASES.some((c) => (c.variant ?? 'main') === 'main' && c.path.startsWith('/beta') && c.expectReason !== 'ok' && c.expectStatus === 200)).toBe(true);
    const vault = CASES.filter((c) => c.variant === 'report-only' && c.path.startsWith('/vault/')).map((c) => [c.expectStatus, c.expectReason]);
    expect(vault).toEqual(
      expect.arrayContaining([
        [401, 'token.missing'],
        [401, 'token.revoked'],
        [403, 'scope.insufficient'],
      ]),
    );
    expect(CASES.filter((c) => c.xff !== undefined).length).toBeGreaterThanOrEqual(3);
    expect(CASES.some((c) => c.clientIp === undefined && c.expectReason === 'ip.unknown')).toBe(true);
    expect(CASES.filter((c) => c.path.startsWith('/things/')).map((c) => c.expectReason)).toEqual(expect.arrayContaining(['ok', 'scope.insufficient']));
    const tricks = ['/../', '%2e%2e', '//', '/ADMIN', '%2F', '?', 'users/'];
    expect(tricks.filter((t) => !CASES.some((c) => c.path.includes(t)))).toEqual([]);
  });
});
