// Regression (same class as the claims predicates and risk signals of bbf09e1): GuardTelemetry's `decision()` returns
// void, which an `async` sink satisfies, and the guard swallowed a throw from it but not a rejection. A sink whose
// backend was down (its send rejects) left an unhandled rejection on every request, and Node's default
// --unhandled-rejections=throw ended the process. otel's `spanAttributes` and the dashboard recorder's `clock` were
// called the same way. Now a promise they return is dropped with its rejection handled (otel marks the span
// `token_guard.span_attributes_failed`, the recorder counts nothing), and an `async` one is refused at creation.
import { describe, expect, it } from 'vitest';
import express from 'express';
import request from 'supertest';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { tokenGuard } from '../../src/adapters/express.js';
import { createGuard, MemoryStore, type DecisionEvent, type GuardTelemetry, type TokenGuardPolicy } from '../../src/index.js';
import { otel, type OtelOptions } from '../../src/observe/otel.js';
import { decisionRecorder, type DecisionRecorderOptions } from '../../src/observe/recorder.js';
import { afterRejectionsAreReported, collectUnhandledRejections } from '../helpers/unhandled.js';
import { basePolicy, NOW, signToken } from '../helpers/tokens.js';

const unhandled = collectUnhandledRejections();

async function app(overrides: Partial<TokenGuardPolicy>) {
  const a = express();
  a.use(tokenGuard(await basePolicy({ store: new MemoryStore(), ...overrides })));
  a.get('/orders/:id', (_req, res) => {
    res.json({ ok: true });
  });
  return a;
}

const backendDown = () => Promise.reject(new Error('metrics backend unreachable'));

describe('regression: telemetry and audit callbacks that answer with a rejected promise', () => {
  it('an async telemetry sink (it type-checks against GuardTelemetry) whose backend is down leaves no rejection unhandled, and the answers stand', async () => {
    const seen: string[] = [];
    const sink: GuardTelemetry = {
      async decision(event) {
        seen.push(event.reason);
        await backendDown();
      },
    };
    const server = await app({ telemetry: sink });
    const token = await signToken({ scope: 'orders:read' });
    const anonymous = await request(server).get('/orders/1');
    const allowed = await request(server).get('/orders/1').set('authorization', `Bearer ${token}`);
    expect([anonymous.status, anonymous.body.reason, allowed.status, allowed.body]).toEqual([401, 'token.missing', 200, { ok: true }]);
    expect(seen).toEqual(['token.missing', 'ok']);
    await afterRejectionsAreReported();
    expect(unhandled).toEqual([]);
  });

  it('an onDecision hook returning a thenable that is no native Promise (no .catch) leaves no rejection unhandled either', async () => {
    // A library's own promise type, or a wrapper with only `then` around a send already under way (and failing).
    const onDecision = (_e: DecisionEvent) => {
      const sent = backendDown();
      return { then: (resolve: () => void, reject: (e: unknown) => void) => sent.then(resolve, reject) };
    };
    const server = await app({ onDecision: onDecision as unknown as TokenGuardPolicy['onDecision'] });
    const res = await request(server).get('/orders/1');
    expect([res.status, res.body.reason]).toEqual([401, 'token.missing']);
    await afterRejectionsAreReported();
    expect(unhandled).toEqual([]);
  });
});

describe('regression: otel spanAttributes that answers with a promise', () => {
  function tracing() {
    const spans = new InMemorySpanExporter();
    const options: OtelOptions = { tracerProvider: new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }), metrics: false };
    return { spans, options };
  }

  it('refuses an async spanAttributes at otel() with a UsageError (a TypeError), as it does other bad options', () => {
    const { options } = tracing();
    const spanAttributes = (async (e: DecisionEvent) => ({ tenant: (e.subject as string).split('@')[1] })) as unknown as OtelOptions['spanAttributes'];
    expect(() => otel({ ...options, spanAttributes })).toThrow(TypeError);
    expect(() => otel({ ...options, spanAttributes })).toThrow(
      expect.objectContaining({ name: 'UsageError', code: 'usage.invalid_argument', message: expect.stringMatching(/^otel\(options\): spanAttributes must be synchronous/) }),
    );
  });

  it('a plain spanAttributes returning a rejected promise (an anonymous request has no subject) marks the span failed and leaves no rejection unhandled', async () => {
    const { spans, options } = tracing();
    const spanAttributes = ((e: DecisionEvent) => Promise.resolve().then(() => ({ tenant: (e.subject as string).split('@')[1] }))) as unknown as OtelOptions['spanAttributes'];
    const guard = createGuard(await basePolicy({ store: new MemoryStore(), telemetry: otel({ ...options, spanAttributes }) }));
    const d = await guard.evaluate({ method: 'GET', path: '/orders/1', headers: {}, remoteAddress: '203.0.113.9', now: NOW });
    expect([d.status, d.reason]).toEqual([401, 'token.missing']);
    const attributes = spans.getFinishedSpans().map((s) => s.attributes);
    expect(attributes).toEqual([expect.objectContaining({ 'token_guard.reason': 'token.missing', 'token_guard.span_attributes_failed': true })]);
    // The promise's own fields (none enumerable) were never taken as attributes.
    expect(Object.keys(attributes[0] ?? {}).filter((k) => !k.startsWith('token_guard.'))).toEqual([]);
    await afterRejectionsAreReported();
    expect(unhandled).toEqual([]);
  });
});

describe('regression: the dashboard recorder clock that answers with a promise', () => {
  const event = (): DecisionEvent => ({
    time: NOW,
    effect: 'deny',
    status: 401,
    reason: 'token.missing',
    reasons: ['token.missing'],
    mode: 'enforce',
    passed: false,
    method: 'GET',
    path: '/orders/1',
    source: 'guard',
    latencyUs: 1,
  });

  it('refuses an async clock at decisionRecorder() with a UsageError (a TypeError)', () => {
    const clock = (async () => NOW.getTime()) as unknown as DecisionRecorderOptions['clock'];
    expect(() => decisionRecorder({ clock })).toThrow(TypeError);
    expect(() => decisionRecorder({ clock })).toThrow(
      expect.objectContaining({ name: 'UsageError', code: 'usage.invalid_argument', message: expect.stringMatching(/^decisionRecorder: clock must be synchronous/) }),
    );
  });

  it('a plain clock returning a rejected promise counts nothing and leaves no rejection unhandled', async () => {
    const clock = (() => Promise.reject(new Error('time service down'))) as unknown as DecisionRecorderOptions['clock'];
    const recorder = decisionRecorder({ clock });
    recorder.onDecision(event());
    expect(recorder.snapshot().total).toEqual({ allow: 0, deny: 0, step_up: 0 });
    await afterRejectionsAreReported();
    expect(unhandled).toEqual([]);
  });
});
