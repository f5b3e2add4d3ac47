// Security events against a guard with several issuers (tenants): a jwt_id revokes the id the guard gives the token
// (`<name>:<jti>`), a transmitter revokes only subjects and tokens of the issuers it may name, and by-subject rate
// limits count each issuer's subjects apart. Real parts: one Express app with the receiver and the guard on one
// MemoryStore, pushed to and asked over HTTP, on a fixed clock.
import express from 'express';
import request from 'supertest';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { SignJWT } from 'jose';
import { tokenGuard } from '../../src/adapters/express.js';
import { createGuard, MemoryStore, UsageError } from '../../src/index.js';
import { CAEP_EVENTS, createSetReceiver, type SecurityEventRecord, type SetReceiverOptions } from '../../src/receivers/set.js';
import { ACME, API, GLOBEX, NOW, accessToken, signer, tenantIssuers, type Signer } from '../helpers/tenants.js';

const CT = 'application/secevent+jwt';
const ACME_SSF = 'https://ssf.acme.id.example/';
const RECEIVER = 'https://api.example/security-events';

let acme: Signer;
let globex: Signer;
let ssf: Signer;
beforeAll(async () => {
  [acme, globex, ssf] = await Promise.all([signer('acme'), signer('globex'), signer('ssf')]);
});

const nowS = () => Math.floor(NOW.getTime() / 1000);
const clock = () => NOW;

let seq = 0;
/** A SET signed by the transmitter's key (`ssf`), from `iss`, with one event. */
const securityEvent = (iss: string, type: string, subject: Record<string, unknown>) =>
  new SignJWT({ events: { [type]: { subject } } })
    .setProtectedHeader({ alg: 'ES256', kid: 'ssf', typ: 'secevent+jwt' })
    .setIssuer(iss)
    .setAudience(RECEIVER)
    .setIssuedAt(nowS())
    .setJti(`set-${++seq}`)
    .sign(ssf.key);

/** One app: the receiver (given the guard) before the guard, both on one store, as docs/security-events.md mounts them. */
function app(options: Partial<SetReceiverOptions> = {}) {
  const store = new MemoryStore();
  const guarded = tokenGuard({
    jwt: tenantIssuers(acme, globex),
    store,
    clock,
    rateLimit: { limit: 2, window: '1h', by: 'subject' },
    rules: [{ path: '/orders/**', scopes: ['orders:read'] }],
  });
  const records: SecurityEventRecord[] = [];
  const receiver = createSetReceiver({
    store,
    issuer: ACME,
    audience: RECEIVER,
    keys: [ssf.jwk],
    guard: guarded.guard,
    clock,
    onEvent: (r) => void records.push(r),
    ...options,
  });
  const server = express();
  server.post('/security-events', receiver.node);
  server.use(guarded);
  server.get('/orders/:id', (_req, res) => res.json({ ok: true }));
  const push = (set: string) => request(server).post('/security-events').set('content-type', CT).send(set);
  const ask = async (token: string) => {
    const r = await request(server).get('/orders/1').set('authorization', `Bearer ${token}`);
    return `${r.status} ${(r.body as { reason?: string }).reason ?? 'ok'}`;
  };
  return { push, ask, records, store, guard: guarded.guard };
}

describe('SET receiver with a multi-issuer guard: jwt_id subjects', () => {
  it("revokes the guard's prefixed id for a jwt_id from the transmitter's own issuer: that token is refused, the other tenant's same jti is not", async () => {
    const { push, ask, records } = app();
    const acmeToken = await accessToken(acme, ACME, 'alice', 'tok-1');
    const globexToken = await accessToken(globex, GLOBEX, 'alice', 'tok-1');
    expect(await ask(acmeToken)).toBe('200 ok');
    await push(await securityEvent(ACME, CAEP_EVENTS.tokenClaimsChange, { format: 'jwt_id', iss: ACME, jti: 'tok-1' })).expect(202, '');
    expect(await ask(acmeToken)).toBe('401 token.revoked');
    expect(await ask(globexToken)).toBe('200 ok');
    expect(records[0]).toMatchObject({ outcome: 'applied', actions: [{ type: CAEP_EVENTS.tokenClaimsChange, action: 'revoke_token', tokenId: 'acme:tok-1' }] });
  });

  it('ignores a jwt_id of an issuer the guard does not accept, even one the transmitter may name (audited)', async () => {
    const OTHER = 'https://other.id.example/';
    const { push, records } = app({ subjectIssuers: [ACME, OTHER] });
    await push(await securityEvent(ACME, CAEP_EVENTS.tokenClaimsChange, { format: 'jwt_id', iss: OTHER, jti: 'tok-1' })).expect(202);
    expect(records[0]?.actions).toEqual([
      { type: CAEP_EVENTS.tokenClaimsChange, action: 'ignored', detail: `jwt_id issuer ${JSON.stringify(OTHER)} is not an issuer the guard accepts` },
    ]);
  });
});

describe('SET receiver with a multi-issuer guard: a transmitter names only its own issuers', () => {
  it("revokes nothing when acme's transmitter names globex's subject or token: answered 202, audited as ignored and why", async () => {
    const { push, ask, records } = app();
    const globexAlice = await accessToken(globex, GLOBEX, 'alice', 'tok-9');
    const acmeAlice = await accessToken(acme, ACME, 'alice', 'tok-2');
    await push(await securityEvent(ACME, CAEP_EVENTS.sessionRevoked, { format: 'iss_sub', iss: GLOBEX, sub: 'alice' })).expect(202, '');
    await push(await securityEvent(ACME, CAEP_EVENTS.tokenClaimsChange, { format: 'jwt_id', iss: GLOBEX, jti: 'tok-9' })).expect(202, '');
    await push(await securityEvent(ACME, CAEP_EVENTS.credentialChange, { format: 'complex', user: { format: 'iss_sub', iss: GLOBEX, sub: 'alice' } })).expect(202, '');
    expect(await ask(globexAlice)).toBe('200 ok');
    expect(await ask(acmeAlice)).toBe('200 ok');
    const detail = `subject issuer ${JSON.stringify(GLOBEX)} is not one this transmitter may name (subjectIssuers)`;
    expect(records.map((r) => [r.outcome, r.actions])).toEqual([
      ['applied', [{ type: CAEP_EVENTS.sessionRevoked, action: 'ignored', detail }]],
      ['applied', [{ type: CAEP_EVENTS.tokenClaimsChange, action: 'ignored', detail }]],
      ['applied', [{ type: CAEP_EVENTS.credentialChange, action: 'ignored', detail }]],
    ]);
  });

  it("still revokes the transmitter's own issuer's subject, and subjects without iss as before", async () => {
    const { push, ask } = app();
    const acmeAlice = await accessToken(acme, ACME, 'alice', 'tok-3');
    const acmeBob = await accessToken(acme, ACME, 'bob', 'tok-4');
    await push(await securityEvent(ACME, CAEP_EVENTS.sessionRevoked, { format: 'iss_sub', iss: ACME, sub: 'alice' })).expect(202);
    await push(await securityEvent(ACME, CAEP_EVENTS.sessionRevoked, { format: 'opaque', id: 'bob' })).expect(202);
    expect(await ask(acmeAlice)).toBe('401 token.revoked');
    expect(await ask(acmeBob)).toBe('401 token.revoked');
  });

  it('with subjectIssuers, a separate SSF transmitter revokes the subjects and tokens of the issuers it names, and no others', async () => {
    const { push, ask, records } = app({ issuer: ACME_SSF, subjectIssuers: [ACME] });
    const acmeToken = await accessToken(acme, ACME, 'carol', 'tok-5');
    const acmeDave = await accessToken(acme, ACME, 'dave', 'tok-6');
    const globexToken = await accessToken(globex, GLOBEX, 'erin', 'tok-7');
    await push(await securityEvent(ACME_SSF, CAEP_EVENTS.tokenClaimsChange, { format: 'jwt_id', iss: ACME, jti: 'tok-5' })).expect(202);
    await push(await securityEvent(ACME_SSF, CAEP_EVENTS.sessionRevoked, { format: 'iss_sub', iss: ACME, sub: 'dave' })).expect(202);
    await push(await securityEvent(ACME_SSF, CAEP_EVENTS.sessionRevoked, { format: 'iss_sub', iss: GLOBEX, sub: 'erin' })).expect(202);
    // The transmitter's own iss is not implied once subjectIssuers is given.
    await push(await securityEvent(ACME_SSF, CAEP_EVENTS.sessionRevoked, { format: 'iss_sub', iss: ACME_SSF, sub: 'erin' })).expect(202);
    expect(await ask(acmeToken)).toBe('401 token.revoked');
    expect(await ask(acmeDave)).toBe('401 token.revoked');
    expect(await ask(globexToken)).toBe('200 ok');
    expect(records.map((r) => r.actions[0]?.action)).toEqual(['revoke_token', 'revoke_subject', 'ignored', 'ignored']);
  });
});

describe('subject revocations with several issuers', () => {
  it('an iss_sub event revokes the shared subject: every token of that sub is refused, whatever its issuer or kind reads', async () => {
    const { push, ask, records } = app();
    const acmeAlice = await accessToken(acme, ACME, 'alice', 'tok-s1');
    const globexAlice = await accessToken(globex, GLOBEX, 'alice', 'tok-s2');
    await push(await securityEvent(ACME, CAEP_EVENTS.sessionRevoked, { format: 'iss_sub', iss: ACME, sub: 'alice' })).expect(202, '');
    // Errs towards refusing: the issuer-scoped key would miss API keys, introspected tokens and other guards' readers.
    expect([await ask(acmeAlice), await ask(globexAlice)]).toEqual(['401 token.revoked', '401 token.revoked']);
    expect(records[0]?.actions).toEqual([{ type: CAEP_EVENTS.sessionRevoked, action: 'revoke_subject', subject: 'alice' }]);
  });

  it("a subject revoked without an issuer (the CLI, a receiver without guard, an opaque subject) still refuses every issuer's user", async () => {
    const { push, ask, store } = app();
    const acmeBob = await accessToken(acme, ACME, 'bob', 'tok-s3');
    const globexBob = await accessToken(globex, GLOBEX, 'bob', 'tok-s4');
    expect([await ask(acmeBob), await ask(globexBob)]).toEqual(['200 ok', '200 ok']);
    // What `token-guard revoke subject bob` writes: a guard without issuers, the bare subject.
    await createGuard({ store, apiKeys: { prefix: 'tg_' } }).revokeSubject('bob', { now: NOW });
    expect([await ask(acmeBob), await ask(globexBob)]).toEqual(['401 token.revoked', '401 token.revoked']);
    const acmeDan = await accessToken(acme, ACME, 'dan', 'tok-s5');
    const globexDan = await accessToken(globex, GLOBEX, 'dan', 'tok-s6');
    await push(await securityEvent(ACME, CAEP_EVENTS.sessionRevoked, { format: 'opaque', id: 'dan' })).expect(202);
    expect([await ask(acmeDan), await ask(globexDan)]).toEqual(['401 token.revoked', '401 token.revoked']);
  });

  it("on the guard's memoised path (a token that passed its rule before) too: the issuer's subject key is read beside the shared one", async () => {
    const store = new MemoryStore();
    const guard = createGuard({
      jwt: tenantIssuers(acme, globex),
      store,
      trackUsage: false,
      rules: [{ path: '/orders/**', scopes: ['orders:read'] }],
    });
    const ask = async (token: string) =>
      (await guard.evaluate({ method: 'GET', path: '/orders/1', headers: { authorization: `Bearer ${token}` }, remoteAddress: '127.0.0.1', now: NOW })).reason;
    const acmeGil = await accessToken(acme, ACME, 'gil', 'tok-m1');
    const globexGil = await accessToken(globex, GLOBEX, 'gil', 'tok-m2');
    for (let i = 0; i < 2; i++) expect([await ask(acmeGil), await ask(globexGil)]).toEqual(['ok', 'ok']);
    await guard.revokeSubject('gil', { issuer: ACME, now: NOW });
    expect([await ask(acmeGil), await ask(globexGil)]).toEqual(['token.revoked', 'ok']);
    await guard.revokeSubject('gil', { now: NOW });
    expect(await ask(globexGil)).toBe('token.revoked');
  });

  it("guard.revokeSubject with an issuer revokes that issuer's user only; an issuer the guard does not accept is a UsageError", async () => {
    const { ask, guard } = app();
    const acmeCarol = await accessToken(acme, ACME, 'carol', 'tok-s8');
    const globexCarol = await accessToken(globex, GLOBEX, 'carol', 'tok-s9');
    await guard.revokeSubject('carol', { issuer: GLOBEX, now: NOW });
    expect([await ask(acmeCarol), await ask(globexCarol)]).toEqual(['200 ok', '401 token.revoked']);
    await expect(guard.revokeSubject('carol', { issuer: 'https://evil.example/', now: NOW })).rejects.toThrow(UsageError);
    expect(guard.subjectIdOf('carol', ACME)).toBe('isub:acme:carol');
    expect(guard.subjectIdOf('carol', 'https://evil.example/')).toBeUndefined();
    expect(guard.subjectIdOf('', ACME)).toBeUndefined();
  });

  it("a guard with one issuer keeps bare subjects: subjectIdOf is the sub, and a separate transmitter's opaque subject still revokes", async () => {
    const one = createGuard({ jwt: { issuer: ACME, audience: API, algorithms: ['ES256'], keys: [acme.jwk] }, store: new MemoryStore(), clock });
    expect(one.subjectIdOf('alice', ACME)).toBe('alice');
    const receiver = createSetReceiver({ store: one.store, issuer: ACME_SSF, audience: RECEIVER, keys: [ssf.jwk], guard: one, clock });
    const answer = await receiver.receive({ contentType: CT, body: await securityEvent(ACME_SSF, CAEP_EVENTS.sessionRevoked, { format: 'opaque', id: 'frank' }) });
    expect(answer.status).toBe(202);
    const frank = await accessToken(acme, ACME, 'frank', 'tok-s10');
    const d = await one.evaluate({ method: 'GET', path: '/orders/1', headers: { authorization: `Bearer ${frank}` }, remoteAddress: '127.0.0.1' });
    expect(d.reason).toBe('token.revoked');
  });
});

describe('by-subject rate limits with several issuers', () => {
  it("count each issuer's subjects apart: globex's alice does not spend acme's alice's budget", async () => {
    const { ask } = app();
    const acmeAlice = await accessToken(acme, ACME, 'alice', 'tok-a3');
    const globexAlice = await accessToken(globex, GLOBEX, 'alice', 'tok-g3');
    expect([await ask(globexAlice), await ask(globexAlice), await ask(globexAlice)]).toEqual(['200 ok', '200 ok', '429 rate.limited']);
    expect([await ask(acmeAlice), await ask(acmeAlice), await ask(acmeAlice)]).toEqual(['200 ok', '200 ok', '429 rate.limited']);
  });

  it("count one issuer's tokens of a subject together, and apart from a bare subject spelled like its key", async () => {
    const { ask, store } = app();
    const first = await accessToken(acme, ACME, 'bob', 'tok-a5');
    const second = await accessToken(acme, ACME, 'bob', 'tok-a6');
    expect([await ask(first), await ask(second), await ask(first)]).toEqual(['200 ok', '200 ok', '429 rate.limited']);
    // What an API key or introspected token with the subject 'acme:carol' spends is not acme's carol's.
    await store.consume('sub:acme:carol', [{ name: 's:policy', limit: 2, windowMs: 3_600_000 }], NOW.getTime());
    await store.consume('sub:acme:carol', [{ name: 's:policy', limit: 2, windowMs: 3_600_000 }], NOW.getTime());
    expect(await ask(await accessToken(acme, ACME, 'carol', 'tok-a7'))).toBe('200 ok');
  });
});

describe('guard.tokenIdOf and the receiver options', () => {
  it('gives the id the guard files a JWT under: prefixed with several issuers, bare with one, none for an issuer it does not accept', () => {
    const several = createGuard({
      jwt: [
        { name: 'acme', issuer: ACME, audience: API, algorithms: ['ES256'], keys: [acme.jwk] },
        { name: 'globex', issuer: [GLOBEX, 'https://login.globex.example/'], audience: API, algorithms: ['ES256'], keys: [globex.jwk] },
      ],
    });
    expect(several.tokenIdOf('j1', ACME)).toBe('acme:j1');
    expect(several.tokenIdOf('j1', 'https://login.globex.example/')).toBe('globex:j1');
    expect(several.tokenIdOf('j1', 'https://evil.example/')).toBeUndefined();
    expect(several.tokenIdOf('', ACME)).toBeUndefined();
    const one = createGuard({ jwt: { issuer: ACME, audience: API, algorithms: ['ES256'], keys: [acme.jwk] } });
    expect(one.tokenIdOf('j1', ACME)).toBe('j1');
    expect(one.tokenIdOf('j1', GLOBEX)).toBeUndefined();
    expect(createGuard({ apiKeys: { prefix: 'tg_' } }).tokenIdOf('j1', ACME)).toBeUndefined();
  });

  it('refuses a receiver without `guard` on a store a multi-issuer guard of this process reads: its jwt_id would revoke nothing', () => {
    const { store } = app();
    expect(() => createSetReceiver({ store, issuer: ACME, audience: RECEIVER, keys: [ssf.jwk] })).toThrow(/several issuers/);
    // A store only a single-issuer guard reads keeps bare ids, which that guard reads.
    const single = new MemoryStore();
    createGuard({ jwt: { issuer: ACME, audience: API, algorithms: ['ES256'], keys: [acme.jwk] }, store: single });
    expect(() => createSetReceiver({ store: single, issuer: ACME, audience: RECEIVER, keys: [ssf.jwk] })).not.toThrow();
  });

  it('warns when the multi-issuer guard comes after a receiver without `guard` on its store', () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      const store = new MemoryStore();
      createSetReceiver({ store, issuer: ACME, audience: RECEIVER, keys: [ssf.jwk] });
      createGuard({
        jwt: tenantIssuers(acme, globex),
        store,
      });
      expect(warn).toHaveBeenCalledWith(expect.stringContaining('bare jti'), { type: 'TokenGuardWarning', code: 'TOKEN_GUARD_SET_WITHOUT_GUARD' });
    } finally {
      warn.mockRestore();
    }
  });

  it('refuses a bad subjectIssuers or guard at creation with a UsageError', () => {
    const base = { store: new MemoryStore(), issuer: ACME, audience: RECEIVER, keys: [ssf.jwk] };
    expect(() => createSetReceiver({ ...base, subjectIssuers: [] })).toThrow(UsageError);
    expect(() => createSetReceiver({ ...base, subjectIssuers: [''] })).toThrow(UsageError);
    expect(() => createSetReceiver({ ...base, guard: {} as SetReceiverOptions['guard'] })).toThrow(/guard/);
  });
});

describe("subjectScope 'issuer': a transmitter's subject revocations stay with the issuers it speaks for", () => {
  it("acme's transmitter logging out its alice refuses acme's alice only: globex's alice keeps working (audited with the issuer)", async () => {
    const { push, ask, records } = app({ subjectScope: 'issuer' });
    const acmeAlice = await accessToken(acme, ACME, 'alice', 'tok-i1');
    const globexAlice = await accessToken(globex, GLOBEX, 'alice', 'tok-i2');
    expect([await ask(acmeAlice), await ask(globexAlice)]).toEqual(['200 ok', '200 ok']);
    await push(await securityEvent(ACME, CAEP_EVENTS.sessionRevoked, { format: 'iss_sub', iss: ACME, sub: 'alice' })).expect(202, '');
    expect([await ask(acmeAlice), await ask(globexAlice)]).toEqual(['401 token.revoked', '200 ok']);
    expect(records[0]?.actions).toEqual([{ type: CAEP_EVENTS.sessionRevoked, action: 'revoke_subject', subject: 'alice', issuer: ACME }]);
  });

  it("a subject naming no iss (opaque, or complex without one) is the transmitter's own issuer's: the other tenant is untouched", async () => {
    const { push, ask } = app({ subjectScope: 'issuer' });
    const acmeBob = await accessToken(acme, ACME, 'bob', 'tok-i3');
    const globexBob = await accessToken(globex, GLOBEX, 'bob', 'tok-i4');
    const acmeCy = await accessToken(acme, ACME, 'cy', 'tok-i5');
    const globexCy = await accessToken(globex, GLOBEX, 'cy', 'tok-i6');
    await push(await securityEvent(ACME, CAEP_EVENTS.sessionRevoked, { format: 'opaque', id: 'bob' })).expect(202);
    await push(await securityEvent(ACME, CAEP_EVENTS.credentialChange, { format: 'complex', user: { format: 'opaque', id: 'cy' } })).expect(202);
    expect([await ask(acmeBob), await ask(globexBob), await ask(acmeCy), await ask(globexCy)]).toEqual(['401 token.revoked', '200 ok', '401 token.revoked', '200 ok']);
  });

  it('a transmitter speaking for both tenants: a named issuer narrows to it, a subject naming none reaches each it may name', async () => {
    const { push, ask, records } = app({ issuer: ACME_SSF, subjectIssuers: [ACME, GLOBEX], subjectScope: 'issuer' });
    const acmeDee = await accessToken(acme, ACME, 'dee', 'tok-i7');
    const globexDee = await accessToken(globex, GLOBEX, 'dee', 'tok-i8');
    const acmeEd = await accessToken(acme, ACME, 'ed', 'tok-i9');
    const globexEd = await accessToken(globex, GLOBEX, 'ed', 'tok-i10');
    await push(await securityEvent(ACME_SSF, CAEP_EVENTS.sessionRevoked, { format: 'complex', user: { format: 'iss_sub', iss: GLOBEX, sub: 'dee' } })).expect(202);
    await push(await securityEvent(ACME_SSF, CAEP_EVENTS.sessionRevoked, { format: 'opaque', id: 'ed' })).expect(202);
    expect([await ask(acmeDee), await ask(globexDee)]).toEqual(['200 ok', '401 token.revoked']);
    expect([await ask(acmeEd), await ask(globexEd)]).toEqual(['401 token.revoked', '401 token.revoked']);
    expect(records[1]?.actions.map((a) => a.issuer)).toEqual([ACME, GLOBEX]);
  });

  it("another tenant's subject is still ignored, and a revocation without issuer (guard.revokeSubject, the CLI) still reaches everyone", async () => {
    const { push, ask, guard, records } = app({ subjectScope: 'issuer' });
    const globexFay = await accessToken(globex, GLOBEX, 'fay', 'tok-i11');
    await push(await securityEvent(ACME, CAEP_EVENTS.sessionRevoked, { format: 'iss_sub', iss: GLOBEX, sub: 'fay' })).expect(202);
    expect(await ask(globexFay)).toBe('200 ok');
    expect(records[0]?.actions[0]?.action).toBe('ignored');
    await guard.revokeSubject('fay', { now: NOW });
    expect(await ask(globexFay)).toBe('401 token.revoked');
  });

  it("is refused at creation without a guard that keys each allowed issuer's subjects, and for a bad value", () => {
    const base = { store: new MemoryStore(), issuer: ACME, audience: RECEIVER, keys: [ssf.jwk] };
    const guard = createGuard({ jwt: tenantIssuers(acme, globex), store: base.store });
    expect(() => createSetReceiver({ ...base, guard, subjectScope: 'issuer' })).not.toThrow();
    expect(() => createSetReceiver({ ...base, store: new MemoryStore(), subjectScope: 'issuer' })).toThrow(/needs the guard/);
    expect(() => createSetReceiver({ ...base, guard: { tokenIdOf: guard.tokenIdOf }, subjectScope: 'issuer' })).toThrow(/needs the guard/);
    expect(() => createSetReceiver({ ...base, guard, issuer: ACME_SSF, subjectScope: 'issuer' })).toThrow(/accepts no tokens of "https:\/\/ssf\.acme/);
    expect(() => createSetReceiver({ ...base, guard, subjectIssuers: [ACME, ACME_SSF], subjectScope: 'issuer' })).toThrow(UsageError);
    expect(() => createSetReceiver({ ...base, guard, subjectScope: 'tenant' as 'issuer' })).toThrow(/subjectScope/);
  });

  it('a guard that stops accepting an allowed issuer after creation fails the delivery (503, audited failed): nothing is revoked under a guess', async () => {
    const store = new MemoryStore();
    let accepts = true;
    const source = { tokenIdOf: () => undefined, subjectIdOf: (sub: string) => (accepts ? `isub:acme:${sub}` : undefined) };
    const records: SecurityEventRecord[] = [];
    const receiver = createSetReceiver({
      store,
      issuer: ACME,
      audience: RECEIVER,
      keys: [ssf.jwk],
      guard: source,
      subjectScope: 'issuer',
      clock,
      onEvent: (r) => void records.push(r),
    });
    accepts = false;
    const answer = await receiver.receive({ contentType: CT, body: await securityEvent(ACME, CAEP_EVENTS.sessionRevoked, { format: 'iss_sub', iss: ACME, sub: 'gus' }) });
    expect([answer.status, records[0]?.outcome]).toEqual([503, 'failed']);
    expect([await store.getRevocation('tok', 'gus', NOW.getTime()), await store.getRevocation('tok', 'isub:acme:gus', NOW.getTime())]).toEqual([undefined, undefined]);
  });
});
