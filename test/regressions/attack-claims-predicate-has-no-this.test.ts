// Regression (attack on the per-rule checks): a claims predicate was called as a method of the compiled check
// (`c.fn(claims, request)`), so a `function` predicate saw the guard's compiled value as `this` and could rewrite it
// (`this.kind = 'map'; this.tests = []`): every later request then passed the claims check. Now it is called unbound.
import { describe, expect, it } from 'vitest';
import express from 'express';
import request from 'supertest';
import { tokenGuard } from '../../src/adapters/express.js';
import { MemoryStore, type ClaimsPredicate } from '../../src/index.js';
import { basePolicy, signToken } from '../helpers/tokens.js';

describe('regression: a claims predicate called as a method of the compiled check', () => {
  it('gives a `function` predicate no `this`, so it cannot rewrite the check for later requests (over HTTP)', async () => {
    const seen: unknown[] = [];
    const predicate: ClaimsPredicate = function (this: unknown, claims) {
      seen.push(this);
      // Written against the compiled shape: would turn the check into an empty map that passes every token.
      if (this && typeof this === 'object') Object.assign(this, { kind: 'map', tests: [] });
      return claims['tenant'] === 'acme';
    };
    const app = express();
    app.use(tokenGuard(await basePolicy({ store: new MemoryStore(), unmatched: 'authenticate', claims: predicate })));
    app.get('/orders/:id', (_req, res) => {
      res.json({ ok: true });
    });
    const globex = await signToken({ scope: 'orders:read', tenant: 'globex' });
    for (let i = 0; i < 2; i++) {
      const res = await request(app).get('/orders/1').set('authorization', `Bearer ${globex}`);
      expect([res.status, res.body.reason]).toEqual([403, 'claims.mismatch']);
    }
    expect(seen).toEqual([undefined, undefined]);
  });
});
