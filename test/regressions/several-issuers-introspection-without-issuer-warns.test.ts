// Regression: with several jwt configurations, an opaque token reads its issuer's subject revocations only when its
// introspection answer's `iss` equals an accepted issuer exactly; an answer without `iss`, or spelling it otherwise,
// reads the shared subject alone. Nothing said so: a guard with introspection but no `introspection.issuer` now warns
// once per process (TOKEN_GUARD_INTROSPECTION_ISSUER).
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest';
import { ACME, signer, tenantIssuers } from '../helpers/tenants.js';

type Core = typeof import('../../src/index.js');
const introspection = { endpoint: 'http://127.0.0.1:9/introspect', clientId: 'rs-orders', clientSecret: 'secret' };

let emitWarning: MockInstance<typeof process.emitWarning>;
/** A fresh copy of the library: "once per process" state starts empty, as in a new process. */
async function freshCore(): Promise<Core> {
  vi.resetModules();
  return import('../../src/index.js');
}
const warnings = () => emitWarning.mock.calls.filter((c) => (c[1] as { code?: string } | undefined)?.code === 'TOKEN_GUARD_INTROSPECTION_ISSUER');

beforeEach(() => {
  emitWarning = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
});
afterEach(() => emitWarning.mockRestore());

describe('regression: several issuers and introspection without issuer', () => {
  it('warns once, naming introspection.issuer, however many such guards are made', async () => {
    const { createGuard, MemoryStore } = await freshCore();
    const jwt = tenantIssuers(await signer('acme'), await signer('globex'));
    createGuard({ jwt, introspection, store: new MemoryStore() });
    createGuard({ jwt, introspection, store: new MemoryStore() });
    expect(warnings()).toHaveLength(1);
    const [message, options] = warnings()[0] as [string, { type: string; code: string }];
    expect(options).toEqual({ type: 'TokenGuardWarning', code: 'TOKEN_GUARD_INTROSPECTION_ISSUER' });
    expect(message).toMatch(/introspection\.issuer/);
  });

  it('does not warn with introspection.issuer, with one configuration, or without introspection', async () => {
    const { createGuard, MemoryStore } = await freshCore();
    const jwt = tenantIssuers(await signer('acme'), await signer('globex'));
    createGuard({ jwt, introspection: { ...introspection, issuer: ACME }, store: new MemoryStore() });
    createGuard({ jwt: jwt[0], introspection, store: new MemoryStore() });
    createGuard({ jwt, store: new MemoryStore() });
    expect(warnings()).toHaveLength(0);
  });
});
