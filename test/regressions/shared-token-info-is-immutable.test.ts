// Regression (security review): hostile input and shared cached state.
import { describe, expect, it } from 'vitest';
import express from 'express';
import request from 'supertest';
import { tokenGuard, requireScopes } from '../../src/adapters/express.js';
import { basePolicy, signToken, NOW } from '../helpers/tokens.js';

describe('regression: the cached TokenInfo is shared and only shallowly frozen', () => {
  it('a handler that edits req.auth.token.scopes does not change what requireScopes sees on the next request', async () => {
    const app = express();
    app.use(tokenGuard(await basePolicy()));
    // e.g. a handler that normalises scopes in place, or a library that "adds implied scopes"
    app.get('/orders/:id', (req, res) => {
      try {
        req.auth?.token?.scopes.push('orders:admin');
      } catch {
        // a frozen array refuses the edit: that is the fix
      }
      res.json({ ok: true });
    });
    app.delete('/orders/:id/audit', requireScopes('orders:admin'), (_req, res) => {
      res.json({ deleted: true });
    });
    const token = await signToken({ scope: 'orders:read orders:write', amr: ['mfa'], auth_time: Math.floor(NOW.getTime() / 1000) });
    expect((await request(app).get('/orders/1').set('Authorization', `Bearer ${token}`)).status).toBe(200);
    // Same token, later request: the guard's verification cache hands back the mutated TokenInfo.
    const res = await request(app).delete('/orders/1/audit').set('Authorization', `Bearer ${token}`);
    expect(res.status).toBe(403);
  });
});
