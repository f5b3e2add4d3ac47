import { describe, expect, it } from 'vitest';
import { apiKeyExpiry } from '../../src/checks/expiry.js';
import { issueApiKey } from '../../src/index.js';

const NOW = Date.parse('2026-11-25T10:00:00Z');

describe('API key expiry', () => {
  const { record } = issueApiKey({ prefix: 'tg_', subject: 's', scopes: [], expiresIn: '1h', now: new Date(NOW) });

  it('is valid until expiresAt and expired from it on', () => {
    expect(apiKeyExpiry(record, NOW + 3_599_999)).toBeUndefined();
    expect(apiKeyExpiry(record, NOW + 3_600_000)).toBe('key record expired');
  });

  it('never expires a key issued with expiresIn: null', () => {
    const { record: forever } = issueApiKey({ prefix: 'tg_', subject: 's', scopes: [], expiresIn: null, now: new Date(NOW) });
    expect(forever.expiresAt).toBeNull();
    expect(apiKeyExpiry(forever, NOW + 10 * 365 * 86_400_000)).toBeUndefined();
  });

  it('expires a key with no uses left', () => {
    expect(apiKeyExpiry({ ...record, remaining: 0 }, NOW)).toBe('no uses left');
    expect(apiKeyExpiry({ ...record, remaining: 1 }, NOW)).toBeUndefined();
  });
});
