// The SET receiver's body deadline (`bodyTimeout`): before the signature is checked anyone may connect, so a body
// trickled a byte at a time is answered 408 and cut off instead of holding a socket and maxBodyBytes of memory until
// Node's requestTimeout. Node handler over a raw socket (the client controls every byte), fetch handler on a stream.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import express from 'express';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Duration } from '../../src/index.js';
import { MemoryStore, UsageError } from '../../src/index.js';
import { createSetReceiver, type SetReceiver, type SetReceiverOptions } from '../../src/receivers/set.js';
import { CT, IDP, idpKey, NOW, RECEIVER, securityEvent } from './set-fixtures.js';

const TIMED_OUT = { err: 'invalid_request', description: 'body not received in time' };

async function receiverWith(extra: Partial<SetReceiverOptions> = {}): Promise<SetReceiver> {
  const { jwk } = await idpKey();
  return createSetReceiver({ store: new MemoryStore(), issuer: IDP, audience: RECEIVER, keys: [jwk], clock: () => NOW, ...extra });
}

beforeEach(() => {
  // Only the timers the handlers set: sockets, streams and promises run for real.
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
});
afterEach(() => {
  vi.useRealTimers();
});

interface Served {
  server: Server;
  port: number;
  /** The next request the server receives, once its first body bytes have been read. */
  nextRequest(): Promise<IncomingMessage>;
}

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

async function serve(handler: (req: IncomingMessage, res: import('node:http').ServerResponse) => void): Promise<Served> {
  const waiting: ((req: IncomingMessage) => void)[] = [];
  const server = createServer((req, res) => {
    handler(req, res);
    req.once('data', () => waiting.shift()?.(req));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return { server, port, nextRequest: () => new Promise((r) => waiting.push(r)) };
}

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** A chunked body decoded, or undefined while its last chunk has not arrived. */
function dechunk(rest: string): string | undefined {
  let body = '';
  for (;;) {
    const eol = rest.indexOf('\r\n');
    if (eol < 0) return undefined;
    const size = Number.parseInt(rest.slice(0, eol), 16);
    if (size === 0) return body;
    if (rest.length < eol + 2 + size + 2) return undefined;
    body += rest.slice(eol + 2, eol + 2 + size);
    rest = rest.slice(eol + 2 + size + 2);
  }
}

/** A client socket, the first response read off it, and its close. */
function client(port: number): { socket: Socket; response: Promise<RawResponse>; closed: Promise<void> } {
  const socket = connect(port, '127.0.0.1');
  let text = '';
  const response = new Promise<RawResponse>((resolve, reject) => {
    const parse = () => {
      const head = text.indexOf('\r\n\r\n');
      if (head < 0) return;
      const [statusLine = '', ...lines] = text.slice(0, head).split('\r\n');
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      const body = headers['transfer-encoding'] === 'chunked' ? dechunk(text.slice(head + 4)) : text.slice(head + 4);
      if (body === undefined || Buffer.byteLength(body) < Number(headers['content-length'] ?? 0)) return;
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body });
    };
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
      parse();
    });
    socket.on('close', () => reject(new Error(`closed before a whole response: ${JSON.stringify(text)}`)));
  });
  response.catch(() => undefined);
  const closed = new Promise<void>((r) => socket.on('close', () => r()));
  socket.on('error', () => undefined);
  return { socket, response, closed };
}

const head = (extra: string) => `POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${CT}\r\n${extra}\r\n`;

describe('SET receiver node handler: bodyTimeout', () => {
  it('answers 408 to a body still incomplete after 10 s, closes the connection and leaves no timer', async () => {
    const receiver = await receiverWith();
    const { port, nextRequest } = await serve(receiver.node);
    const set = await securityEvent();
    const arrived = nextRequest();
    const { socket, response, closed } = client(port);
    // A slow loris: the whole length declared, a few bytes sent.
    socket.write(`${head(`Content-Length: ${set.length}\r\n`)}${set.slice(0, 10)}`);
    await arrived;
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(9_999);
    socket.write(set.slice(10, 20));
    await vi.advanceTimersByTimeAsync(1);
    const res = await response;
    expect(res.status).toBe(408);
    expect(res.headers).toMatchObject({ connection: 'close', 'content-type': 'application/json', 'cache-control': 'no-store' });
    expect(JSON.parse(res.body)).toEqual(TIMED_OUT);
    await closed;
    expect(vi.getTimerCount()).toBe(0);
  });

  it('answers a body completed within the deadline as before (202), and clears its timer', async () => {
    const receiver = await receiverWith();
    const { port, nextRequest } = await serve(receiver.node);
    const set = await securityEvent();
    const arrived = nextRequest();
    const { socket, response } = client(port);
    socket.write(`${head(`Content-Length: ${set.length}\r\n`)}${set.slice(0, 40)}`);
    await arrived;
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(9_000);
    socket.write(set.slice(40));
    const res = await response;
    expect(res).toMatchObject({ status: 202, body: '' });
    expect(res.headers['connection']).not.toBe('close');
    expect(vi.getTimerCount()).toBe(0);
    // Well past the deadline: nothing more is written on the kept-alive connection.
    await vi.advanceTimersByTimeAsync(60_000);
    expect(socket.destroyed).toBe(false);
    socket.destroy();
  });

  it('clears the timer of a body over maxBodyBytes (413), of a client that goes away mid-body and of a request destroyed', async () => {
    const receiver = await receiverWith({ maxBodyBytes: 1024 });
    const { port, nextRequest } = await serve(receiver.node);

    // Chunked, so the size is only known while reading.
    let arrived = nextRequest();
    const big = client(port);
    big.socket.write(`${head('Transfer-Encoding: chunked\r\n')}64\r\n${'x'.repeat(100)}\r\n`);
    await arrived;
    expect(vi.getTimerCount()).toBe(1);
    big.socket.write(`7d0\r\n${'x'.repeat(2000)}\r\n`);
    expect((await big.response).status).toBe(413);
    await big.closed;
    expect(vi.getTimerCount()).toBe(0);

    arrived = nextRequest();
    const gone = client(port);
    gone.socket.write(`${head('Content-Length: 500\r\n')}${'x'.repeat(10)}`);
    const req = await arrived;
    expect(vi.getTimerCount()).toBe(1);
    const reqClosed = new Promise<void>((r) => req.once('close', () => r()));
    gone.socket.destroy();
    await reqClosed;
    expect(vi.getTimerCount()).toBe(0);

    // Destroyed with no error (a framework's own timeout, say): only 'close' comes.
    arrived = nextRequest();
    const cut = client(port);
    cut.socket.write(`${head('Content-Length: 500\r\n')}${'x'.repeat(10)}`);
    const cutReq = await arrived;
    expect(vi.getTimerCount()).toBe(1);
    const cutClosed = new Promise<void>((r) => cutReq.once('close', () => r()));
    cutReq.destroy();
    await cutClosed;
    expect(vi.getTimerCount()).toBe(0);
  });

  it('sets no timer when a body parser in front already read the body', async () => {
    const receiver = await receiverWith();
    let armed = -1;
    const app = express();
    app.post('/events', express.text({ type: CT }), (req, res) => {
      receiver.node(req, res);
      armed = vi.getTimerCount();
    });
    const server = createServer(app);
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const set = await securityEvent();
    const { socket, response } = client((server.address() as { port: number }).port);
    socket.write(`${head(`Content-Length: ${set.length}\r\n`)}${set}`);
    expect((await response).status).toBe(202);
    expect(armed).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    socket.destroy();
  });
});

/** A request whose body stream the test feeds; `cancelled` tells whether the handler cancelled it. */
function streamed(first: string) {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const state = { cancelled: false };
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
      c.enqueue(new TextEncoder().encode(first));
    },
    cancel() {
      state.cancelled = true;
    },
  });
  const request = new Request('https://api.example/events', { method: 'POST', headers: { 'content-type': CT }, body, duplex: 'half' } as RequestInit);
  return { request, controller, state };
}

describe('SET receiver fetch handler: bodyTimeout', () => {
  it('answers 408 to a body still incomplete after 10 s, cancels the stream and leaves no timer', async () => {
    const receiver = await receiverWith();
    const set = await securityEvent();
    const { request, state } = streamed(set.slice(0, 10));
    let settled = false;
    const pending = receiver.fetch(request).finally(() => {
      settled = true;
    });
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(9_999);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    const res = await pending;
    expect(res.status).toBe(408);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.json()).toEqual(TIMED_OUT);
    expect(state.cancelled).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('answers a body completed within the deadline as before (202), and clears its timer', async () => {
    const receiver = await receiverWith();
    const set = await securityEvent();
    const { request, controller } = streamed(set.slice(0, 40));
    const pending = receiver.fetch(request);
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(9_000);
    controller.enqueue(new TextEncoder().encode(set.slice(40)));
    controller.close();
    expect((await pending).status).toBe(202);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('clears the timer of a body over maxBodyBytes (413) and of a stream that fails (400)', async () => {
    const receiver = await receiverWith({ maxBodyBytes: 1024 });
    const big = streamed('x'.repeat(100));
    const tooLarge = receiver.fetch(big.request);
    expect(vi.getTimerCount()).toBe(1);
    big.controller.enqueue(new Uint8Array(2000));
    expect((await tooLarge).status).toBe(413);
    expect(vi.getTimerCount()).toBe(0);

    const broken = streamed('x');
    const failed = receiver.fetch(broken.request);
    expect(vi.getTimerCount()).toBe(1);
    broken.controller.error(new Error('connection reset'));
    const res = await failed;
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ err: 'invalid_request', description: 'body could not be read' });
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('SET receiver: the bodyTimeout option', () => {
  it('waits as long as a bodyTimeout given as a duration', async () => {
    const receiver = await receiverWith({ bodyTimeout: '2s' });
    const { request } = streamed('x');
    let settled = false;
    const pending = receiver.fetch(request).finally(() => {
      settled = true;
    });
    await vi.advanceTimersByTimeAsync(1_999);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect((await pending).status).toBe(408);
  });

  it('accepts durations and milliseconds, and refuses anything else at creation with a UsageError', async () => {
    for (const ok of ['30s', '250ms', 500, 2 ** 31 - 1] as Duration[]) await expect(receiverWith({ bodyTimeout: ok })).resolves.toBeDefined();
    const refused: [unknown, RegExp][] = [
      [0, /greater than zero/],
      ['0s', /greater than zero/],
      [-1, /expected a duration/],
      [Number.NaN, /expected a duration|Invalid input/],
      [Number.POSITIVE_INFINITY, /expected a duration|Invalid input/],
      [2 ** 31, /at most 2147483647 ms/],
      ['10 seconds', /expected a duration/],
      ['soon', /expected a duration/],
      [null, /expected a duration|Invalid input/],
      [{}, /expected a duration|Invalid input/],
    ];
    for (const [value, message] of refused) {
      const made = receiverWith({ bodyTimeout: value as Duration });
      await expect(made).rejects.toThrow(UsageError);
      await expect(made).rejects.toThrow(/^createSetReceiver: bodyTimeout: /);
      await expect(made).rejects.toThrow(message);
    }
  });
});
