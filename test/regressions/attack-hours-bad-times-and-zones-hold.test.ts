// Attacks on the hours check that held (kept as negative tests): a request time no Date can hold, a key record whose
// hours name a zone the runtime does not know, and zone names that only look valid.
import { describe, expect, it } from 'vitest';
import express from 'express';
import request from 'supertest';
import { tokenGuard } from '../../src/adapters/express.js';
import { createGuard, issueApiKey, MemoryStore, PolicyError, type ApiKeyRecord, type GuardRequest } from '../../src/index.js';
import { basePolicy, signToken, NOW_S } from '../helpers/tokens.js';

const OFFICE = { timezone: 'UTC', windows: [{ from: '08:00', to: '18:00' }] };
const at = (token: string, now: Date): GuardRequest => ({ method: 'GET', path: '/x', headers: { authorization: `Bearer ${token}` }, remoteAddress: '203.0.113.9', now });

describe('attack: hours with times and zones out of the ordinary', () => {
  it('never allows at a request time that is an Invalid Date, with or without hours, even an expired token', async () => {
    const expired = await signToken({}, { iat: NOW_S - 7200, exp: NOW_S - 3600 });
    for (const hours of [OFFICE, undefined]) {
      const guard = createGuard(await basePolicy({ store: new MemoryStore(), unmatched: 'authenticate', ...(hours && { hours }) }));
      for (const token of [expired, await signToken({})]) {
        const d = await guard.evaluate(at(token, new Date(Number.NaN)));
        expect(d.effect).not.toBe('allow');
      }
    }
  });

  it('answers 401 token.invalid over HTTP for a key record whose hours name an unknown zone (never 500, never allow)', async () => {
    const store = new MemoryStore();
    const app = express();
    app.use(tokenGuard(await basePolicy({ store, unmatched: 'authenticate' })));
    app.get('/x', (_req, res) => {
      res.json({ ok: true });
    });
    const issued = issueApiKey({ prefix: 'tg_', subject: 'svc', scopes: ['a'], expiresIn: '30d', now: new Date(Date.now() - 1000) });
    const record: ApiKeyRecord = { ...issued.record, hours: { timezone: 'Mars/Olympus_Mons', windows: [{ from: '00:00', to: '24:00' }] } };
    await store.putApiKey(record);
    const res = await request(app).get('/x').set('authorization', `Bearer ${issued.key}`);
    expect([res.status, res.body.reason]).toEqual([401, 'token.invalid']);
  });

  it.each(['', ' Europe/Berlin', 'Europe/Berlin\u0000', 'Local', '+25:00'])('refuses the zone %j at start-up with a PolicyError naming hours.timezone', async (timezone) => {
    const make = async () => createGuard(await basePolicy({ hours: { timezone, windows: [{ from: '08:00', to: '18:00' }] } }));
    await expect(make()).rejects.toBeInstanceOf(PolicyError);
    await expect(make()).rejects.toThrow(/hours\.timezone: unknown time zone/);
  });
});
