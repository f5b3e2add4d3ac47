// An app behind a proxy it has not told about (trustProxy off, the default) sees every client as the proxy: IP allow
// lists, per-IP limits and preAuthLimit all key on one address, silently. The first request that carries
// X-Forwarded-For while the policy leaves trustProxy out says so once per process (TOKEN_GUARD_XFF_IGNORED), naming
// the fix. An explicit `false` says the app knows clients reach it directly: no warning then.
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest';
import express from 'express';
import request from 'supertest';
import type { TokenGuardPolicy } from '../../src/index.js';
import { basePolicy, signToken } from '../helpers/tokens.js';

type Core = typeof import('../../src/index.js');
type ExpressAdapter = typeof import('../../src/adapters/express.js');

let emitWarning: MockInstance<typeof process.emitWarning>;
/** Fresh copies of the library: "once per process" state starts empty, as in a new process. */
async function fresh(): Promise<{ core: Core; express: ExpressAdapter }> {
  vi.resetModules();
  return { core: await import('../../src/index.js'), express: await import('../../src/adapters/express.js') };
}
const xffWarnings = () => emitWarning.mock.calls.filter((c) => (c[1] as { code?: string } | undefined)?.code === 'TOKEN_GUARD_XFF_IGNORED');

beforeEach(() => {
  emitWarning = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
});
afterEach(() => emitWarning.mockRestore());

async function appWith(adapter: ExpressAdapter, overrides: Partial<TokenGuardPolicy> = {}) {
  const app = express();
  app.use(adapter.tokenGuard(await basePolicy(overrides)));
  app.use((_req, res) => void res.json({ ok: true }));
  return app;
}

describe('X-Forwarded-For while trustProxy is off', () => {
  it('warns once per process over HTTP, naming trustProxy CIDRs and hops as the fix, and still ignores the header', async () => {
    const { express: adapter } = await fresh();
    const app = await appWith(adapter);
    const admin = `Bearer ${await signToken({ scope: 'admin' })}`;
    await request(app).get('/health');
    expect(xffWarnings()).toEqual([]);
    // Behind a proxy the header names the real client; without trustProxy the socket address (loopback) is the client.
    const refused = await request(app).get('/admin/users').set('authorization', admin).set('x-forwarded-for', '10.1.2.3');
    expect([refused.status, refused.body.reason]).toEqual([403, 'ip.denied']);
    await request(app).get('/health').set('x-forwarded-for', '198.51.100.7');
    await request(await appWith(adapter))
      .get('/health')
      .set('x-forwarded-for', '198.51.100.8');
    expect(xffWarnings()).toHaveLength(1);
    const [message, options] = xffWarnings()[0] as [string, { type: string; code: string }];
    expect(options).toEqual({ type: 'TokenGuardWarning', code: 'TOKEN_GUARD_XFF_IGNORED' });
    expect(message).toContain("trustProxy: ['10.0.0.0/8']");
    expect(message).toContain('trustProxy: { hops: 1 }');
    expect(message).not.toMatch(/10\.1\.2\.3|198\.51\.100/);
  });

  it('warns through guard.evaluate too, where the policy leaves trustProxy out', async () => {
    const { core } = await fresh();
    const guard = core.createGuard(await basePolicy());
    const headers = { 'x-forwarded-for': '203.0.113.9' };
    await guard.evaluate({ method: 'GET', path: '/health', headers, remoteAddress: '10.0.0.2' });
    await guard.evaluate({ method: 'GET', path: '/health', headers, remoteAddress: '10.0.0.2' });
    expect(xffWarnings()).toHaveLength(1);
  });

  it('does not warn where the policy says trustProxy: false or an empty list (clients reach the app directly)', async () => {
    for (const trustProxy of [false, []] as const) {
      const { core, express: adapter } = await fresh();
      const guard = core.createGuard(await basePolicy({ trustProxy }));
      await guard.evaluate({ method: 'GET', path: '/health', headers: { 'x-forwarded-for': '203.0.113.9' }, remoteAddress: '10.0.0.2' });
      const res = await request(await appWith(adapter, { trustProxy }))
        .get('/health')
        .set('x-forwarded-for', '198.51.100.7');
      expect(res.status).toBe(200);
    }
    expect(xffWarnings()).toEqual([]);
  });

  it('does not warn when trustProxy lists the proxies or counts hops, nor for requests without the header or with an empty one', async () => {
    const { core, express: adapter } = await fresh();
    for (const trustProxy of [['127.0.0.0/8', '::1/128'], { hops: 1 }] as const) {
      const app = await appWith(adapter, { trustProxy });
      const res = await request(app).get('/health').set('x-forwarded-for', '198.51.100.7');
      expect(res.status).toBe(200);
    }
    const guard = core.createGuard(await basePolicy());
    await guard.evaluate({ method: 'GET', path: '/health', headers: {}, remoteAddress: '10.0.0.2' });
    await guard.evaluate({ method: 'GET', path: '/health', headers: { 'x-forwarded-for': '' }, remoteAddress: '10.0.0.2' });
    expect(xffWarnings()).toEqual([]);
  });
});
