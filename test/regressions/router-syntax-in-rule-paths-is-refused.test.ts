// Regression (issue 8 item 1): a rule path written in router syntax (`/orders/:id`, `/files/{*rest}`, `(a|b)`)
// was matched literally, so it never matched a real request: `DELETE /orders/42` fell through to the
// catch-all rule after it and was allowed with the catch-all's (read) scope. Such a policy is now refused
// at start-up with a PolicyError that names the rule and says what to write instead.
import { describe, expect, it } from 'vitest';
import express from 'express';
import request from 'supertest';
import { tokenGuard } from '../../src/adapters/express.js';
import { createGuard, PolicyError, type RulePolicy, type TokenGuardPolicy } from '../../src/index.js';
import { basePolicy, NOW, signToken } from '../helpers/tokens.js';

const catchAll: RulePolicy = { path: '/**', scopes: ['orders:read'] };

async function policyWith(path: string): Promise<TokenGuardPolicy> {
  return basePolicy({ rules: [{ methods: ['DELETE'], path, scopes: ['orders:delete'] }, catchAll] });
}

function startUpError(start: () => unknown): PolicyError {
  try {
    start();
  } catch (err) {
    expect(err).toBeInstanceOf(PolicyError);
    return err as PolicyError;
  }
  throw new Error('expected the policy to be refused at start-up');
}

describe('regression: router syntax in a rule path cannot hand a route to the catch-all rule', () => {
  it('refuses tokenGuard(policy) in Express when a rule path is /orders/:id, naming the rule and the fix', async () => {
    const policy = await policyWith('/orders/:id');
    const app = express();
    const error = startUpError(() => app.use(tokenGuard(policy)));
    expect(error.issues).toEqual([{ path: 'rules[0].path', message: expect.stringContaining('use /orders/* for one segment, /orders/** for any depth') }]);
    expect(error.message).toContain('rules[0].path: ":id" is a route parameter');
  });

  it.each([
    ['/orders/{id}', '/orders/* for one segment'],
    ['/orders/{*rest}', '/orders/** for any depth'],
    ['/orders/*rest', '/orders/** for any depth'],
    ['/orders/:id(\\d+)', '/orders/* for one segment'],
    ['/(orders|invoices)/*', 'write one rule per alternative ("orders", "invoices")'],
    ['/orders/4+', 'write /orders/4*'],
    ['/orders/[0-9]', 'write /orders/*'],
    ['/orders$', 'write /orders'],
  ])('refuses %s at start-up with a hint: %s', async (path, fix) => {
    const policy = await policyWith(path);
    const error = startUpError(() => createGuard(policy));
    expect(error.issues).toHaveLength(1);
    expect(error.issues[0]?.path).toBe('rules[0].path');
    expect(error.issues[0]?.message).toContain(fix);
  });

  it('with the suggested /orders/* the guard refuses DELETE /orders/42 to a read-only token (evaluate)', async () => {
    const guard = createGuard(await policyWith('/orders/*'));
    const ask = async (scope: string) =>
      guard.evaluate({ method: 'DELETE', path: '/orders/42', headers: { authorization: `Bearer ${await signToken({ scope })}` }, remoteAddress: '127.0.0.1', now: NOW });
    expect(await ask('orders:read')).toMatchObject({ effect: 'deny', status: 403, reason: 'scope.insufficient' });
    expect(await ask('orders:delete')).toMatchObject({ effect: 'allow' });
  });

  it('with the suggested /orders/* Express answers DELETE /orders/42 with 403 for a read-only token', async () => {
    const app = express();
    app.use(tokenGuard(await policyWith('/orders/*')));
    app.delete('/orders/:id', (_req, res) => {
      res.json({ deleted: true });
    });
    const read = await request(app)
      .delete('/orders/42')
      .set('Authorization', `Bearer ${await signToken({ scope: 'orders:read' })}`);
    expect(read.status).toBe(403);
    const del = await request(app)
      .delete('/orders/42')
      .set('Authorization', `Bearer ${await signToken({ scope: 'orders:delete' })}`);
    expect(del.status).toBe(200);
  });
});
