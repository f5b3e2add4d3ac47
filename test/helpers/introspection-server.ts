// An authorization server's introspection endpoint (RFC 7662) on 127.0.0.1 for a test file: it answers each token
// found in `answers` as active (with the test's claims, `orders:read`, issued a minute before NOW and valid an hour),
// any other token as inactive. Started before the file's tests and closed after them.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll } from 'vitest';
import { NOW } from './tokens.js';

const NOW_S = Math.floor(NOW.getTime() / 1000);

/** The running endpoint: `endpoint` is its URL once the file's tests run. */
export interface IntrospectionServer {
  readonly endpoint: string;
}

/** Serves `answers` (raw token → claims) from an introspection endpoint for the tests of the calling file. */
export function useIntrospectionServer(answers: Readonly<Record<string, object>>): IntrospectionServer {
  let as: Server;
  const server = { endpoint: '' };
  beforeAll(async () => {
    as = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const a = answers[new URLSearchParams(Buffer.concat(chunks).toString()).get('token') ?? ''];
        res.writeHead(200, { 'content-type': 'application/json' });
        // JSON.stringify writes a lone surrogate as an escape (\udfff), which JSON.parse reads back as it was.
        res.end(JSON.stringify(a ? { active: true, ...a, scope: 'orders:read', iat: NOW_S - 60, exp: NOW_S + 3600 } : { active: false }));
      });
    });
    await new Promise<void>((r) => as.listen(0, '127.0.0.1', r));
    server.endpoint = `http://127.0.0.1:${(as.address() as AddressInfo).port}/introspect`;
  });
  afterAll(async () => {
    as.closeAllConnections();
    await new Promise<void>((r) => as.close(() => r()));
  });
  return server;
}
