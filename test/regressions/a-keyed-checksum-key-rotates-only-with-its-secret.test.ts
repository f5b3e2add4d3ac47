// Regression: `rotateApiKey` (the CLI's `keys rotate`) of a key minted under the app's `apiKeys.checksumSecret`, called
// without the secret, minted a successor with a plain checksum, which the app refuses (token.malformed), and ended the
// old key (grace 0 by default): the holder was left with no working key, and the command said it was done. The record
// now remembers the keyed checksum (`keyedChecksum`), and such a rotation is refused until the secret is given.
import { describe, expect, it } from 'vitest';
import { createApiKey, createGuard, MemoryStore, rotateApiKey, type GuardRequest } from '../../src/index.js';

const SECRET = 'checksum-secret-checksum-secret-0123456789';
const req = (key: string): GuardRequest => ({ method: 'GET', path: '/x', headers: { authorization: `Bearer ${key}` }, remoteAddress: '127.0.0.1' });

describe('regression: a key minted with a keyed checksum', () => {
  it('is not rotated without the secret (nothing changes), and with it the successor works', async () => {
    const store = new MemoryStore();
    const guard = createGuard({ apiKeys: { prefix: 'tg_', checksumSecret: SECRET }, store, trackUsage: false, unmatched: 'authenticate' });
    const made = await createApiKey(store, { prefix: 'tg_', subject: 'svc', scopes: [], expiresIn: '1d', checksumSecret: SECRET });
    expect(made.record.keyedChecksum).toBe(true);
    const err = await rotateApiKey(store, made.record.id).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'UsageError', code: 'usage.invalid_argument', message: expect.stringContaining('keyed checksum') });
    expect((await guard.evaluate(req(made.key))).reason).toBe('ok');
    const rotated = await rotateApiKey(store, made.record.id, { checksumSecret: SECRET });
    expect((await guard.evaluate(req(rotated.key))).reason).toBe('ok');
    expect(rotated.record.keyedChecksum).toBe(true);
  });

  it('a key without one rotates as before', async () => {
    const store = new MemoryStore();
    const made = await createApiKey(store, { prefix: 'tg_', subject: 'svc', scopes: [], expiresIn: '1d' });
    expect(made.record.keyedChecksum).toBeUndefined();
    expect((await rotateApiKey(store, made.record.id)).record.rotatedFrom).toBe(made.record.id);
  });
});
