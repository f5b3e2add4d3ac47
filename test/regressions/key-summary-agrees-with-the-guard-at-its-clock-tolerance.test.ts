// Regression: the guard reads an API key's creation `clockTolerance` earlier against a subject revocation's cut-off
// (5 s by default, the largest `jwt.clockTolerance` otherwise), so a key made up to that long after `revokeSubject` is
// refused by every request. Key summaries read it with no tolerance: `findApiKey` / `listApiKeys` (the CLI's `keys
// show` / `keys list`) showed such a key `active`, and `rotateApiKey` gave it a working successor. Given the guard's
// tolerance (`clockTolerance: guard.clockTolerance * 1000`, the default being the guard's default), summary and guard
// now agree at every edge: the guard refuses a key exactly when its summary says `revoked`.
import { describe, expect, it } from 'vitest';
import { createApiKey, createGuard, findApiKey, listApiKeys, MemoryStore, rotateApiKey, type TokenGuardPolicy, UsageError } from '../../src/index.js';
import { jwtPolicy, NOW } from '../helpers/tokens.js';

const T = NOW.getTime();
const at = (ms: number) => new Date(T + ms);
/** The subject revocation's cut-off. */
const CUT = 10_000;

async function policyWith(tolerance: 'none' | '0' | '30s'): Promise<TokenGuardPolicy> {
  const base: TokenGuardPolicy = { apiKeys: { prefix: 'tg_' }, rules: [{ path: '/orders/**', scopes: ['orders:read'] }] };
  if (tolerance === 'none') return base;
  return { ...base, jwt: await jwtPolicy({ clockTolerance: tolerance === '0' ? 0 : tolerance }) };
}

describe('regression: key summaries and the guard agree on a subject revocation at the clock tolerance', () => {
  for (const [label, tolerance, toleranceMs] of [
    ['no jwt (the default 5 s)', 'none', 5000],
    ['jwt.clockTolerance 30s', '30s', 30_000],
    ['jwt.clockTolerance 0', '0', 0],
  ] as const) {
    it(`${label}: revoked exactly when the guard refuses, inside the tolerance and just beyond it`, async () => {
      const store = new MemoryStore();
      const guard = createGuard({ ...(await policyWith(tolerance)), store });
      expect(guard.clockTolerance * 1000).toBe(toleranceMs);
      await guard.revokeSubject('svc-edge', { now: at(CUT), reason: 'offboarded' });
      // Made just before the cut-off, at it, at the last millisecond of the tolerance, at its end and past it.
      const offsets = [...new Set([-1, 0, toleranceMs - 1, toleranceMs, toleranceMs + 1])];
      const made = [];
      for (const offset of offsets) {
        made.push({ offset, ...(await createApiKey(store, { prefix: 'tg_', subject: 'svc-edge', scopes: ['orders:read'], expiresIn: '30d', now: at(CUT + offset) })) });
      }
      const now = at(CUT + toleranceMs + 60_000);
      const options = { now, clockTolerance: guard.clockTolerance * 1000 };
      const listed = new Map((await listApiKeys(store, 'svc-edge', options)).map((k) => [k.id, k.state]));
      for (const m of made) {
        const d = await guard.evaluate({ method: 'GET', path: '/orders/1', headers: { authorization: `Bearer ${m.key}` }, remoteAddress: '127.0.0.1', now });
        const refused = d.reason === 'token.revoked';
        const found = await findApiKey(store, m.record.id, options);
        // The guard's own rule, so that the agreement below is not vacuous: refused while made before cut + tolerance.
        expect([m.offset, refused]).toEqual([m.offset, m.offset < toleranceMs]);
        expect([m.offset, found?.state, listed.get(m.record.id)]).toEqual([m.offset, refused ? 'revoked' : 'active', refused ? 'revoked' : 'active']);
        if (refused) expect(d.status).toBe(401);
        else expect(d.effect).toBe('allow');
        const rotated = await rotateApiKey(store, m.record.id, options).catch((e: unknown) => e);
        if (refused) expect([m.offset, rotated]).toEqual([m.offset, expect.objectContaining({ name: 'ApiKeyStateError', code: 'api_key.revoked' })]);
        else expect([m.offset, (rotated as { previous: { state: string } }).previous.state]).toEqual([m.offset, 'revoked']);
      }
    });
  }

  it("defaults to the guard's default tolerance, 5 s", async () => {
    const store = new MemoryStore();
    const guard = createGuard({ ...(await policyWith('none')), store });
    await guard.revokeSubject('svc-default', { now: at(CUT) });
    const inside = await createApiKey(store, { prefix: 'tg_', subject: 'svc-default', scopes: [], expiresIn: '30d', now: at(CUT + 4999) });
    const beyond = await createApiKey(store, { prefix: 'tg_', subject: 'svc-default', scopes: [], expiresIn: '30d', now: at(CUT + 5000) });
    const now = at(CUT + 6000);
    expect((await findApiKey(store, inside.record.id, { now }))?.state).toBe('revoked');
    expect((await findApiKey(store, beyond.record.id, { now }))?.state).toBe('active');
    expect((await listApiKeys(store, 'svc-default', { now })).map((k) => k.state)).toEqual(['active', 'revoked']);
    expect(await rotateApiKey(store, inside.record.id, { now }).catch((e: unknown) => e)).toMatchObject({ code: 'api_key.revoked' });
  });

  it('refuses a clockTolerance that is not a duration with a coded UsageError, before reading the store', async () => {
    const store = new MemoryStore();
    const made = await createApiKey(store, { prefix: 'tg_', subject: 'svc-bad', scopes: [], expiresIn: '30d', now: at(0) });
    for (const bad of ['-1s', 'soon', Number.NaN, -1, Number.POSITIVE_INFINITY, {}]) {
      const options = { now: at(1000), clockTolerance: bad as never };
      for (const call of [() => listApiKeys(store, 'svc-bad', options), () => findApiKey(store, made.record.id, options), () => rotateApiKey(store, made.record.id, options)]) {
        const err = await call().catch((e: unknown) => e);
        expect(err).toBeInstanceOf(UsageError);
        expect(err).toMatchObject({
          code: 'usage.invalid_argument',
          message: expect.stringContaining('clockTolerance must be a duration'),
          help: expect.stringContaining('guard.clockTolerance * 1000'),
        });
      }
    }
    // Nothing rotated meanwhile.
    expect((await findApiKey(store, made.record.id, { now: at(1000) }))?.state).toBe('active');
  });
});
