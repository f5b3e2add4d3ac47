// Correlated audit through real HTTP: each decision event carries the request's id, and onDecision gets the
// framework's request, so the app's own request logger (pino-http's req.log, Fastify's request.log) logs the
// decision with the same id as the request's other lines.
import { Writable } from 'node:stream';
import express from 'express';
import Fastify, { type FastifyRequest } from 'fastify';
import Koa, { type Context } from 'koa';
import { pino } from 'pino';
import { pinoHttp } from 'pino-http';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import type { DecisionEvent } from '../../src/index.js';
import { tokenGuard as expressGuard } from '../../src/adapters/express.js';
import { tokenGuard as fastifyGuard } from '../../src/adapters/fastify.js';
import { tokenGuard as koaGuard } from '../../src/adapters/koa.js';
import { guardFetch } from '../../src/adapters/fetch.js';
import { basePolicy, signToken } from '../helpers/tokens.js';

type Line = Record<string, unknown> & { msg?: string; reqId?: unknown; req?: { id?: unknown } };

/** A pino destination that keeps every line, parsed. */
function capture() {
  const lines: Line[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Line);
      cb();
    },
  });
  return { lines, stream };
}

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const TRACEPARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`;

describe('Express with pino-http', () => {
  it('logs the decision on req.log with the request id pino-http gave the request', async () => {
    const { lines, stream } = capture();
    const events: DecisionEvent[] = [];
    const app = express();
    // pino-http logs request headers: the app must redact Authorization itself (the guard's own events never hold it).
    app.use(
      pinoHttp({
        logger: pino({ redact: ['req.headers.authorization'] }, stream),
        genReqId: (req) => (req.headers['x-request-id'] as string | undefined) ?? 'generated-1',
        quietReqLogger: true,
      }),
    );
    app.use(
      expressGuard(
        await basePolicy({
          onDecision: (event, req) => {
            events.push(event);
            (req as express.Request).log.info({ decision: { effect: event.effect, reason: event.reason, rule: event.rule, tokenId: event.tokenId } }, 'token-guard decision');
          },
        }),
      ),
    );
    app.get('/orders/:id', (_req, res) => {
      res.json({ ok: true });
    });
    const token = await signToken({ scope: 'orders:read', jti: 'tok-1' });
    await request(app).get('/orders/1').set('Authorization', `Bearer ${token}`).set('X-Request-Id', 'abc-123').expect(200);
    await request(app).get('/orders/1').expect(401);
    expect(events.map((e) => e.requestId)).toEqual(['abc-123', 'generated-1']);
    const decisions = lines.filter((l) => l.msg === 'token-guard decision');
    const completions = lines.filter((l) => l.msg === 'request completed');
    expect(decisions.map((l) => l.reqId)).toEqual(['abc-123', 'generated-1']);
    expect(completions.map((l) => l.req?.id)).toEqual(['abc-123', 'generated-1']);
    expect(decisions[0]).toMatchObject({ decision: { effect: 'allow', reason: 'ok', tokenId: 'tok-1' } });
    expect(JSON.stringify(lines)).not.toContain(token);
  });
});

describe('Fastify with request.log', () => {
  it("logs the decision on request.log with Fastify's request id", async () => {
    const { lines, stream } = capture();
    const events: DecisionEvent[] = [];
    const app = Fastify({ logger: { stream } });
    await app.register(fastifyGuard, {
      ...(await basePolicy()),
      onDecision: (event, req) => {
        events.push(event);
        (req as FastifyRequest).log.info({ decision: { effect: event.effect, reason: event.reason } }, 'token-guard decision');
      },
    });
    app.get('/orders/:id', async () => ({ ok: true }));
    await app.ready();
    const token = await signToken({ scope: 'orders:read' });
    const res = await app.inject({ method: 'GET', url: '/orders/1', headers: { authorization: `Bearer ${token}` } });
    expect(res.statusCode).toBe(200);
    const decision = lines.find((l) => l.msg === 'token-guard decision');
    const completed = lines.find((l) => l.msg === 'request completed');
    expect(decision?.reqId).toBeTypeOf('string');
    expect(decision?.reqId).toBe(completed?.reqId);
    expect(events[0]?.requestId).toBe(decision?.reqId);
    await app.close();
  });
});

describe('Koa', () => {
  it('hands ctx to onDecision and reads the id pino-http put on ctx.req', async () => {
    const { lines, stream } = capture();
    const seen: { event: DecisionEvent; ctx: unknown }[] = [];
    const app = new Koa();
    const httpLogger = pinoHttp({ logger: pino(stream), quietReqLogger: true, genReqId: () => 'koa-req-7' });
    app.use((ctx, next) => {
      httpLogger(ctx.req, ctx.res);
      return next();
    });
    app.use(
      koaGuard(
        await basePolicy({
          onDecision: (event, ctx) => {
            seen.push({ event, ctx });
            (ctx as Context).req.log.info({ decision: { reason: event.reason } }, 'token-guard decision');
          },
        }),
      ),
    );
    app.use((ctx) => {
      ctx.body = { ok: true };
    });
    const server = app.callback();
    await request(server).get('/orders/1').expect(401);
    expect(seen[0]?.event.requestId).toBe('koa-req-7');
    expect((seen[0]?.ctx as Context | undefined)?.originalUrl).toBe('/orders/1');
    expect(lines.find((l) => l.msg === 'token-guard decision')).toMatchObject({ reqId: 'koa-req-7', decision: { reason: 'token.missing' } });
  });

  it('falls back to X-Request-Id, then to the trace id of traceparent, and ignores ids that could forge a log line', async () => {
    const events: DecisionEvent[] = [];
    const app = new Koa();
    app.use(koaGuard(await basePolicy({ onDecision: (event) => void events.push(event) })));
    const server = app.callback();
    await request(server).get('/orders/1').set('X-Request-Id', 'rid-1').set('traceparent', TRACEPARENT).expect(401);
    await request(server).get('/orders/1').set('traceparent', TRACEPARENT).expect(401);
    await request(server).get('/orders/1').set('X-Request-Id', 'evil "id" {}\t').set('traceparent', TRACEPARENT).expect(401);
    await request(server).get('/orders/1').set('X-Request-Id', 'x'.repeat(129)).expect(401);
    await request(server).get('/orders/1').set('traceparent', '00-00000000000000000000000000000000-00f067aa0ba902b7-01').expect(401);
    await request(server).get('/orders/1').expect(401);
    expect(events.map((e) => e.requestId)).toEqual(['rid-1', TRACE_ID, TRACE_ID, undefined, undefined, undefined]);
  });
});

describe('fetch', () => {
  it('hands the Request to onDecision', async () => {
    const seen: unknown[] = [];
    const guard = guardFetch(await basePolicy({ onDecision: (_event, req) => void seen.push(req) }));
    const req = new Request('http://localhost/orders/1', { headers: { 'x-request-id': 'f-1' } });
    const result = await guard(req);
    expect(result).toBeInstanceOf(Response);
    expect(seen).toEqual([req]);
  });
});
