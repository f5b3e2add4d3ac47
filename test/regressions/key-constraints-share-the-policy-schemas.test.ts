// issueApiKey, the reader of stored key records and the policy agree on what a scope, an ip rule, an hours rule
// and a rate limit are: one schema each. Before, issueApiKey took any scope without whitespace (a quote would break
// the insufficient_scope challenge the policy guards against), and the reader took any string list.
import { describe, expect, it } from 'vitest';
import { ApiKeyError, createGuard, issueApiKey, MemoryStore, PolicyError, type ApiKeyRecord } from '../../src/index.js';
import { basePolicy, NOW } from '../helpers/tokens.js';

const issue = (scopes: string[]) => issueApiKey({ prefix: 'tg_', subject: 'svc', scopes, expiresIn: '1d', now: NOW });

describe('key constraints share the policy schemas', () => {
  it('refuses a scope the policy would refuse, in issueApiKey as in the policy', async () => {
    for (const scope of ['a"b', 'a\\b', 'é']) {
      expect(() => issue([scope])).toThrow(ApiKeyError);
      await expect(async () => createGuard(await basePolicy({ rules: [{ path: '/x', scopes: [scope] }] }))).rejects.toThrow(PolicyError);
    }
  });

  it('refuses a stored record whose constraints the policy schemas refuse, with token.invalid', async () => {
    const store = new MemoryStore();
    const guard = createGuard(await basePolicy({ store, unmatched: 'authenticate' }));
    const bad: Partial<ApiKeyRecord>[] = [
      { scopes: ['a"b'] },
      { ip: { alow: ['10.0.0.0/8'] } as never },
      { hours: { timezone: 'UTC', windows: [{ from: '08:00', to: '18:00' }], extra: 1 } as never },
      { rateLimit: { limit: 1.5, window: '1m' } },
    ];
    for (const fields of bad) {
      const { key, record } = issue(['orders:read']);
      await store.putApiKey({ ...record, ...fields } as ApiKeyRecord);
      const d = await guard.evaluate({ method: 'GET', path: '/orders/1', headers: { authorization: `Bearer ${key}` }, remoteAddress: '10.1.2.3', now: NOW });
      expect([JSON.stringify(fields), d.reason]).toEqual([JSON.stringify(fields), 'token.invalid']);
    }
  });
});
