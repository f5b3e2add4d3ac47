// The glob comparison behind `policy check`'s shadowed-rule findings: true only when certain, never a false alarm.
import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../../src/core/policy.js';
import { describeConstraint, findings, globCovers } from '../../src/cli/rule-table.js';

describe('describeConstraint', () => {
  it('says when a rate limit is per subject rather than per token', () => {
    expect(describeConstraint('rateLimit', { limit: 10, window: '1m' })).toBe('rate 10/1m');
    expect(describeConstraint('rateLimit', { limit: 10, window: '1m', by: 'token' })).toBe('rate 10/1m');
    expect(describeConstraint('rateLimit', { limit: 600, window: '1m', by: 'subject' })).toBe('rate 600/1m per subject');
  });
});

describe('globCovers', () => {
  it.each([
    ['/orders/**', '/orders/*'],
    ['/orders/**', '/orders'],
    ['/orders/**', '/orders/1/items/**'],
    ['/**', '/'],
    ['/**', '/anything/**'],
    ['/*/items', '/orders/items'],
    ['/orders/*', '/orders/v*'],
    ['/files/*.png', '/files/a*b.png'],
    ['/a/**/z', '/a/b/**/c/z'],
  ])('%s covers %s', (a, b) => expect(globCovers(a, b, false)).toBe(true));

  it.each([
    ['/orders/*', '/orders/**'],
    ['/orders/*', '/orders'],
    ['/orders', '/orders/**'],
    ['/orders/v*', '/orders/*'],
    ['/a/*/c', '/a/**/c'],
    ['/Orders/**', '/orders/1'],
    ['/x*y', '/x*'],
  ])('%s does not cover %s', (a, b) => expect(globCovers(a, b, false)).toBe(false));

  it('folds case only when the policy says paths are case-insensitive', () => {
    expect(globCovers('/Orders/**', '/orders/1', true)).toBe(true);
  });
});

describe('findings', () => {
  const base = { apiKeys: { prefix: 'tg_' } } as const;

  it('does not flag a later rule for methods the earlier one leaves out', () => {
    const rules = [
      { methods: ['GET'], path: '/orders/**', scopes: ['r'] },
      { path: '/orders/*', scopes: ['w'] },
    ];
    expect(findings(compilePolicy({ ...base, rules }), rules, undefined)).toEqual([]);
  });

  it('flags a GET rule behind a rule for GET and HEAD, and a public rule under a catch-all', () => {
    const rules = [
      { methods: ['GET'], path: '/orders/**', scopes: ['r'] },
      { methods: ['HEAD'], path: '/orders/1', scopes: ['x'] },
      { path: '/**', scopes: ['a'] },
      { path: '/health', public: true },
    ];
    expect(findings(compilePolicy({ ...base, rules }), rules, undefined).map((f) => [f.kind, f.rule, f.by])).toEqual([
      ['shadowed', 2, 1],
      ['shadowed', 4, 3],
    ]);
  });

  it('flags a rule an earlier one covers only when letter case is folded, unless the policy says how case is read', () => {
    const rules = [
      { path: '/Admin/**', scopes: ['user'] },
      { path: '/admin/**', scopes: ['admin'] },
      { path: '/reports/*', scopes: ['r'] },
    ];
    expect(findings(compilePolicy({ ...base, rules }), rules, undefined).map((f) => [f.kind, f.rule, f.by])).toEqual([['case-shadowed', 2, 1]]);
    // Case-sensitive routing: two routes, nothing hidden. Case-insensitive: plainly shadowed.
    expect(findings(compilePolicy({ ...base, caseSensitive: true, rules }), rules, true)).toEqual([]);
    expect(findings(compilePolicy({ ...base, caseSensitive: false, rules }), rules, false).map((f) => [f.kind, f.rule, f.by])).toEqual([['shadowed', 2, 1]]);
  });

  it('flags a public route before the protected prefix it sits in, but not one beside it', () => {
    const rules = [
      { path: '/admin/health', public: true },
      { path: '/status', public: true },
      { path: '/admin/**', scopes: ['admin'] },
    ];
    expect(findings(compilePolicy({ ...base, rules }), rules, undefined).map((f) => [f.kind, f.rule, f.by])).toEqual([['public-under-protected', 1, 3]]);
  });
});
