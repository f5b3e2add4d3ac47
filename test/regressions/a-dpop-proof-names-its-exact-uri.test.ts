// Regression (security review, DPoP): a proof's `htu` was compared with the path as the rules read it, which drops a
// trailing slash and folds repeated slashes. A proof made for `/orders/1/` (never spent: intercepted, or its request
// refused) was accepted on `/orders/1`, which Fastify, Express with strict routing and others route apart. htu must
// name the request's URI (RFC 9449 §4.3): compared after URL parsing's syntax-based normalisation only.
// Real frameworks: Fastify through inject, Express with strict routing over HTTP.
import { createHash, randomUUID } from 'node:crypto';
import express from 'express';
import Fastify from 'fastify';
import request from 'supertest';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { tokenGuard as expressGuard } from '../../src/adapters/express.js';
import { tokenGuard as fastifyGuard } from '../../src/adapters/fastify.js';
import { MemoryStore } from '../../src/index.js';
import { basePolicy, NOW_S, signToken } from '../helpers/tokens.js';

const ORIGIN = 'https://api.example.test';

async function holder() {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(publicKey);
  const token = await signToken({ scope: 'orders:read orders:write', cnf: { jkt: await calculateJwkThumbprint(jwk, 'sha256') } });
  const ath = createHash('sha256').update(token).digest('base64url');
  const proof = (path: string, htm = 'GET') =>
    new SignJWT({ htm, htu: `${ORIGIN}${path}`, iat: NOW_S, jti: randomUUID(), ath }).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk }).sign(privateKey);
  return { token, proof };
}

describe('regression: a DPoP proof is good for the URI it names only', () => {
  it('Fastify: a proof for /orders/1/ is refused on /orders/1 (another route), and each route takes its own', async () => {
    const { token, proof } = await holder();
    const app = Fastify();
    await app.register(fastifyGuard, await basePolicy({ dpop: { origins: [ORIGIN] }, store: new MemoryStore() }));
    app.get('/orders/:id', async () => ({ route: 'GET /orders/:id' }));
    app.get('/orders/:id/', async () => ({ route: 'GET /orders/:id/' }));
    const send = async (url: string, htuPath: string) => {
      const r = await app.inject({ method: 'GET', url, headers: { authorization: `DPoP ${token}`, dpop: await proof(htuPath) } });
      return `${r.statusCode} ${(r.json() as { route?: string; reason?: string }).route ?? (r.json() as { reason?: string }).reason}`;
    };
    expect(await send('/orders/1', '/orders/1/')).toBe('401 pop.invalid');
    expect(await send('/orders/1/', '/orders/1')).toBe('401 pop.invalid');
    expect(await send('//orders/1', '/orders/1')).toMatch(/^(401 pop\.invalid|404)/);
    expect(await send('/orders/1', '/orders/1')).toBe('200 GET /orders/:id');
    expect(await send('/orders/1/', '/orders/1/')).toBe('200 GET /orders/:id/');
    // Syntax-based normalisation still holds: dot segments and a query do not matter.
    expect(await send('/orders/1?x=1', '/orders/./1')).toBe('200 GET /orders/:id');
    await app.close();
  });

  it('Express with strict routing: the same, over HTTP', async () => {
    const { token, proof } = await holder();
    const app = express();
    app.set('strict routing', true);
    app.use(expressGuard(await basePolicy({ dpop: { origins: [ORIGIN] }, store: new MemoryStore() })));
    app.get('/orders/:id', (_req, res) => void res.json({ route: 'GET /orders/:id' }));
    app.get('/orders/:id/', (_req, res) => void res.json({ route: 'GET /orders/:id/' }));
    const get = async (url: string, htuPath: string) => {
      const r = await request(app)
        .get(url)
        .set('Authorization', `DPoP ${token}`)
        .set('DPoP', await proof(htuPath, 'GET'));
      return `${r.status} ${(r.body as { route?: string; reason?: string }).route ?? (r.body as { reason?: string }).reason}`;
    };
    expect(await get('/orders/1', '/orders/1/')).toBe('401 pop.invalid');
    expect(await get('/orders/1/', '/orders/1/')).toBe('200 GET /orders/:id/');
    expect(await get('/orders/1', '/orders/1')).toBe('200 GET /orders/:id');
  });
});
