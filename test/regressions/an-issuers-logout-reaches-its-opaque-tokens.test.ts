// Regression: with several issuer configurations, `guard.revokeSubject('alice', { issuer })` wrote that issuer's own
// subject key, which only its JWTs read: an opaque token of the same issuer's alice, checked by introspection, still
// passed. An introspected token whose answer names an issuer a configuration accepts now reads that configuration's
// subject key beside the shared one (and counts its by-subject limits there, with that issuer's JWTs).
// Real parts: an Express app over HTTP, the authorization server's introspection endpoint on 127.0.0.1.
import express from 'express';
import request from 'supertest';
import { beforeAll, describe, expect, it } from 'vitest';
import { tokenGuard } from '../../src/adapters/express.js';
import { MemoryStore, type TokenGuardPolicy } from '../../src/index.js';
import { ACME, GLOBEX, NOW, accessToken, signer, tenantIssuers, type Signer } from '../helpers/tenants.js';
import { useIntrospectionServer } from '../helpers/introspection-server.js';

const OTHER = 'https://other.id.example/';

/** Each opaque token's answer: its issuer and subject. */
const answers: Record<string, { iss?: string; sub: string }> = {
  'opaque-acme-alice-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA': { iss: ACME, sub: 'alice' },
  'opaque-globex-alice-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA': { iss: GLOBEX, sub: 'alice' },
  'opaque-other-alice-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA': { iss: OTHER, sub: 'alice' },
  'opaque-noiss-alice-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA': { sub: 'alice' },
  'opaque-acme-bob-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA': { iss: ACME, sub: 'bob' },
  // ACME's issuer spelled without its trailing slash: not the issuer the configuration accepts.
  'opaque-acmeslash-alice-AAAAAAAAAAAAAAAAAAAAAAAAAAAAA': { iss: ACME.slice(0, -1), sub: 'alice' },
};
const [ACME_ALICE, GLOBEX_ALICE, OTHER_ALICE, NOISS_ALICE, ACME_BOB, SLASHLESS_ALICE] = Object.keys(answers) as [string, string, string, string, string, string];

const as = useIntrospectionServer(answers);
let acme: Signer;
let globex: Signer;
beforeAll(async () => {
  [acme, globex] = await Promise.all([signer('acme'), signer('globex')]);
});

function app(extra: Partial<TokenGuardPolicy> = {}) {
  const guarded = tokenGuard({
    jwt: tenantIssuers(acme, globex),
    introspection: { endpoint: as.endpoint, clientId: 'rs-orders', clientSecret: 'secret' },
    store: new MemoryStore(),
    clock: () => NOW,
    rules: [{ path: '/orders/**', scopes: ['orders:read'] }],
    ...extra,
  });
  const server = express();
  server.use(guarded);
  server.get('/orders/:id', (_req, res) => res.json({ ok: true }));
  const ask = async (token: string) => {
    const r = await request(server).get('/orders/1').set('authorization', `Bearer ${token}`);
    return `${r.status} ${(r.body as { reason?: string }).reason ?? 'ok'}`;
  };
  return { ask, guard: guarded.guard };
}

describe("an issuer's subject revocation reaches that issuer's introspected tokens", () => {
  it("revokeSubject(sub, { issuer }) refuses that issuer's opaque token and JWT, and neither of the other issuer's", async () => {
    const { ask, guard } = app();
    const acmeJwt = await accessToken(acme, ACME, 'alice', 'tok-1');
    const globexJwt = await accessToken(globex, GLOBEX, 'alice', 'tok-2');
    // Seen (and cached: verification and introspection answer) before the revocation.
    for (const t of [ACME_ALICE, GLOBEX_ALICE, acmeJwt, globexJwt]) expect(await ask(t)).toBe('200 ok');
    await guard.revokeSubject('alice', { issuer: ACME, now: NOW });
    expect([await ask(ACME_ALICE), await ask(acmeJwt)]).toEqual(['401 token.revoked', '401 token.revoked']);
    expect([await ask(GLOBEX_ALICE), await ask(globexJwt), await ask(ACME_BOB)]).toEqual(['200 ok', '200 ok', '200 ok']);
    await guard.revokeSubject('alice', { issuer: GLOBEX, now: NOW });
    expect([await ask(GLOBEX_ALICE), await ask(globexJwt)]).toEqual(['401 token.revoked', '401 token.revoked']);
  });

  it('an answer naming no issuer, or one no configuration accepts, keeps the shared subject: a revocation without issuer still refuses it', async () => {
    const { ask, guard } = app();
    await guard.revokeSubject('alice', { issuer: ACME, now: NOW });
    expect([await ask(NOISS_ALICE), await ask(OTHER_ALICE)]).toEqual(['200 ok', '200 ok']);
    await guard.revokeSubject('alice', { now: NOW });
    expect([await ask(NOISS_ALICE), await ask(OTHER_ALICE), await ask(GLOBEX_ALICE)]).toEqual(['401 token.revoked', '401 token.revoked', '401 token.revoked']);
  });

  it('introspection.issuer refuses an answer that spells the issuer otherwise, which would read only the shared subject', async () => {
    const loose = app();
    await loose.guard.revokeSubject('alice', { issuer: ACME, now: NOW });
    // Without introspection.issuer (the guard warns): exact spelling only, so this one reads the shared key alone.
    expect([await loose.ask(ACME_ALICE), await loose.ask(SLASHLESS_ALICE)]).toEqual(['401 token.revoked', '200 ok']);
    const strict = app({ introspection: { endpoint: as.endpoint, clientId: 'rs-orders', clientSecret: 'secret', issuer: ACME } });
    await strict.guard.revokeSubject('alice', { issuer: ACME, now: NOW });
    expect([await strict.ask(ACME_ALICE), await strict.ask(SLASHLESS_ALICE), await strict.ask(NOISS_ALICE)]).toEqual([
      '401 token.revoked',
      '401 token.invalid',
      '401 token.invalid',
    ]);
    expect(await strict.ask(ACME_BOB)).toBe('200 ok');
  });

  it("by-subject rate limits count an issuer's opaque tokens and JWTs of a subject together, apart from the other issuer's", async () => {
    const { ask } = app({ rateLimit: { limit: 2, window: '1h', by: 'subject' } });
    const acmeJwt = await accessToken(acme, ACME, 'alice', 'tok-3');
    expect([await ask(ACME_ALICE), await ask(acmeJwt), await ask(ACME_ALICE)]).toEqual(['200 ok', '200 ok', '429 rate.limited']);
    expect([await ask(GLOBEX_ALICE), await ask(GLOBEX_ALICE)]).toEqual(['200 ok', '200 ok']);
  });
});
