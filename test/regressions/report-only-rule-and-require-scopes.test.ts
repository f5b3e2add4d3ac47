// Regression (security review): requireScopes follows the matched rule's `mode: 'report-only'`, so an unrelated rule-level rollout
// (DESIGN.md's own example: trial an admin IP allow-list) silently switches off a route's requireScopes,
// even for anonymous requests.
import { describe, expect, it } from 'vitest';
import express from 'express';
import request from 'supertest';
import { tokenGuard, requireScopes } from '../../src/adapters/express.js';
import { basePolicy, signToken } from '../helpers/tokens.js';

const trialRule = { path: '/admin/**', scopes: ['admin'], ip: { allow: ['10.0.0.0/8'] }, mode: 'report-only' as const };

async function app() {
  const a = express();
  a.use(tokenGuard(await basePolicy({ rules: [trialRule] })));
  a.delete('/admin/users/:id', requireScopes('admin:delete'), (_req, res) => {
    res.json({ deleted: true });
  });
  return a;
}

describe('regression: requireScopes under a report-only rule', () => {
  it('refuses a token without the route scope (403)', async () => {
    const token = await signToken({ scope: 'admin' }); // has 'admin', lacks 'admin:delete'
    const res = await request(await app())
      .delete('/admin/users/7')
      .set('Authorization', `Bearer ${token}`);
    expect(res.status).toBe(403);
  });

  it('refuses an anonymous request (401)', async () => {
    const res = await request(await app()).delete('/admin/users/7');
    expect(res.status).toBe(401);
  });
});
