// JWK Set endpoints on 127.0.0.1 standing in for an issuer (no outside network): one whose answer a test switches
// (keys, outages, bad bodies, a hang) or holds back, one that streams a set padded far past any size limit, and a
// URL nobody listens on. closeJwksServers (in an afterEach) closes every one a test started.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JWK } from 'jose';

/** The path startJwksServer serves the set on (its `url`). */
export const JWKS_PATH = '/.well-known/jwks.json';

/**
 * What the endpoint answers: the set (`jwks`), 503 with `{}` (`unavailable`), 500 with the set (`server-error`), a body
 * that is not JSON, JSON that is not a JWK Set, a redirect to itself, or nothing at all (`hang`).
 */
export type JwksAnswer = 'jwks' | 'unavailable' | 'server-error' | 'not-json' | 'not-a-jwk-set' | 'redirect' | 'hang';

/** A running JWK Set endpoint; change `keys` or `answer` at any time, they are read when a request is answered. */
export interface JwksServer {
  /** `http://127.0.0.1:<port>/.well-known/jwks.json` */
  url: string;
  keys: JWK[];
  answer: JwksAnswer;
  /** Every path requested, in order of arrival. */
  paths: string[];
  /** Requests for the JWK Set path. */
  jwksHits(): number;
  /** Holds the next answers until `release()`; resolves once a held request has arrived. */
  hold(): Promise<void>;
  release(): void;
  close(): Promise<void>;
}

const running: (() => Promise<void>)[] = [];

/** Listens on a free loopback port; returns the set's URL there and a close that is also run by closeJwksServers. */
async function listen(server: Server): Promise<{ url: string; close: () => Promise<void> }> {
  const close = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  running.push(close);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}${JWKS_PATH}`, close };
}

/** Closes every server this module started since the last call (call it in an afterEach). */
export async function closeJwksServers(): Promise<void> {
  await Promise.all(running.splice(0).map((close) => close()));
}

/**
 * Serves `keys` on JWKS_PATH (and, as the set too, on any path not named in `routes`), and the JSON of `routes` on
 * their paths; RFC 8414 metadata (`/.well-known/oauth-authorization-server…`) answers 404 unless a route names it.
 */
export async function startJwksServer(keys: JWK[], routes: Record<string, unknown> = {}): Promise<JwksServer> {
  let gate: Promise<void> | undefined;
  let open = () => {};
  let arrived = () => {};
  const json = (res: ServerResponse, status: number, body: string) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(body);
  };
  const respond = (path: string, res: ServerResponse) => {
    if (path in routes) return json(res, 200, JSON.stringify(routes[path]));
    if (path.startsWith('/.well-known/oauth-authorization-server')) return json(res, 404, '{"error":"not_found"}');
    switch (state.answer) {
      case 'jwks':
        return json(res, 200, JSON.stringify({ keys: state.keys }));
      case 'unavailable':
        return json(res, 503, '{}');
      case 'server-error':
        return json(res, 500, JSON.stringify({ keys: state.keys }));
      case 'not-json':
        return json(res, 200, '<html>Service Unavailable</html>');
      case 'not-a-jwk-set':
        return json(res, 200, JSON.stringify({ keys: 'rsa-1' }));
      case 'redirect':
        res.writeHead(302, { location: `${state.url}?moved` });
        return res.end();
      case 'hang':
        return; // never answers
    }
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '';
    state.paths.push(path);
    if (!gate) return respond(path, res);
    arrived();
    void gate.then(() => respond(path, res));
  });
  const { url, close } = await listen(server);
  const state: JwksServer = {
    url,
    keys,
    answer: 'jwks',
    paths: [],
    jwksHits: () => state.paths.filter((p) => p === JWKS_PATH).length,
    hold: () => {
      gate = new Promise<void>((resolve) => {
        open = resolve;
      });
      return new Promise<void>((resolve) => {
        arrived = resolve;
      });
    },
    release: () => {
      gate = undefined;
      open();
    },
    close,
  };
  return state;
}

/** A loopback URL nobody listens on (a server was there a moment ago). */
export async function closedPortUrl(): Promise<string> {
  const s = await startJwksServer([]);
  await s.close();
  running.splice(running.indexOf(s.close), 1);
  return s.url;
}

/** An endpoint streaming a JWK Set far over any size limit, and how far it got. */
export interface OversizedJwksServer {
  url: string;
  /** Bytes of padding written so far. */
  sent(): number;
  /** Whether the whole body was written (a reader that stops at its limit never lets it). */
  finished(): boolean;
}

/**
 * Answers a valid JWK Set holding `jwk`, padded with `bytes` of a JSON string (`{"keys":[…],"pad":"aaaa…"}`): read
 * whole it would verify. Written a MiB at a time, each as fast as the reader takes it, until the reader hangs up.
 */
export async function startOversizedJwksServer(jwk: JWK, bytes: number): Promise<OversizedJwksServer> {
  let sent = 0;
  let finished = false;
  const server = createServer((_req, res) => {
    void (async () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(`{"keys":[${JSON.stringify(jwk)}],"pad":"`);
      const chunk = Buffer.alloc(1024 * 1024, 'a');
      while (sent < bytes && !res.destroyed) {
        sent += chunk.length;
        if (!res.write(chunk)) await new Promise((resolve) => res.once('drain', resolve).once('close', resolve));
      }
      if (!res.destroyed) res.end('"}', () => (finished = true));
    })();
  });
  const { url } = await listen(server);
  return { url, sent: () => sent, finished: () => finished };
}
