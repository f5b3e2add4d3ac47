// Regression: a rate-limit window stores cannot count (past 100 years) passed the policy schema,
// then every request failed as 503 store.unavailable. It is a PolicyError at start-up now, at policy, rule level.
import { describe, expect, it } from 'vitest';
import { createGuard, PolicyError } from '../../src/index.js';
import { basePolicy } from '../helpers/tokens.js';

function issuesOf(make: () => unknown): { path: string; message: string }[] {
  try {
    make();
  } catch (err) {
    expect(err).toBeInstanceOf(PolicyError);
    return (err as PolicyError).issues;
  }
  throw new Error('expected a PolicyError');
}

describe('regression: rate limits beyond what stores count fail at start-up', () => {
  it('refuses a limit above 2^53 − 1 and a window above 100 years', async () => {
    const policy = await basePolicy();
    expect(issuesOf(() => createGuard({ ...policy, rateLimit: { limit: 2 ** 60, window: '1m' } })).map((i) => i.path)).toContain('rateLimit.limit');
    expect(issuesOf(() => createGuard({ ...policy, rateLimit: { limit: 10, window: '40000d' } }))).toEqual([
      { path: 'rateLimit.window', message: 'expected a window of at most 100 years' },
    ]);
    expect(issuesOf(() => createGuard({ ...policy, rules: [{ path: '/a/**', scopes: ['a'], rateLimit: { limit: 10, window: '40000d' } }] }))).toEqual([
      { path: 'rules[0].rateLimit.window', message: 'expected a window of at most 100 years' },
    ]);
  });

  it('still accepts the largest limit and window stores count', async () => {
    const policy = await basePolicy();
    expect(() => createGuard({ ...policy, rateLimit: { limit: Number.MAX_SAFE_INTEGER, window: '36525d' } })).not.toThrow();
  });
});
