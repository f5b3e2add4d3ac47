// Telemetry hooks the engine calls (storeCall, jwksFetch, attach), the guard clock and the fetch adapter's `info`: a
// synchronous callback that returns a promise had its rejection left unhandled, which ends a Node process by default.
import { afterEach, describe, expect, it } from 'vitest';
import { createGuard, MemoryStore, PolicyError, type GuardTelemetry, type TokenGuardPolicy } from '../../src/index.js';
import { guardFetch } from '../../src/adapters/fetch.js';
import { afterRejectionsAreReported, collectUnhandledRejections } from '../helpers/unhandled.js';
import { closeJwksServers, startJwksServer } from '../helpers/jwks-server.js';
import { AUDIENCE, basePolicy, ISSUER, NOW, signToken, testKeys } from '../helpers/tokens.js';

const unhandled = collectUnhandledRejections();
afterEach(async () => {
  await closeJwksServers();
});
const backendDown = () => Promise.reject(new Error('metrics backend unreachable'));

describe('telemetry hooks the engine calls outside audit.ts', () => {
  it('an async storeCall, jwksFetch and attach leave no rejection unhandled, and the answers stand', async () => {
    const k = await testKeys();
    const jwks = await startJwksServer([k.rsaPublicJwk]);
    const sink: GuardTelemetry = {
      decision() {},
      async storeCall() {
        await backendDown();
      },
      async jwksFetch() {
        await backendDown();
      },
      async attach() {
        await backendDown();
      },
    };
    const guard = createGuard({
      jwt: { issuer: ISSUER, audience: AUDIENCE, algorithms: ['RS256'], jwksUri: jwks.url },
      store: new MemoryStore(),
      unmatched: 'authenticate',
      telemetry: sink,
    });
    const d = await guard.evaluate({ method: 'GET', path: '/x', headers: { authorization: `Bearer ${await signToken({})}` }, remoteAddress: '203.0.113.9', now: NOW });
    expect([d.status, d.reason]).toEqual([200, 'ok']);
    await afterRejectionsAreReported();
    expect(unhandled).toEqual([]);
  });
});

describe('clocks', () => {
  it('the guard refuses an async clock at start-up (PolicyError naming clock)', async () => {
    const clock = (async () => NOW) as unknown as TokenGuardPolicy['clock'];
    expect(() => createGuard({ apiKeys: { prefix: 'tg_' }, store: new MemoryStore(), clock })).toThrow(PolicyError);
  });

  it('a guard clock returning a rejected promise: 503 (no valid time), the rejection handled', async () => {
    const clock = (() => Promise.reject(new Error('time service down'))) as unknown as TokenGuardPolicy['clock'];
    const guard = createGuard(await basePolicy({ store: new MemoryStore(), clock }));
    const d = await guard.evaluate({ method: 'GET', path: '/orders/1', headers: {}, remoteAddress: '203.0.113.9' });
    expect(d.status).toBe(503);
    await afterRejectionsAreReported();
    expect(unhandled).toEqual([]);
  });
});

describe('fetch adapter info', () => {
  it('refuses an async info at handler() and a plain info returning a promise per call, its rejection handled', async () => {
    const guard = guardFetch(await basePolicy({ store: new MemoryStore() }));
    const asyncInfo = (async () => ({ remoteAddress: '203.0.113.9' })) as never;
    expect(() => guard.handler(() => new Response('ok'), { info: asyncInfo })).toThrow(expect.objectContaining({ code: 'adapter.options_invalid' }));
    const promised = (() => Promise.reject(new Error('no socket'))) as never;
    const handler = guard.handler(() => new Response('ok'), { info: promised });
    await expect(handler(new Request('http://api.example/orders/1'))).rejects.toMatchObject({ code: 'adapter.options_invalid' });
    await afterRejectionsAreReported();
    expect(unhandled).toEqual([]);
  });
});
