// Regression (security review): an exception after evaluate() in the Express middleware (here: a WWW-Authenticate value Node refuses,
// from an unvalidated stepUp.acr) is an unhandled rejection: the request hangs and Node's default
// --unhandled-rejections=throw kills the process. Either the policy is refused at start-up or the error
// reaches next(err) (500).
import { describe, expect, it } from 'vitest';
import express from 'express';
import request from 'supertest';
import { PolicyError } from '../../src/index.js';
import { tokenGuard } from '../../src/adapters/express.js';
import { basePolicy, signToken } from '../helpers/tokens.js';

describe('regression: Express adapter error after evaluate', () => {
  it('refuses a stepUp.acr that cannot go into a header, or answers 500', async () => {
    let mw: ReturnType<typeof tokenGuard>;
    try {
      mw = tokenGuard(await basePolicy({ rules: [{ path: '/orders/**', stepUp: { acr: ['urn:acr:gold\r\nX-Injected: 1'] } }] }));
    } catch (e) {
      expect(e).toBeInstanceOf(PolicyError);
      return;
    }
    const app = express();
    app.use(mw);
    app.get('/orders/:id', (_req, res) => {
      res.json({ ok: true });
    });
    const pending = new Promise<unknown>((resolve) => process.once('unhandledRejection', resolve));
    const res = request(app)
      .get('/orders/1')
      .set('Authorization', `Bearer ${await signToken({ scope: 'x' })}`)
      .timeout(1500)
      .then(
        (r) => r.status,
        () => 'hung',
      );
    const first = await Promise.race([res, pending.then(() => 'unhandled rejection')]);
    expect(first).toBe(500);
  });
});
