// Regression: `subjectScope: 'issuer'` with a guard that has one issuer configuration keys each subject bare, so a
// transmitter's revocation is the shared subject's (every token of that sub, API keys included): the narrowing the
// option asks for does not happen, and nothing said so. The receiver now warns once per process
// (TOKEN_GUARD_SET_SCOPE_SHARED); with several configurations, or without the scope, it does not.
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest';
import { ACME, GLOBEX, signer, tenantIssuers, type Signer } from '../helpers/tenants.js';

type Libs = [typeof import('../../src/index.js'), typeof import('../../src/receivers/set.js')];
const CODE = 'TOKEN_GUARD_SET_SCOPE_SHARED';

let emitWarning: MockInstance<typeof process.emitWarning>;
/** Fresh copies of the library: "once per process" state starts empty, as in a new process. */
async function fresh(): Promise<Libs> {
  vi.resetModules();
  return Promise.all([import('../../src/index.js'), import('../../src/receivers/set.js')]);
}
const warnings = () => emitWarning.mock.calls.filter((c) => (c[1] as { code?: string } | undefined)?.code === CODE);

let acme: Signer;
let globex: Signer;
beforeAll(async () => {
  [acme, globex] = await Promise.all([signer('acme'), signer('globex')]);
});
beforeEach(() => {
  emitWarning = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
});
afterEach(() => emitWarning.mockRestore());

describe("regression: subjectScope 'issuer' with one issuer configuration", () => {
  const base = () => ({ issuer: ACME, audience: 'https://api.example/security-events', keys: [acme.jwk] });

  it('warns once, saying each revocation is the shared subject’s, however many such receivers are made', async () => {
    const [{ createGuard, MemoryStore }, { createSetReceiver }] = await fresh();
    const store = new MemoryStore();
    const guard = createGuard({ jwt: tenantIssuers(acme, globex)[0], store });
    createSetReceiver({ ...base(), store, guard, subjectScope: 'issuer' });
    createSetReceiver({ ...base(), store, guard, subjectScope: 'issuer' });
    expect(warnings()).toHaveLength(1);
    const [message, options] = warnings()[0] as [string, { type: string; code: string }];
    expect(options).toEqual({ type: 'TokenGuardWarning', code: CODE });
    expect(message).toMatch(/shared subject.*API keys included/);
  });

  it('does not warn with several issuer configurations, or without the scope', async () => {
    const [{ createGuard, MemoryStore }, { createSetReceiver }] = await fresh();
    const store = new MemoryStore();
    const several = createGuard({ jwt: tenantIssuers(acme, globex), store });
    createSetReceiver({ ...base(), store, guard: several, subjectScope: 'issuer', subjectIssuers: [ACME, GLOBEX] });
    const one = createGuard({ jwt: tenantIssuers(acme, globex)[0], store: new MemoryStore() });
    createSetReceiver({ ...base(), store: new MemoryStore(), guard: one });
    expect(warnings()).toHaveLength(0);
  });
});
