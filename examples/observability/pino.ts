// Correlated audit with pino: pino-http gives each request an id and a logger (req.log); the guard's
// onDecision logs the decision on that logger, so it carries the same reqId as the request's own line.
import { createServer } from 'node:http';
import { pino } from 'pino';
import { pinoHttp } from 'pino-http';
import type { Request } from 'express';
import { ordersApp, listen } from './orders.js';

// pino-http logs request headers: redact the credential (token-guard's own events never carry it).
const logger = pino({ redact: ['req.headers.authorization', 'req.headers.cookie'] });

const { app, key, jwt } = await ordersApp(
  {
    onDecision: (event, req) => {
      // `req` is Express's request here: pino-http put `log` on it, bound to the request's id (event.requestId).
      (req as Request).log.info(
        { decision: { effect: event.effect, reason: event.reason, rule: event.rule, tokenId: event.tokenId, latencyUs: event.latencyUs } },
        `token-guard ${event.effect} ${event.reason}`,
      );
    },
  },
  (app) => {
    // Trust an incoming X-Request-Id (from your gateway), else number the requests.
    let n = 0;
    app.use(pinoHttp({ logger, quietReqLogger: true, genReqId: (req) => (req.headers['x-request-id'] as string | undefined) ?? `req-${++n}` }));
  },
);

const url = await listen(createServer(app), Number(process.env.PORT ?? 0));
console.log(`orders API with pino logs on ${url}\n`);
console.log(`curl -i ${url}/orders/42 -H "Authorization: Bearer ${jwt}" -H "X-Request-Id: demo-1"`);
console.log(`curl -i -X POST ${url}/orders -H "Authorization: Bearer ${key}"    # 403: this key may only read\n`);
