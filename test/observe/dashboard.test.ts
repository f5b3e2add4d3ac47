// The dashboard in a real headless browser: traffic through a guarded Express app, the page loaded from
// dashboardHandler, the numbers it shows asserted, a screenshot saved under test/output/.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import express from 'express';
import request from 'supertest';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStore } from '../../src/index.js';
import { tokenGuard } from '../../src/adapters/express.js';
import { dashboardHandler, decisionRecorder } from '../../src/observe/dashboard.js';
import { basePolicy, signToken, storeApiKey, NOW, ISSUER } from '../helpers/tokens.js';
import { ACME, GLOBEX, accessToken, signer, tenantIssuers } from '../helpers/tenants.js';
import { chromiumPath } from '../helpers/chromium.js';

const OUTPUT = path.resolve(import.meta.dirname, '../output');

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

async function traffic() {
  const recorder = decisionRecorder({ clock: () => NOW.getTime() });
  const store = new MemoryStore();
  const app = express();
  app.use(tokenGuard(await basePolicy({ store, onDecision: recorder.onDecision, auditTrace: true, rateLimit: { limit: 100, window: '1m' } })));
  app.get('/orders/:id', (_req, res) => {
    res.json({ ok: true });
  });
  const ok = await signToken({ scope: 'orders:read', jti: 'tok-ok', sub: 'alice' });
  const weak = await signToken({ scope: 'orders:list', jti: 'tok-weak' }, { sub: 'mallory' });
  const { key, record } = await storeApiKey(store, { subject: 'svc-billing', scopes: ['orders:list'] });
  for (let i = 0; i < 3; i++) await request(app).get('/orders/1').set('Authorization', `Bearer ${ok}`).expect(200);
  for (let i = 0; i < 2; i++) await request(app).get('/orders/2').set('Authorization', `Bearer ${weak}`).set('X-Request-Id', `req-weak-${i}`).expect(403);
  await request(app).get('/orders/3').set('Authorization', `Bearer ${key}`).expect(403);
  await request(app).get('/orders/4').expect(401);
  return { recorder, store, secrets: [ok, weak, key], keyId: record.id };
}

describe('decisionRecorder + dashboardHandler over HTTP', () => {
  it('serves the numbers as data.json, and refuses a non-loopback Host (DNS rebinding)', async () => {
    const { recorder, store, secrets, keyId } = await traffic();
    const app = express();
    app.use('/guard', dashboardHandler({ recorder, store }));
    const data = (await request(app).get('/guard/data.json').expect(200)).body;
    expect(data.total).toEqual({ allow: 3, deny: 4, step_up: 0 });
    expect(data.reasons).toEqual([
      { reason: 'scope.insufficient', count: 3, perSecond: 3 / 60 },
      { reason: 'token.missing', count: 1, perSecond: 1 / 60 },
    ]);
    expect(data.deniedTokens).toEqual([
      { tokenId: 'tok-weak', count: 2, lastReason: 'scope.insufficient' },
      { tokenId: keyId, count: 1, lastReason: 'scope.insufficient' },
    ]);
    // A JWT's subject comes with its issuer; an API key's has none.
    expect(data.deniedSubjects).toEqual([
      { subject: 'mallory', issuer: ISSUER, count: 2 },
      { subject: 'svc-billing', count: 1 },
    ]);
    expect(data.recentDenials.find((d: { subject?: string }) => d.subject === 'mallory')).toMatchObject({ issuer: ISSUER });
    expect(data.rateLimits[0]).toMatchObject({ tokenId: 'tok-ok', limit: 100, remaining: 97 });
    expect(data.recentDenials[0]).toMatchObject({ method: 'GET', path: '/orders/4', reason: 'token.missing', status: 401 });
    expect(data.recentDenials.map((d: { requestId?: string }) => d.requestId)).toContain('req-weak-1');
    // auditTrace: each refusal comes with the steps that reached it, the refusing check among them.
    const weakDenial = data.recentDenials.find((d: { requestId?: string }) => d.requestId === 'req-weak-1');
    expect(weakDenial.trace).toContainEqual(expect.objectContaining({ phase: 'constraints', step: 'scopes', outcome: 'fail', reason: 'scope.insufficient' }));
    expect(data.recentDenials[0].trace).toContainEqual(expect.objectContaining({ step: 'refusal', outcome: 'fail', reason: 'token.missing' }));
    const raw = JSON.stringify(data);
    for (const s of secrets) expect(raw).not.toContain(s);

    await request(app).get('/guard').expect(308).expect('Location', '/guard/');
    const page = await request(app).get('/guard/').expect(200);
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    await request(app).get('/guard/data.json').set('Host', 'attacker.example').expect(403);
    // Only a whole Host reads as loopback: a bracketed address with anything after it but a port is another name.
    for (const host of ['[::1].evil.example', '[::1]evil', '[::1]:80.evil.example', '127.0.0.1.evil.example', 'localhost:80:80', '[::1']) {
      await request(app).get('/guard/data.json').set('Host', host).expect(403);
    }
    for (const host of ['[::1]:9464', '[::1]', 'LOCALHOST:3000', 'app.localhost', '127.0.0.1']) await request(app).get('/guard/data.json').set('Host', host).expect(200);
    await request(app).post('/guard/data.json').expect(405);
    await request(app).get('/guard/nope').expect(404);
  });

  it("counts two issuers' same subject as two subjects (two tenants' alice), in data.json and the audit event", async () => {
    const [acme, globex] = await Promise.all([signer('acme-1'), signer('globex-1')]);
    const events: { subject?: string; issuer?: string }[] = [];
    const recorder = decisionRecorder({ clock: () => NOW.getTime() });
    const app = express();
    app.use(
      tokenGuard({
        jwt: tenantIssuers(acme, globex),
        clock: () => NOW,
        rules: [{ path: '/admin/**', scopes: ['admin'] }],
        onDecision: (e) => {
          events.push({ subject: e.subject, issuer: e.issuer });
          recorder.onDecision(e);
        },
      }),
    );
    app.get('/admin/users', (_req, res) => {
      res.json({ ok: true });
    });
    const acmeAlice = await accessToken(acme, ACME, 'alice', 'a-1');
    const globexAlice = await accessToken(globex, GLOBEX, 'alice', 'g-1');
    for (let i = 0; i < 3; i++) await request(app).get('/admin/users').set('Authorization', `Bearer ${acmeAlice}`).expect(403);
    await request(app).get('/admin/users').set('Authorization', `Bearer ${globexAlice}`).expect(403);
    expect(events.at(-1)).toEqual({ subject: 'alice', issuer: GLOBEX });
    const dash = express();
    dash.use('/guard', dashboardHandler({ recorder }));
    const data = (await request(dash).get('/guard/data.json').expect(200)).body;
    expect(data.deniedSubjects).toEqual([
      { subject: 'alice', issuer: ACME, count: 3 },
      { subject: 'alice', issuer: GLOBEX, count: 1 },
    ]);
  });

  it('refuses a client that is not on loopback unless allowRemote', () => {
    const recorder = decisionRecorder();
    const answer = (allowRemote: boolean) => {
      let status = 0;
      const res = { statusCode: 0, setHeader: () => undefined, end: () => (status = res.statusCode) } as unknown as Parameters<ReturnType<typeof dashboardHandler>>[1];
      const req = { method: 'GET', url: '/data.json', headers: { host: 'dash.internal:9464' }, socket: { remoteAddress: '203.0.113.5' } } as never;
      dashboardHandler({ recorder, allowRemote })(req, res);
      return status;
    };
    expect(answer(false)).toBe(403);
    expect(answer(true)).toBe(200);
  });

  it('refuses a request a proxy forwarded (its socket is loopback, its client is not) unless allowRemote', async () => {
    const recorder = decisionRecorder();
    const dash = express();
    dash.use('/guard', dashboardHandler({ recorder }));
    const open = express();
    open.use('/guard', dashboardHandler({ recorder, allowRemote: true }));
    // A reverse proxy on this host that rewrites Host to its upstream (nginx's default) and says whom it forwards.
    const proxied: [string, string][] = [
      ['X-Forwarded-For', '192.0.2.2'],
      ['Forwarded', 'for=192.0.2.2;host=api.example.com'],
      ['X-Real-IP', '192.0.2.2'],
      ['Via', '1.1 nginx'],
      ['X-Forwarded-Host', 'api.example.com'],
    ];
    for (const [name, value] of proxied) {
      const r = await request(dash).get('/guard/data.json').set(name, value);
      expect([name, r.status, r.text]).toEqual([name, 403, expect.stringContaining('direct loopback clients only')]);
      await request(open).get('/guard/data.json').set(name, value).expect(200);
    }
    await request(dash).get('/guard/data.json').expect(200);
  });

  it('never redirects to a path a browser reads as another site (`//host`, `/\\host`)', () => {
    const recorder = decisionRecorder();
    const answer = (originalUrl: string) => {
      const headers: Record<string, string> = {};
      const res = { statusCode: 0, setHeader: (k: string, v: string) => (headers[k] = v), end: () => undefined } as unknown as Parameters<
        ReturnType<typeof dashboardHandler>
      >[1];
      const req = { method: 'GET', url: '/', originalUrl, headers: { host: '127.0.0.1:9464' }, socket: { remoteAddress: '127.0.0.1' } } as never;
      dashboardHandler({ recorder })(req, res);
      return [(res as unknown as { statusCode: number }).statusCode, headers['Location']];
    };
    expect(answer('/\\evil.example/guard')).toEqual([404, undefined]);
    expect(answer('//evil.example/guard')).toEqual([404, undefined]);
    expect(answer('/tenant/guard')).toEqual([308, '/tenant/guard/']);
  });

  it('refuses bad options at start-up', () => {
    // Coded usage errors (still TypeErrors, as they were before they had a code).
    for (const bad of [() => dashboardHandler({} as never), () => decisionRecorder({ size: 0 }), () => decisionRecorder({ clock: 'now' as never })]) {
      expect(bad).toThrow(TypeError);
      expect(bad).toThrow(expect.objectContaining({ code: 'usage.invalid_argument' }));
    }
  });
});

describe.skipIf(!chromiumPath)('dashboard in headless Chromium', () => {
  let server: Server;
  let url: string;
  let secrets: string[];
  beforeAll(async () => {
    const t = await traffic();
    secrets = t.secrets;
    server = createServer(dashboardHandler({ recorder: t.recorder, store: t.store, refreshMs: 60_000 }));
    url = await listen(server);
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('shows the decisions, top refused tokens and subjects, and recent refusals', async () => {
    const browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox', '--disable-gpu'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      await page.goto(`${url}/`);
      await page.waitForSelector('body[data-loaded="true"]');
      // biome-ignore lint/performance/useDomNodeTextContent: playwright's locator.innerText(), the text as rendered (what an operator sees)
      const text = (id: string) => page.locator(`#${id}`).innerText();
      expect([await text('total-allow'), await text('total-deny'), await text('total-step_up')]).toEqual(['3', '4', '0']);
      // biome-ignore lint/performance/useDomNodeTextContent: the text as rendered (what an operator sees), not the markup's
      const rows = (id: string) => page.locator(`#${id} tbody tr`).evaluateAll((trs) => trs.map((tr) => Array.from(tr.children).map((td) => (td as HTMLElement).innerText)));
      expect(await rows('reasons')).toEqual([
        ['scope.insufficient', '3', '0.05'],
        ['token.missing', '1', '0.02'],
      ]);
      expect((await rows('denied-tokens'))[0]).toEqual(['tok-weak', '2', 'scope.insufficient']);
      expect(await rows('denied-subjects')).toEqual([
        ['mallory', ISSUER, '2'],
        ['svc-billing', '', '1'],
      ]);
      expect((await rows('rate-limits'))[0]).toEqual(['tok-ok', '97', '100', '2']);
      const recent = await rows('recent-denials');
      expect(recent).toHaveLength(4);
      expect(recent[0]?.slice(1, 4)).toEqual(['GET /orders/4', '401', 'token.missing']);
      // Subject, issuer and request id side by side: two tenants' `alice` and a request's own log line tell apart.
      expect(recent.find((r) => r[1] === 'GET /orders/2')?.slice(6, 9)).toEqual(['mallory', ISSUER, 'req-weak-1']);
      // A refusal's trace, in a <details> of its detail cell: opened as an operator would, then read as rendered.
      const weakRow = page.locator('#recent-denials tbody tr', { hasText: 'GET /orders/2' }).first();
      await weakRow.locator('details.trace summary').click();
      // biome-ignore lint/performance/useDomNodeTextContent: playwright's locator.innerText(), the text as rendered (what an operator sees)
      const trace = await weakRow.locator('details.trace').innerText();
      expect(trace).toContain('constraints · scopes · rule · fail · scope.insufficient');
      expect(trace).toMatch(/authenticate · jwt · pass · token tok-weak of mallory/);
      expect(await page.locator('#recent-denials details.trace').count()).toBe(4);
      expect(await page.locator('#chart rect').count()).toBeGreaterThan(0);
      const html = await page.content();
      for (const s of secrets) expect(html).not.toContain(s);
      expect(errors).toEqual([]);
      mkdirSync(OUTPUT, { recursive: true });
      await page.screenshot({ path: path.join(OUTPUT, 'dashboard.png'), fullPage: true });
    } finally {
      await browser.close();
    }
  }, 60_000);
});
