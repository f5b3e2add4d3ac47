// A developer mistake in a call (guard.revoke without a token id, a store method given a Date) throws a coded
// UsageError with a help line: still a TypeError, as before it had a code, and never a bare TypeError.
import { describe, expect, it } from 'vitest';
import { createGuard, MemoryStore, StoreArgumentError, UsageError } from '../../src/index.js';
import { basePolicy } from '../helpers/tokens.js';

describe('usage errors', () => {
  it('guard.revoke and guard.revokeSubject refuse bad arguments with a coded UsageError that is still a TypeError', async () => {
    const guard = createGuard(await basePolicy());
    for (const call of [() => guard.revoke(''), () => guard.revokeSubject(''), () => guard.revoke('t1', { expiresAt: Number.NaN })]) {
      const err: unknown = await call().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UsageError);
      expect(err).toBeInstanceOf(TypeError);
      expect(err).toMatchObject({ name: 'UsageError', code: 'usage.invalid_argument', status: 500, expose: false, help: expect.stringMatching(/\w/) });
    }
  });

  it('StoreArgumentError is a UsageError with its own code', async () => {
    const err: unknown = await Promise.resolve()
      .then(() => new MemoryStore().revoke('t1', { now: new Date() as unknown as number }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreArgumentError);
    expect(err).toBeInstanceOf(UsageError);
    expect(err).toMatchObject({ name: 'StoreArgumentError', code: 'store.invalid_argument' });
  });
});
