// Regression (found by test/fuzz/path.fuzz.test.ts): find-my-way routes case-insensitively with
// String#toLowerCase, which folds U+03F4 ϴ to θ, U+2126 OHM SIGN to ω, U+212B ANGSTROM SIGN to å, U+1E9E ẞ
// to ß and astral capitals (Deseret 𐐀 → 𐐨), while the guard's case-insensitive regex does not. The request
// reached /θ/:id under the laxer catch-all rule. (The Kelvin sign and U+0130 were already refused.)
import { describe, expect, it } from 'vitest';
import Fastify from 'fastify';
import { tokenGuard } from '../../src/adapters/fastify.js';
import { basePolicy, signToken } from '../helpers/tokens.js';

describe('regression: characters String#toLowerCase folds and a case-insensitive regex does not', () => {
  for (const [route, spelled] of [
    ['θ', '%CF%B4'], // ϴ GREEK CAPITAL THETA SYMBOL
    ['ω', '%E2%84%A6'], // Ω OHM SIGN
    ['å', '%E2%84%AB'], // Å ANGSTROM SIGN
    ['ß', '%E1%BA%9E'], // ẞ LATIN CAPITAL SHARP S
    ['𐐨', '%F0%90%90%80'], // 𐐀 DESERET CAPITAL LONG I
  ] as const) {
    it(`refuses /${spelled}/1 or applies the /${route}/** rule to it`, async () => {
      const app = Fastify({ routerOptions: { caseSensitive: false } });
      await app.register(
        tokenGuard,
        await basePolicy({
          rules: [
            { path: `/${route}/**`, scopes: ['admin'] },
            { path: '/**', scopes: ['orders:read'] }, // everything else: any reader
          ],
        }),
      );
      app.get(`/${route}/:id`, async () => ({ secret: 'admin only' }));
      await app.ready();
      const token = await signToken({ scope: 'orders:read' });
      const plain = await app.inject({ method: 'GET', url: `/${encodeURIComponent(route)}/1`, headers: { authorization: `Bearer ${token}` } });
      expect(plain.statusCode).toBe(403);
      const folded = await app.inject({ method: 'GET', url: `/${spelled}/1`, headers: { authorization: `Bearer ${token}` } });
      expect(folded.statusCode).not.toBe(200);
      await app.close();
    });
  }

  it('applies a rule written with OHM SIGN to /ω, where the router lower-cases the route', async () => {
    const app = Fastify({ routerOptions: { caseSensitive: false } });
    await app.register(
      tokenGuard,
      await basePolicy({
        rules: [
          { path: '/\u2126/**', scopes: ['admin'] },
          { path: '/**', scopes: ['orders:read'] },
        ],
      }),
    );
    app.get('/\u2126/:id', async () => ({ secret: 'admin only' }));
    await app.ready();
    const token = await signToken({ scope: 'orders:read' });
    const res = await app.inject({ method: 'GET', url: '/%CF%89/1', headers: { authorization: `Bearer ${token}` } });
    expect(res.statusCode).toBe(403);
    await app.close();
  });
});
