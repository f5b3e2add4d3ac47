// Regression (found by test/fuzz/hours.fuzz.test.ts): the zone clock cached its answer per UTC minute, but a
// zone whose offset has seconds (Africa/Monrovia was UTC−00:44:30 until 1972; most zones' LMT before 1900)
// turns its wall-clock minute at :30 past the UTC minute. A second request in the same UTC minute got the
// previous wall-clock minute: a window opened or closed up to 30 s late.
import { describe, expect, it } from 'vitest';
import { createGuard, issueApiKey, MemoryStore } from '../../src/index.js';

describe('regression: hour windows in a zone whose UTC offset has seconds', () => {
  it('opens a window at the wall-clock minute, not at the next UTC minute', async () => {
    const store = new MemoryStore();
    const issuedAt = new Date('1971-05-01T00:00:00Z');
    const { key, record } = issueApiKey({ prefix: 'tg_', subject: 'svc', scopes: [], expiresIn: null, now: issuedAt });
    await store.putApiKey(record);
    // 12:00:xx UTC is 11:15:xx+30 s in Monrovia: the wall clock reads 11:16 from 12:00:30 UTC on.
    const guard = createGuard({
      apiKeys: { prefix: 'tg_' },
      store,
      unmatched: 'authenticate',
      hours: { timezone: 'Africa/Monrovia', windows: [{ from: '11:16', to: '12:00' }] },
    });
    const at = (iso: string) => guard.evaluate({ method: 'GET', path: '/x', headers: { authorization: `Bearer ${key}` }, remoteAddress: '192.0.2.1', now: new Date(iso) });
    expect((await at('1971-06-01T12:00:10Z')).reason).toBe('hours.outside'); // 11:15:40 local
    expect((await at('1971-06-01T12:00:40Z')).reason).toBe('ok'); // 11:16:10 local
  });

  it('closes a window at the wall-clock minute, not at the next UTC minute', async () => {
    const store = new MemoryStore();
    const { key, record } = issueApiKey({ prefix: 'tg_', subject: 'svc', scopes: [], expiresIn: null, now: new Date('1971-05-01T00:00:00Z') });
    await store.putApiKey(record);
    const guard = createGuard({
      apiKeys: { prefix: 'tg_' },
      store,
      unmatched: 'authenticate',
      hours: { timezone: 'Africa/Monrovia', windows: [{ from: '10:00', to: '11:16' }] },
    });
    const at = (iso: string) => guard.evaluate({ method: 'GET', path: '/x', headers: { authorization: `Bearer ${key}` }, remoteAddress: '192.0.2.1', now: new Date(iso) });
    expect((await at('1971-06-01T12:00:10Z')).reason).toBe('ok'); // 11:15:40 local
    expect((await at('1971-06-01T12:00:40Z')).reason).toBe('hours.outside'); // 11:16:10 local
  });
});
