// token-guard/otel against the OpenTelemetry SDK's in-memory exporters: a span per decision, the guard's
// metrics, and nothing that identifies a token or a person unless asked.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader, type DataPoint, type Histogram } from '@opentelemetry/sdk-metrics';
import { createGuard, MemoryStore, PolicyError, type GuardRequest, type TokenStore } from '../../src/index.js';
import { otel, type OtelOptions } from '../../src/observe/otel.js';
import { RedisStore } from '../../src/stores/redis.js';
import { deletePrefix, randomPrefix, redisClient, redisUp } from '../helpers/redis.js';
import { basePolicy, signToken, storeApiKey, testKeys, NOW, AUDIENCE, ISSUER } from '../helpers/tokens.js';

const req = (token: string | undefined, over: Partial<GuardRequest> = {}): GuardRequest => ({
  method: 'GET',
  path: '/orders/1',
  headers: token ? { authorization: `Bearer ${token}` } : {},
  remoteAddress: '127.0.0.1',
  now: NOW,
  ...over,
});

function sdk() {
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  /** Every data point of one metric, after a collection. */
  const points = async (name: string): Promise<DataPoint<unknown>[]> => {
    exporter.reset();
    await reader.forceFlush();
    const metrics = exporter.getMetrics().flatMap((r) => r.scopeMetrics.flatMap((s) => s.metrics));
    return metrics.filter((m) => m.descriptor.name === name).flatMap((m) => m.dataPoints as DataPoint<unknown>[]);
  };
  const sum = async (name: string, attrs: Record<string, unknown> = {}): Promise<number> =>
    (await points(name)).filter((p) => Object.entries(attrs).every(([k, v]) => p.attributes[k] === v)).reduce((n, p) => n + (p.value as number), 0);
  const options: OtelOptions = { tracerProvider, meterProvider };
  return { spans, points, sum, options, shutdown: () => Promise.all([tracerProvider.shutdown(), meterProvider.shutdown()]) };
}

let s: ReturnType<typeof sdk>;
beforeAll(() => {
  s = sdk();
});
afterEach(() => {
  s.spans.reset();
});
afterAll(async () => {
  await s.shutdown();
});

describe('otel(): spans', () => {
  it('records one span per decision with effect, reason, rule, mode, kind and cache hit', async () => {
    const guard = createGuard(await basePolicy({ telemetry: otel(s.options) }));
    const token = await signToken({ scope: 'orders:read', jti: 'tok-1' });
    await guard.evaluate(req(token));
    await guard.evaluate(req(token));
    await guard.evaluate(req(undefined));
    const spans = s.spans.getFinishedSpans();
    expect(spans.map((x) => x.name)).toEqual(['token-guard decision', 'token-guard decision', 'token-guard decision']);
    expect(spans[0]?.attributes).toMatchObject({
      'token_guard.effect': 'allow',
      'token_guard.reason': 'ok',
      'token_guard.rule': 'GET,HEAD /orders/**',
      'token_guard.mode': 'enforce',
      'token_guard.token.kind': 'jwt',
      'token_guard.token.id': 'tok-1',
      'token_guard.cache_hit': false,
    });
    expect(spans[1]?.attributes['token_guard.cache_hit']).toBe(true);
    expect(spans[2]?.attributes).toMatchObject({ 'token_guard.effect': 'deny', 'token_guard.reason': 'token.missing', 'token_guard.status': 401 });
    expect(spans[2]?.attributes).not.toHaveProperty('token_guard.cache_hit');
  });

  it('never puts the token or the subject on a span unless asked for the subject', async () => {
    const token = await signToken({ scope: 'orders:read', jti: 'tok-2' });
    await createGuard(await basePolicy({ telemetry: otel(s.options) })).evaluate(req(token));
    await createGuard(await basePolicy({ telemetry: otel({ ...s.options, subject: true, tokenId: false }) })).evaluate(req(token));
    const [plain, withSubject] = s.spans.getFinishedSpans();
    const text = JSON.stringify([plain?.attributes, withSubject?.attributes]);
    expect(text).not.toContain(token);
    expect(text).not.toContain(token.split('.')[2]);
    expect(plain?.attributes).not.toHaveProperty('token_guard.token.subject');
    expect(plain?.attributes).not.toHaveProperty('token_guard.token.issuer');
    // The subject comes with its issuer: two issuers' `alice` are two people.
    expect(withSubject?.attributes).toMatchObject({ 'token_guard.token.subject': 'alice', 'token_guard.token.issuer': ISSUER });
    expect(withSubject?.attributes).not.toHaveProperty('token_guard.token.id');
  });

  it('carries the request id and marks a store failure as an error span', async () => {
    const failing = new MemoryStore();
    failing.getApiKey = () => Promise.reject(new Error('connection refused')) as never;
    const guard = createGuard(await basePolicy({ store: failing, telemetry: otel(s.options) }));
    const { key } = await storeApiKey(new MemoryStore());
    const d = await guard.evaluate(req(key, { headers: { authorization: `Bearer ${key}`, 'x-request-id': 'req-42' } }));
    expect(d.reason).toBe('store.unavailable');
    const [span] = s.spans.getFinishedSpans();
    expect(span?.attributes).toMatchObject({ 'token_guard.request_id': 'req-42', 'token_guard.reason': 'store.unavailable' });
    expect(span?.status).toMatchObject({ code: 2, message: 'Error: connection refused' });
  });

  it('spans a requireScopes decision too', async () => {
    const guard = createGuard(await basePolicy({ telemetry: otel(s.options) }));
    const token = await signToken({ scope: 'orders:read' });
    const d = await guard.evaluate(req(token));
    guard.authorize({ token: d.token, decision: d }, ['orders:admin'], req(token));
    const spans = s.spans.getFinishedSpans();
    expect(spans.map((x) => [x.attributes['token_guard.source'], x.attributes['token_guard.reason']])).toEqual([
      ['guard', 'ok'],
      ['requireScopes', 'scope.insufficient'],
    ]);
  });

  it('a spanAttributes function that throws costs its own attributes only: the span and the metrics are still recorded', async () => {
    const m = sdk();
    const guard = createGuard(
      await basePolicy({
        telemetry: otel({ ...m.options, spanAttributes: (e) => ({ 'app.subject_length': (e.subject as string).length }) }),
      }),
    );
    const ok = await signToken({ scope: 'orders:read' });
    for (const token of [undefined, undefined, ok]) await guard.evaluate(req(token));
    const spans = m.spans.getFinishedSpans();
    expect(spans.map((x) => [x.attributes['token_guard.reason'], x.attributes['token_guard.span_attributes_failed'], x.attributes['app.subject_length']])).toEqual([
      ['token.missing', true, undefined],
      ['token.missing', true, undefined],
      ['ok', undefined, expect.any(Number)],
    ]);
    expect(await m.sum('token_guard.decisions', { 'token_guard.reason': 'token.missing' })).toBe(2);
    expect(await m.sum('token_guard.decisions')).toBe(3);
    await m.shutdown();
  });

  it('spans: false records metrics only', async () => {
    const m = sdk();
    await createGuard(await basePolicy({ telemetry: otel({ ...m.options, spans: false }) })).evaluate(req(undefined));
    expect(m.spans.getFinishedSpans()).toEqual([]);
    expect(await m.sum('token_guard.decisions')).toBe(1);
    await m.shutdown();
  });
});

describe('otel(): metrics', () => {
  it('counts decisions by effect, reason and rule, and times them', async () => {
    const m = sdk();
    const guard = createGuard(await basePolicy({ telemetry: otel(m.options) }));
    const ok = await signToken({ scope: 'orders:read' });
    const weak = await signToken({ scope: 'orders:list' });
    await guard.evaluate(req(ok));
    await guard.evaluate(req(ok));
    await guard.evaluate(req(weak));
    await guard.evaluate(req(undefined));
    expect(await m.sum('token_guard.decisions', { 'token_guard.effect': 'allow', 'token_guard.rule': 'GET,HEAD /orders/**' })).toBe(2);
    expect(await m.sum('token_guard.decisions', { 'token_guard.reason': 'scope.insufficient', 'token_guard.token.kind': 'jwt' })).toBe(1);
    expect(await m.sum('token_guard.decisions', { 'token_guard.reason': 'token.missing' })).toBe(1);
    const durations = await m.points('token_guard.decision.duration');
    expect(durations.reduce((n, p) => n + (p.value as Histogram).count, 0)).toBe(4);
    // Two JWT decisions for `ok` (a miss, then a hit) and one for `weak` (a miss).
    expect([await m.sum('token_guard.token_cache.hits'), await m.sum('token_guard.token_cache.misses')]).toEqual([1, 2]);
    await m.shutdown();
  });

  it('times store calls by method and counts their failures', async () => {
    const m = sdk();
    const store = new MemoryStore();
    const { key } = await storeApiKey(store);
    const guard = createGuard(await basePolicy({ store, telemetry: otel(m.options) }));
    expect((await guard.evaluate(req(key))).reason).toBe('ok');
    const calls = await m.points('token_guard.store.duration');
    expect(calls.find((p) => p.attributes['token_guard.store.method'] === 'getApiKey')?.value).toMatchObject({ count: 1 });
    expect(await m.sum('token_guard.store.failures')).toBe(0);

    const failing = new MemoryStore();
    failing.getApiKey = () => {
      throw new Error('down');
    };
    const broken = createGuard(await basePolicy({ store: failing, telemetry: otel(m.options) }));
    expect((await broken.evaluate(req(key))).status).toBe(503);
    expect(await m.sum('token_guard.store.failures', { 'token_guard.store.method': 'getApiKey' })).toBe(1);
    await m.shutdown();
  });

  it('reads near-cache counters from a store with stats() (as RedisStore has)', async () => {
    const m = sdk();
    const store = Object.assign(new MemoryStore(), { stats: () => ({ nearCacheHits: 7, nearCacheMisses: 3, invalidations: 2 }) }) as TokenStore;
    createGuard(await basePolicy({ store, telemetry: otel(m.options) }));
    expect(await m.sum('token_guard.store.near_cache.hits')).toBe(7);
    expect(await m.sum('token_guard.store.near_cache.misses')).toBe(3);
    expect(await m.sum('token_guard.store.near_cache.invalidations')).toBe(2);
    await m.shutdown();
  });
});

describe('otel(): JWKS fetches', () => {
  let server: Server;
  let base: string;
  beforeAll(async () => {
    const k = await testKeys();
    server = createServer((request, response) => {
      if (request.url === '/jwks.json') response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [k.rsaPublicJwk] }));
      else response.writeHead(500).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('counts a JWKS load, and a failed one', async () => {
    const m = sdk();
    const jwt = (jwksUri: string) => ({ issuer: ISSUER, audience: AUDIENCE, algorithms: ['RS256' as const], jwksUri });
    const token = await signToken({ scope: 'orders:read' });
    const good = createGuard(await basePolicy({ jwt: jwt(`${base}/jwks.json`), telemetry: otel(m.options) }));
    expect((await good.evaluate(req(token))).reason).toBe('ok');
    expect([await m.sum('token_guard.jwks.fetches'), await m.sum('token_guard.jwks.failures')]).toEqual([1, 0]);
    const bad = createGuard(await basePolicy({ jwt: jwt(`${base}/broken`), telemetry: otel(m.options) }));
    expect((await bad.evaluate(req(token))).effect).not.toBe('allow');
    expect([await m.sum('token_guard.jwks.fetches'), await m.sum('token_guard.jwks.failures')]).toEqual([2, 1]);
    await m.shutdown();
  });
});

describe('telemetry option', () => {
  it('refuses something that is not a telemetry sink at start-up', async () => {
    expect(() => createGuard({ jwt: { issuer: ISSUER, audience: AUDIENCE, algorithms: ['RS256'], secret: 'x'.repeat(32) }, telemetry: {} as never })).toThrow(PolicyError);
  });

  it('refuses bad otel() options with a coded usage error', () => {
    for (const bad of [
      () => otel(null as never),
      () => otel('spans' as never),
      () => otel({ spanAttributes: 'app' as never }),
      () => otel({ spanAttributes: (async () => ({})) as never }),
    ]) {
      expect(bad).toThrow(TypeError);
      expect(bad).toThrow(expect.objectContaining({ code: 'usage.invalid_argument' }));
    }
  });

  it('never changes a decision when the sink throws', async () => {
    const guard = createGuard(
      await basePolicy({
        telemetry: {
          decision: () => {
            throw new Error('sink down');
          },
          storeCall: () => {
            throw new Error('sink down');
          },
        },
      }),
    );
    const store = guard.store as MemoryStore;
    const { key } = await storeApiKey(store);
    expect((await guard.evaluate(req(key))).reason).toBe('ok');
  });
});

describe.skipIf(!redisUp)('otel(): RedisStore near-cache', () => {
  it('reports the near-cache invalidations another instance causes', async () => {
    const m = sdk();
    const prefix = randomPrefix('otel');
    const clients = [redisClient(), redisClient(), redisClient()];
    const [client, subscriber, other] = clients as [ReturnType<typeof redisClient>, ReturnType<typeof redisClient>, ReturnType<typeof redisClient>];
    const watched = new RedisStore({ client, subscriber, prefix });
    const peer = new RedisStore({ client: other, prefix });
    try {
      const guard = createGuard(await basePolicy({ store: watched, telemetry: otel(m.options) }));
      await vi.waitFor(() => expect(watched.stats().nearCacheEnabled).toBe(true), { timeout: 10_000, interval: 5 });
      const token = await signToken({ scope: 'orders:read', jti: 'tok-redis' });
      expect((await guard.evaluate(req(token))).reason).toBe('ok');
      await peer.revoke('tok-redis', { now: NOW.getTime(), expiresAt: NOW.getTime() + 60_000 });
      await vi.waitFor(async () => expect(await m.sum('token_guard.store.near_cache.invalidations')).toBeGreaterThanOrEqual(1), { timeout: 10_000, interval: 20 });
      expect((await guard.evaluate(req(token))).reason).toBe('token.revoked');
      expect(await m.sum('token_guard.store.near_cache.misses')).toBeGreaterThanOrEqual(1);
    } finally {
      await watched.close();
      await peer.close();
      await deletePrefix(client, prefix);
      for (const c of clients) c.disconnect();
      await m.shutdown();
    }
  });
});
