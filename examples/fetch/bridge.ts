// A tiny bridge from Node's http server to a fetch-style handler (Request → Response), no dependencies.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';

/** A web-standard handler that also gets the peer address, which a Request cannot carry. */
export type FetchHandler = (request: Request, info: { remoteAddress?: string | undefined }) => Promise<Response>;

function toRequest(req: IncomingMessage): Request {
  const headers = new Headers();
  // rawHeaders, not req.headers: Node keeps only the first of two Authorization headers there.
  for (let i = 0; i < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i] as string, req.rawHeaders[i + 1] as string);
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  // A fixed origin, never the Host header: a forged Host or a `//host/x` target must not move the path.
  return new Request(`http://localhost${req.url ?? '/'}`, {
    method: req.method ?? 'GET',
    headers,
    ...(hasBody && { body: Readable.toWeb(req) as ReadableStream, duplex: 'half' }),
  } as RequestInit);
}

/** Serves a fetch-style handler from `http.createServer`; anything that throws becomes a bare 500. */
export function toNodeListener(handler: FetchHandler): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    (async () => {
      const response = await handler(toRequest(req), { remoteAddress: req.socket.remoteAddress });
      res.statusCode = response.status;
      response.headers.forEach((value, name) => {
        res.setHeader(name, value);
      });
      res.end(Buffer.from(await response.arrayBuffer()));
    })().catch((err: unknown) => {
      console.error(err);
      if (!res.headersSent) res.statusCode = 500;
      res.end();
    });
  };
}
