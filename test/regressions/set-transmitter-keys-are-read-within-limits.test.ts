// Regression: a SET receiver given `jwksUri` fetched the transmitter's keys with jose's remote key set, which reads a
// body whole and takes any number of keys, so that key server (or anyone on its path) could make every receiver read
// hundreds of megabytes. The set is now fetched as a policy's `jwt.jwksUri` is, within the `jwt.jwks` default limits
// (256 KiB, abandoned mid-read; 100 keys; no redirects): a set that cannot be had answers 503, and the transmitter
// retries, rather than 400 (which would drop the SET) or a read without end.
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryStore } from '../../src/index.js';
import { createSetReceiver } from '../../src/receivers/set.js';
import { closeJwksServers, startJwksServer, startOversizedJwksServer } from '../helpers/jwks-server.js';
import { CT, IDP, idpKey, NOW, RECEIVER, securityEvent } from '../receivers/set-fixtures.js';

const BODY_BYTES = 64 * 1024 * 1024;
afterEach(closeJwksServers);

const receiverOn = (jwksUri: string) => createSetReceiver({ store: new MemoryStore(), issuer: IDP, audience: RECEIVER, jwksUri, clock: () => NOW });

describe('regression: the transmitter’s JWK Set is read within limits', () => {
  it('a body over the size limit is abandoned mid-read: 503, the transmitter retries', async () => {
    const { jwk } = await idpKey();
    const server = await startOversizedJwksServer(jwk, BODY_BYTES);
    const r = await receiverOn(server.url).receive({ body: await securityEvent(), contentType: CT });
    expect(r.status).toBe(503);
    expect(server.finished()).toBe(false);
    expect(server.sent()).toBeLessThan(16 * 1024 * 1024);
  });

  it('a set of more keys than the limit is refused (503); one within it verifies', async () => {
    const { jwk } = await idpKey();
    const many = await startJwksServer([jwk, ...Array.from({ length: 100 }, (_, i) => ({ ...jwk, kid: `other-${i}` }))]);
    expect((await receiverOn(many.url).receive({ body: await securityEvent(), contentType: CT })).status).toBe(503);
    const fine = await startJwksServer([jwk]);
    expect((await receiverOn(fine.url).receive({ body: await securityEvent(), contentType: CT })).status).toBe(202);
  });
});
