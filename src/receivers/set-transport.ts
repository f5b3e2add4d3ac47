// The ready-to-mount transports of a SET receiver: a Node `(req, res)` handler and a fetch handler. Both only
// read the body (size-capped and time-capped) and hand it to `receive`; they are apart so the receiver's logic reads on its own.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BODY_CONSUMED, errorResponse, TIMED_OUT, TOO_LARGE, UNAVAILABLE } from './set-responses.js';
import type { SetReceiver, SetResponse } from './set-types.js';

/** How much body a handler reads, and for how long: the receiver's `maxBodyBytes` and `bodyTimeout`. */
export interface BodyLimits {
  maxBody: number;
  bodyTimeoutMs: number;
}

function send(res: ServerResponse, r: SetResponse, close = false): void {
  const headers = close ? { ...r.headers, Connection: 'close' } : r.headers;
  res.writeHead(r.status, headers);
  res.end(r.body);
}

/** The receiver's Node handler: reads at most `maxBody` bytes within `bodyTimeoutMs` (or what a body parser read) and answers with `receive`. */
export function createNodeHandler(receive: SetReceiver['receive'], { maxBody, bodyTimeoutMs }: BodyLimits): SetReceiver['node'] {
  return function node(req: IncomingMessage & { body?: unknown }, res: ServerResponse): void {
    if (req.method !== 'POST') {
      send(res, { status: 405, headers: { Allow: 'POST' }, body: '' });
      return;
    }
    const header = (name: string) => {
      const v = req.headers[name];
      return Array.isArray(v) ? v[0] : v;
    };
    const deliver = (body: string | Uint8Array) => {
      receive({ body, contentType: header('content-type'), authorization: header('authorization') }).then(
        (r) => send(res, r),
        () => send(res, UNAVAILABLE()),
      );
    };
    // A body parser got there first (express.text({ type: 'application/secevent+jwt' })): use what it read.
    if (typeof req.body === 'string' || req.body instanceof Uint8Array) {
      deliver(req.body);
      return;
    }
    // A parser that read the stream but kept what it read elsewhere (Fastify's request.body, a JSON object): no
    // 'end' is coming, so waiting for one would leave the transmitter hanging.
    if (req.readableEnded) {
      send(res, BODY_CONSUMED());
      return;
    }
    const declared = Number(header('content-length'));
    if (Number.isFinite(declared) && declared > maxBody) {
      // Not read: answered at once, and the connection closed so the rest of the body is never taken in.
      send(res, TOO_LARGE(), true);
      res.once('finish', () => req.destroy());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    // Answered and closed, unread: the rest of the body is never taken in.
    const refuse = (r: SetResponse) => {
      send(res, r, true);
      res.once('finish', () => req.destroy());
    };
    // Before the signature is checked anyone may connect: a body trickled a byte at a time would otherwise hold the
    // socket and up to maxBody of memory until Node's own requestTimeout (300 s by default).
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      refuse(TIMED_OUT());
    }, bodyTimeoutMs);
    const finish = () => {
      done = true;
      clearTimeout(timer);
    };
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > maxBody) {
        finish();
        refuse(TOO_LARGE());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (done) return;
      finish();
      deliver(Buffer.concat(chunks));
    });
    req.on('error', finish);
    // A request destroyed with no error (a framework's own timeout, say) emits only 'close', which always comes.
    req.on('close', finish);
  };
}

/** The receiver's fetch handler: reads at most `maxBody` bytes of the request within `bodyTimeoutMs` and answers with `receive`. */
export function createFetchHandler(receive: SetReceiver['receive'], { maxBody, bodyTimeoutMs }: BodyLimits): SetReceiver['fetch'] {
  return async function fetchHandler(request: Request): Promise<Response> {
    const toResponse = (r: SetResponse) => new Response(r.body === '' ? null : r.body, { status: r.status, headers: r.headers });
    if (request.method !== 'POST') return toResponse({ status: 405, headers: { Allow: 'POST' }, body: '' });
    // Read before (request.text() in a middleware): its stream is locked, and getReader would throw.
    if (request.bodyUsed) return toResponse(BODY_CONSUMED());
    const declared = Number(request.headers.get('content-length'));
    if (Number.isFinite(declared) && declared > maxBody) {
      await request.body?.cancel().catch(() => undefined);
      return toResponse(TOO_LARGE());
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    if (request.body) {
      const reader = request.body.getReader();
      // One deadline for the whole body. Cancelling settles a pending read() at once (done), whatever the peer does;
      // racing each read() against a timeout promise instead would pile one reaction per chunk on that promise.
      let expired = false;
      const timer = setTimeout(() => {
        expired = true;
        // Not awaited: the stream's source belongs to the peer that is stalling, and the answer must not wait on it.
        reader.cancel().catch(() => undefined);
      }, bodyTimeoutMs);
      try {
        for (;;) {
          let step: ReadableStreamReadResult<Uint8Array>;
          try {
            step = await reader.read();
          } catch {
            return toResponse(expired ? TIMED_OUT() : errorResponse('invalid_request', 'body could not be read'));
          }
          if (expired) return toResponse(TIMED_OUT());
          if (step.done) break;
          size += step.value.byteLength;
          if (size > maxBody) {
            await reader.cancel().catch(() => undefined);
            return toResponse(TOO_LARGE());
          }
          chunks.push(step.value);
        }
      } finally {
        clearTimeout(timer);
      }
    }
    const r = await receive({
      body: Buffer.concat(chunks),
      contentType: request.headers.get('content-type') ?? undefined,
      authorization: request.headers.get('authorization') ?? undefined,
    });
    return toResponse(r);
  };
}
