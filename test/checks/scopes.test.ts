import { describe, expect, it } from 'vitest';
import { hasScopes, scopeChallengeValue, toScopeRequirement } from '../../src/checks/scopes.js';

const granted = (...s: string[]) => new Set(s);

describe('scopes', () => {
  it('requires every scope of an array', () => {
    const req = toScopeRequirement(['orders:read', 'orders:write']);
    expect(hasScopes(req, granted('orders:read', 'orders:write', 'x'))).toBe(true);
    expect(hasScopes(req, granted('orders:read'))).toBe(false);
  });

  it('requires one of "any" and all of "all" together', () => {
    const req = toScopeRequirement({ all: ['tenant:1'], any: ['reports:read', 'admin'] });
    expect(hasScopes(req, granted('tenant:1', 'admin'))).toBe(true);
    expect(hasScopes(req, granted('admin'))).toBe(false);
    expect(hasScopes(req, granted('tenant:1'))).toBe(false);
  });

  it('never matches a substring, prefix or case variant', () => {
    const req = toScopeRequirement(['orders:read']);
    for (const s of ['orders:readonly', 'orders', 'orders:', 'ORDERS:READ', ' orders:read', 'orders:read ']) {
      expect(hasScopes(req, granted(s))).toBe(false);
    }
  });

  it('names all and any scopes in the challenge', () => {
    expect(scopeChallengeValue(toScopeRequirement({ all: ['a'], any: ['b', 'c'] }))).toBe('a b c');
  });
});
