// Regression: a SET receiver given `jwksUri` fetched the transmitter's keys with jose's remote key set, which reads a
// body whole and takes any number of keys, so that key server (or anyone on its path) could make every receiver read
// hundreds of megabytes. The set is now fetched as a policy's `jwt.jwksUri` is, within the `jwt.jwks` default limits
// (256 KiB, abandoned mid-read; 100 keys; no redirects): a set that cannot be had answers 503, and the transmitter
// retries, rather than 400 (which would drop the SET) or a read without end.
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryStore } from '../../src/index.js';
import { createSetReceiver } from '../../src/receivers/set.js';
import { CT, IDP, idpKey, NOW, RECEIVER, securityEvent } from '../receivers/set-fixtures.js';

const BODY_BYTES = 64 * 1024 * 1024;
const servers: ReturnType<typeof createServer>[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
});

async function keyServer(handler: (res: ServerResponse) => void | Promise<void>): Promise<string> {
  const server = createServer((_req, res) => void handler(res));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
}

const receiverOn = (jwksUri: string) => createSetReceiver({ store: new MemoryStore(), issuer: IDP, audience: RECEIVER, jwksUri, clock: () => NOW });

describe('regression: the transmitter’s JWK Set is read within limits', () => {
  it('a body over the size limit is abandoned mid-read: 503, the transmitter retries', async () => {
    const { jwk } = await idpKey();
    let sent = 0;
    let finished = false;
    const uri = await keyServer(async (res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(`{"keys":[${JSON.stringify(jwk)}],"pad":"`);
      const chunk = Buffer.alloc(1024 * 1024, 'a');
      while (sent < BODY_BYTES && !res.destroyed) {
        sent += chunk.length;
        if (!res.write(chunk)) await new Promise((resolve) => res.once('drain', resolve).once('close', resolve));
      }
      if (!res.destroyed) res.end('"}', () => (finished = true));
    });
    const r = await receiverOn(uri).receive({ body: await securityEvent(), contentType: CT });
    expect(r.status).toBe(503);
    expect(finished).toBe(false);
    expect(sent).toBeLessThan(16 * 1024 * 1024);
  });

  it('a set of more keys than the limit is refused (503); one within it verifies', async () => {
    const { jwk } = await idpKey();
    const many = await keyServer((res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [jwk, ...Array.from({ length: 100 }, (_, i) => ({ ...jwk, kid: `other-${i}` }))] }));
    });
    expect((await receiverOn(many).receive({ body: await securityEvent(), contentType: CT })).status).toBe(503);
    const fine = await keyServer((res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    expect((await receiverOn(fine).receive({ body: await securityEvent(), contentType: CT })).status).toBe(202);
  });
});
