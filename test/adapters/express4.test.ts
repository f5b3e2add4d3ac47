// The Express adapter on Express 4 (installed as the dev alias `express4`): same answers as on Express 5.
import { describe, expect, it } from 'vitest';
import express4 from 'express4';
import request from 'supertest';
import { tokenGuard, requireScopes } from '../../src/adapters/express.js';
import { basePolicy, signToken, NOW_S } from '../helpers/tokens.js';

describe('Express 4', () => {
  async function app() {
    const a = express4();
    a.use(tokenGuard(await basePolicy()) as unknown as express4.RequestHandler);
    a.get('/orders/:id', (req, res) => {
      res.json({ subject: (req as unknown as { auth?: { token?: { subject?: string } } }).auth?.token?.subject });
    });
    a.get('/reports/:id', requireScopes('reports:export') as unknown as express4.RequestHandler, (_req, res) => {
      res.json({ ok: true });
    });
    return a;
  }

  it('lets a valid request through with req.auth set', async () => {
    const res = await request(await app())
      .get('/orders/1')
      .set('Authorization', `Bearer ${await signToken({ scope: 'orders:read' })}`);
    expect([res.status, res.body]).toEqual([200, { subject: 'alice' }]);
  });

  it('answers refusals with the same status, challenge and problem body', async () => {
    const a = await app();
    const expired = await request(a)
      .get('/orders/1')
      .set('Authorization', `Bearer ${await signToken({ scope: 'orders:read' }, { exp: NOW_S - 10, iat: NOW_S - 100 })}`);
    expect([expired.status, expired.headers['content-type'], expired.body.reason]).toEqual([401, 'application/problem+json', 'token.expired']);
    const scoped = await request(a)
      .get('/reports/1')
      .set('Authorization', `Bearer ${await signToken({ scope: 'reports:read' })}`);
    expect([scoped.status, scoped.headers['www-authenticate']]).toEqual([403, 'Bearer error="insufficient_scope", scope="reports:export"']);
  });
});
