// Regression (issue 8 item 7): `app.get(...)` before `app.use(tokenGuard(...))` leaves that route without
// the guard: Express answers it with no req.auth and no checks. The adapter notices from the app's router
// stack the first time a request reaches the guard, and says so once (TOKEN_GUARD_NOT_MOUNTED).
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest';
import express from 'express';
import express4 from 'express4';
import request from 'supertest';
import { basePolicy, signToken } from '../helpers/tokens.js';

type ExpressAdapter = typeof import('../../src/adapters/express.js');
let emitWarning: MockInstance<typeof process.emitWarning>;
/** A fresh adapter: its once-per-process warning state starts empty, as in a new process. */
async function freshAdapter(): Promise<ExpressAdapter> {
  vi.resetModules();
  return import('../../src/adapters/express.js');
}
const mountWarnings = () => emitWarning.mock.calls.filter((c) => (c[1] as { code?: string } | undefined)?.code === 'TOKEN_GUARD_NOT_MOUNTED');

beforeEach(() => {
  emitWarning = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
});
afterEach(() => emitWarning.mockRestore());

describe('regression: a guard mounted after the routes', () => {
  it('warns once, naming the routes it cannot see, when it is mounted after app.get()', async () => {
    const { tokenGuard } = await freshAdapter();
    const app = express();
    app.get('/orders/:id', (req, res) => void res.json({ auth: req.auth ?? null }));
    app.use(tokenGuard(await basePolicy()));
    app.use((_req, res) => void res.status(404).end());
    const open = await request(app).get('/orders/1');
    expect([open.status, open.body]).toEqual([200, { auth: null }]); // the mistake: answered without the guard
    await request(app).get('/nowhere');
    await request(app).get('/nowhere');
    await request(app).get('/orders/2');
    expect(mountWarnings()).toHaveLength(1);
    const [message, options] = mountWarnings()[0] as [string, { type: string; code: string }];
    expect(options).toEqual({ type: 'TokenGuardWarning', code: 'TOKEN_GUARD_NOT_MOUNTED' });
    expect(message).toContain('GET /orders/:id');
    expect(message).toMatch(/before your routes/);
  });

  it('warns for a Router mounted before the guard, on Express 4 too', async () => {
    const { tokenGuard } = await freshAdapter();
    const app = express4();
    const admin = express4.Router();
    admin.get('/users', (_req, res) => void res.json([]));
    app.use('/admin', admin);
    app.use(tokenGuard(await basePolicy()) as unknown as express4.RequestHandler);
    await request(app).get('/nowhere');
    expect(mountWarnings()).toHaveLength(1);
    expect(mountWarnings()[0]?.[0]).toContain('a Router');
  });

  it('does not warn when the guard comes first, or after plain middleware', async () => {
    const { tokenGuard } = await freshAdapter();
    const app = express();
    app.use(express.json());
    app.use(tokenGuard(await basePolicy()));
    app.get('/orders/:id', (req, res) => void res.json({ subject: req.auth?.token?.subject }));
    const token = await signToken({ scope: 'orders:read' });
    expect((await request(app).get('/orders/1').set('Authorization', `Bearer ${token}`)).body).toEqual({ subject: 'alice' });
    await request(app).get('/nowhere');
    expect(mountWarnings()).toEqual([]);
  });
});
