// Regression (security review): with a case-insensitive Fastify router (caseSensitive: false) and the guard's default case-insensitive
// matching, U+212A KELVIN SIGN routes as "k" in find-my-way (String#toLowerCase) but does not match "k" in the
// guard's /i regex (no `u` flag). The request reaches /keys/:id under a different (laxer) rule.
import { describe, expect, it } from 'vitest';
import Fastify from 'fastify';
import { tokenGuard } from '../../src/adapters/fastify.js';
import { basePolicy, signToken } from '../helpers/tokens.js';

describe('regression: Unicode case folding differs between the guard and find-my-way', () => {
  it('refuses /%E2%84%AAeys/1 or applies the /keys/** rule to it', async () => {
    const app = Fastify({ routerOptions: { caseSensitive: false } });
    await app.register(
      tokenGuard,
      await basePolicy({
        rules: [
          { path: '/keys/**', scopes: ['keys:admin'] },
          { path: '/**', scopes: ['orders:read'] }, // everything else: any reader
        ],
      }),
    );
    app.get('/keys/:id', async () => ({ secret: 'key material' }));
    await app.ready();
    const token = await signToken({ scope: 'orders:read' });
    const plain = await app.inject({ method: 'GET', url: '/keys/1', headers: { authorization: `Bearer ${token}` } });
    expect(plain.statusCode).toBe(403);
    const kelvin = await app.inject({ method: 'GET', url: '/%E2%84%AAeys/1', headers: { authorization: `Bearer ${token}` } });
    expect(kelvin.statusCode).not.toBe(200);
    await app.close();
  });
});
