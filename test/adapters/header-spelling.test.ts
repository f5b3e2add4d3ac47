// Authorization as clients actually spell it on the wire (any letter case), through the three Node adapters: one header
// is read whatever its spelling, and two are refused whatever theirs, never read as the first one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import express from 'express';
import Koa from 'koa';
import Fastify from 'fastify';
import { tokenGuard as expressGuard } from '../../src/adapters/express.js';
import { tokenGuard as koaGuard } from '../../src/adapters/koa.js';
import { tokenGuard as fastifyGuard } from '../../src/adapters/fastify.js';
import { basePolicy, signToken } from '../helpers/tokens.js';

/** Sends a request head exactly as written (header names keep their spelling) and reads the status and body. */
function rawGet(port: number, headerLines: string[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      data += chunk;
    });
    socket.on('error', reject);
    socket.on('end', () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0);
      resolve({ status, body: data.slice(data.indexOf('\r\n\r\n') + 4) });
    });
    socket.write(['GET /orders/1 HTTP/1.1', 'Host: 127.0.0.1', 'Connection: close', ...headerLines, '', ''].join('\r\n'));
  });
}

type Listening = { port: number; close: () => Promise<void> };

async function listen(listener: http.RequestListener): Promise<Listening> {
  const server = http.createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

const APPS: { name: string; start: () => Promise<Listening> }[] = [
  {
    name: 'Express',
    start: async () => {
      const app = express();
      app.use(expressGuard(await basePolicy()));
      app.get('/orders/:id', (req, res) => {
        res.json({ subject: req.auth?.token?.subject });
      });
      return listen(app);
    },
  },
  {
    name: 'Koa',
    start: async () => {
      const app = new Koa();
      app.use(koaGuard(await basePolicy()));
      app.use((ctx) => {
        ctx.body = { subject: ctx.state.auth?.token?.subject };
      });
      return listen(app.callback());
    },
  },
  {
    name: 'Fastify',
    start: async () => {
      const app = Fastify();
      await app.register(fastifyGuard, await basePolicy());
      app.get('/orders/:id', async (request) => ({ subject: request.auth?.token?.subject }));
      await app.listen({ port: 0, host: '127.0.0.1' });
      return { port: (app.server.address() as AddressInfo).port, close: () => app.close() };
    },
  },
];

describe.each(APPS)('$name reads Authorization whatever its spelling', ({ start }) => {
  let server: Listening;
  let token: string;
  beforeAll(async () => {
    server = await start();
    token = await signToken({ sub: 'alice', scope: 'orders:read' });
  });
  afterAll(() => server?.close());

  it.each(['Authorization', 'authorization', 'AUTHORIZATION', 'aUtHoRiZaTiOn'])('lets one %s header through', async (name) => {
    const res = await rawGet(server.port, [`${name}: Bearer ${token}`]);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ subject: 'alice' });
  });

  it.each([
    ['Authorization', 'authorization'],
    ['AUTHORIZATION', 'Authorization'],
    ['aUtHoRiZaTiOn', 'AUTHORIZATION'],
  ])('refuses %s and %s sent together as malformed, not as the first', async (first, second) => {
    const res = await rawGet(server.port, [`${first}: Bearer ${token}`, `${second}: Bearer other`]);
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toMatchObject({ reason: 'request.malformed' });
  });
});
