// Bad input through every adapter: odd paths, huge or repeated headers. A clear refusal or a normal
// answer, never a crash, and the app keeps serving afterwards.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NOW } from '../helpers/tokens.js';
import { createWorld, OFFICE, OUTSIDE, PROXY, type World } from '../scenarios/world.js';
import {
  expressHarness,
  fastifyInjectHarness,
  fastifyListenHarness,
  fetchHarness,
  koaHarness,
  type Harness,
  type HarnessFactory,
  type WireResponse,
} from '../scenarios/harness.js';

// Who answers what, when the guard is not the first to look: Node's HTTP parser refuses a request head
// over 16 KiB with 431 before any app code; Fastify's router refuses a target it cannot percent-decode
// with its own 400 FST_ERR_BAD_URL before onRequest hooks run. Both are refusals, just not ours.
const TRANSPORTS: { name: string; factory: HarnessFactory; nodeParser: boolean; fastifyRouter: boolean }[] = [
  { name: 'Express', factory: expressHarness, nodeParser: true, fastifyRouter: false },
  { name: 'Koa', factory: koaHarness, nodeParser: true, fastifyRouter: false },
  { name: 'Fastify (inject)', factory: fastifyInjectHarness, nodeParser: false, fastifyRouter: true },
  { name: 'Fastify (listening server)', factory: fastifyListenHarness, nodeParser: true, fastifyRouter: true },
  { name: 'fetch', factory: fetchHarness, nodeParser: false, fastifyRouter: false },
];

function reasonOf(res: WireResponse): unknown {
  return res.headers['content-type'] === 'application/problem+json' ? (JSON.parse(res.body) as { reason: unknown }).reason : undefined;
}

describe.each(TRANSPORTS)('$name with bad input', ({ factory, nodeParser, fastifyRouter }) => {
  let world: World;
  let harness: Harness;
  const get = (path: string, headers: Record<string, string | string[]> = {}, peer: string | undefined = OUTSIDE) => {
    world.peer = peer;
    return harness.send('main', { method: 'GET', path, headers });
  };

  beforeAll(async () => {
    world = await createWorld();
    world.now = NOW;
    harness = await factory(world);
  });
  afterAll(async () => {
    await harness?.close();
    // The app still answers a plain request after all of the below.
  });

  async function stillServing() {
    const res = await get('/health');
    expect([res.status, res.body]).toEqual([200, JSON.stringify({ reason: 'ok' })]);
  }

  it.each(['/orders/%zz', '/orders/%ff', '/orders/%', '/orders/%c0%af'])('refuses the malformed escape in %s', async (path) => {
    const res = await get(path, { authorization: `Bearer ${world.fixtures.read}` });
    expect(res.status).toBe(400);
    if (fastifyRouter) expect(JSON.parse(res.body)).toMatchObject({ code: 'FST_ERR_BAD_URL' });
    else expect(reasonOf(res)).toBe('request.malformed');
    await stillServing();
  });

  it('refuses a path longer than the guard reads (8 KiB)', async () => {
    const res = await get(`/orders/${'a'.repeat(9000)}`, { authorization: `Bearer ${world.fixtures.read}` });
    expect([res.status, reasonOf(res)]).toEqual([400, 'request.malformed']);
    await stillServing();
  });

  it('refuses a path over 16 KiB (Node answers 431 where it parses the request)', async () => {
    const res = await get(`/orders/${'a'.repeat(20_000)}`);
    if (nodeParser) expect(res.status).toBe(431);
    else expect([res.status, reasonOf(res)]).toEqual([400, 'request.malformed']);
    await stillServing();
  });

  it('refuses a 20 KiB Authorization header', async () => {
    const res = await get('/orders/1', { authorization: `Bearer ${'a'.repeat(20_000)}` });
    if (nodeParser) expect(res.status).toBe(431);
    else expect([res.status, reasonOf(res)]).toEqual([401, 'token.malformed']);
    await stillServing();
  });

  it('refuses fifty Authorization headers as malformed', async () => {
    // Short credentials: fifty real JWTs would pass 16 KiB and meet Node's 431 first.
    const res = await get('/orders/1', { authorization: Array.from({ length: 50 }, (_, i) => `Bearer t${i}`) });
    expect([res.status, reasonOf(res)]).toEqual([400, 'request.malformed']);
  });

  it('walks a hundred X-Forwarded-For headers from a trusted proxy to the client', async () => {
    const res = await get('/admin/users', { authorization: `Bearer ${world.fixtures.admin}`, 'x-forwarded-for': Array.from({ length: 100 }, () => OFFICE) }, PROXY);
    expect([res.status, res.body]).toEqual([200, JSON.stringify({ reason: 'ok' })]);
  });

  it('treats an X-Forwarded-For full of junk as an unknown client', async () => {
    const res = await get('/admin/users', { authorization: `Bearer ${world.fixtures.admin}`, 'x-forwarded-for': `${'x'.repeat(4000)}, ::::, 999.1.1.1` }, PROXY);
    expect([res.status, reasonOf(res)]).toEqual([403, 'ip.unknown']);
  });

  it('answers normally among two hundred unrelated headers', async () => {
    const headers: Record<string, string> = { authorization: `Bearer ${world.fixtures.read}` };
    for (let i = 0; i < 200; i++) headers[`x-noise-${i}`] = 'v'.repeat(20);
    const res = await get('/orders/1', headers);
    expect([res.status, res.body]).toEqual([200, JSON.stringify({ reason: 'ok' })]);
  });

  it('refuses an Authorization header of control characters and spaces without crashing', async () => {
    const res = await get('/orders/1', { authorization: 'Bearer    \t  ' });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(['request.malformed', 'token.missing']).toContain(reasonOf(res));
    await stillServing();
  });
});
