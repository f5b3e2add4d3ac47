// Regression (issue 7 item 4, RFC 9110 §11.4): `credentials = auth-scheme [ 1*SP token68 ]`, and the guard takes
// exactly one SP. It used to split on any run of spaces or tabs and String#trim() the rest, so `Bearer<TAB>t`,
// `Bearer  t` and `Bearer t<NBSP>` were read as `Bearer t`, while a proxy or WAF in front may read them as no token,
// another scheme, or another token. A value two parsers disagree on is refused as 400 request.malformed.
// What reaches the guard depends on the transport: Node's HTTP parser and fetch's Headers strip OWS (SP, HTAB) around
// a field value (it is not part of the value, RFC 9110 §5.5) and Node refuses CR, LF, VT and FF itself; everything
// else arrives verbatim. Both are pinned here, through real sockets as well as guard.evaluate.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGuard, type Guard } from '../../src/index.js';
import { NOW, basePolicy, signToken } from '../helpers/tokens.js';
import { createWorld, type World } from '../scenarios/world.js';
import { expressApp, fastifyApp, fetchApp, koaApp, serve, supertestSend, type WireResponse } from '../scenarios/harness.js';

const reasonOf = (res: WireResponse): unknown =>
  res.headers['content-type'] === 'application/problem+json' ? (JSON.parse(res.body) as { reason: unknown }).reason : undefined;

/** Separators other than one SP, each of which some HTTP component reads as whitespace. */
const SEPARATORS: [string, string][] = [
  ['a tab', '\t'],
  ['two spaces', '  '],
  ['a space and a tab', ' \t'],
  ['a no-break space', '\u00a0'],
  ['an em space', '\u2003'],
  ['a vertical tab', '\u000b'],
  ['a form feed', '\f'],
  ['CR LF and a space (an obsolete line fold)', '\r\n '],
  ['a line feed', '\n'],
];

describe('regression: only a single SP separates the auth scheme from the token (guard.evaluate)', () => {
  let guard: Guard;
  let token: string;
  beforeAll(async () => {
    guard = createGuard(await basePolicy());
    token = await signToken({ scope: 'orders:read' });
  });
  const evaluate = (authorization: string, extra: Record<string, string> = {}) =>
    guard.evaluate({ method: 'GET', path: '/orders/1', headers: { authorization, ...extra }, remoteAddress: '203.0.113.9', now: NOW });

  it('allows the token after exactly one space', async () => {
    expect((await evaluate(`Bearer ${token}`)).reason).toBe('ok');
  });

  for (const [what, sep] of SEPARATORS) {
    it(`refuses ${what} between Bearer and the token as 400 request.malformed`, async () => {
      const d = await evaluate(`Bearer${sep}${token}`);
      expect([d.status, d.reason, d.headers['WWW-Authenticate']]).toEqual([400, 'request.malformed', expect.stringMatching(/^Bearer error="invalid_request"/)]);
    });

    it(`refuses ${what} between DPoP and the token as 400 request.malformed`, async () => {
      const d = await evaluate(`DPoP${sep}${token}`, { dpop: 'eyJhbGciOiJFUzI1NiJ9.e30.c2ln' });
      expect([d.status, d.reason]).toEqual([400, 'request.malformed']);
    });
  }

  it('refuses whitespace around the value, which no HTTP parser would have left there', async () => {
    for (const value of [
      ` Bearer ${token}`,
      `\tBearer ${token}`,
      `Bearer ${token} `,
      `Bearer ${token}\t`,
      `Bearer ${token}\u00a0`,
      `\u00a0Bearer ${token}`,
      `Bearer ${token}\r\n`,
    ]) {
      expect((await evaluate(value)).reason).toBe('request.malformed');
    }
  });
});

/** Sends one request head byte for byte (latin1) and returns status line and body. */
function rawRequest(base: string, authorization: string): Promise<{ status: number; body: string }> {
  const { port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), '127.0.0.1', () => {
      socket.write(Buffer.from(`GET /orders/1 HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: ${authorization}\r\nConnection: close\r\n\r\n`, 'latin1'));
    });
    let data = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (data += chunk));
    socket.on('error', reject);
    socket.on('end', () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1]), body: data.split('\r\n\r\n').slice(1).join('\r\n\r\n') }));
  });
}

describe('regression: only a single SP separates the auth scheme from the token (through each adapter)', () => {
  let world: World;
  const servers: { close: () => Promise<void> }[] = [];
  const bases: Record<'Express' | 'Koa' | 'Fastify', string> = { Express: '', Koa: '', Fastify: '' };
  let fetchHandler: (request: Request) => Promise<Response>;
  let fastifyInject: ReturnType<typeof fastifyApp>;

  beforeAll(async () => {
    world = await createWorld();
    const express = await serve(world, expressApp(world, 'main'));
    const koa = await serve(world, koaApp(world, 'main').callback());
    const fastify = fastifyApp(world, 'main');
    bases.Express = express.base;
    bases.Koa = koa.base;
    bases.Fastify = await fastify.listen({ port: 0, host: '127.0.0.1' });
    servers.push(express, koa, { close: () => fastify.close() });
    fetchHandler = fetchApp(world, 'main');
    fastifyInject = fastifyApp(world, 'main');
    await fastifyInject.ready();
  });
  afterAll(async () => {
    for (const s of servers) await s.close();
    await fastifyInject?.close();
  });

  for (const name of ['Express', 'Koa', 'Fastify'] as const) {
    describe(`${name} over a real socket`, () => {
      it('refuses a tab, two spaces or a no-break space after the scheme with 400 request.malformed', async () => {
        for (const sep of ['\t', '  ', ' \t', '\u00a0']) {
          const res = await supertestSend(bases[name], { method: 'GET', path: '/orders/1', headers: { authorization: `Bearer${sep}${world.fixtures.read}` } });
          expect([res.status, reasonOf(res), res.headers['www-authenticate']]).toEqual([400, 'request.malformed', expect.stringMatching(/^Bearer error="invalid_request"/)]);
        }
      });

      it('refuses the same bytes written raw on the socket', async () => {
        for (const sep of ['\t', '  ', '\u00a0']) {
          const res = await rawRequest(bases[name], `Bearer${sep}${world.fixtures.read}`);
          expect([res.status, JSON.parse(res.body).reason]).toEqual([400, 'request.malformed']);
        }
      });

      it('never lets CR, LF, VT or FF in the value through (Node refuses the request head before any app code)', async () => {
        for (const sep of ['\u000b', '\f', '\r', '\r\n ']) {
          const res = await rawRequest(bases[name], `Bearer${sep}${world.fixtures.read}`);
          expect(res.status).toBe(400);
          expect(res.body).not.toContain('"reason":"ok"');
        }
      });

      it('allows OWS around the whole value: Node strips it, so the guard sees exactly "Bearer <token>"', async () => {
        for (const value of [`Bearer ${world.fixtures.read} \t`, `\t Bearer ${world.fixtures.read}`]) {
          const res = await rawRequest(bases[name], value);
          expect([res.status, JSON.parse(res.body)]).toEqual([200, { reason: 'ok' }]);
        }
      });
    });
  }

  describe('fetch', () => {
    const send = async (authorization: string) => {
      const res = await fetchHandler(new Request('http://api.example.test/orders/1', { headers: { authorization } }));
      return { status: res.status, body: (await res.json()) as { reason: unknown } };
    };

    it('refuses a tab, two spaces, a no-break space, a vertical tab or a form feed after the scheme', async () => {
      for (const sep of ['\t', '  ', '\u00a0', '\u000b', '\f']) {
        expect(await send(`Bearer${sep}${world.fixtures.read}`)).toEqual({ status: 400, body: expect.objectContaining({ reason: 'request.malformed' }) });
      }
    });

    it('allows OWS around the whole value, which Headers strips as the wire does', async () => {
      expect(await send(`  Bearer ${world.fixtures.read}\t`)).toEqual({ status: 200, body: { reason: 'ok' } });
    });
  });

  describe('Fastify inject (no HTTP parser: values arrive verbatim)', () => {
    const send = async (authorization: string) => {
      const res = await fastifyInject.inject({ method: 'GET', url: '/orders/1', headers: { authorization }, remoteAddress: '203.0.113.9' });
      return [res.statusCode, (JSON.parse(res.body) as { reason: unknown }).reason];
    };

    it('refuses every separator but one SP, CR LF and vertical tab included', async () => {
      for (const [, sep] of SEPARATORS) expect(await send(`Bearer${sep}${world.fixtures.read}`)).toEqual([400, 'request.malformed']);
    });

    it('refuses whitespace around the value, since nothing stripped it', async () => {
      expect(await send(`Bearer ${world.fixtures.read}\t`)).toEqual([400, 'request.malformed']);
    });
  });
});
