// Where the Fastify plugin may be registered: on the root only, because a hook registered below the root guards only
// that plugin's routes. Regression: registered inside a child plugin, the guard left root and sibling routes open.
import { afterEach, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import { tokenGuard } from '../../src/adapters/fastify.js';
import { TokenGuardError } from '../../src/index.js';
import { basePolicy, signToken } from '../helpers/tokens.js';

const apps: FastifyInstance[] = [];

function app(): FastifyInstance {
  const a = Fastify();
  apps.push(a);
  return a;
}

afterEach(async () => {
  // An app whose start-up failed may also fail to close; nothing is listening either way.
  while (apps.length)
    await apps
      .pop()
      ?.close()
      .catch(() => undefined);
});

/** A plugin that joins the context it is registered in, as `fastify-plugin` makes it (its metadata, without the dependency). */
function skipOverride(fn: FastifyPluginAsync, name: string): FastifyPluginAsync {
  return Object.assign(fn, { [Symbol.for('skip-override')]: true, [Symbol.for('fastify.display-name')]: name });
}

/** Root and sibling routes a guard in the wrong place would leave open. */
function addOtherRoutes(a: FastifyInstance): void {
  a.get('/admin/users', async () => ({ open: 'root route' }));
  void a.register(async (other) => {
    other.get('/billing', async () => ({ open: 'sibling plugin' }));
  });
}

const notRoot = { name: 'TokenGuardError', code: 'adapter.not_root', status: 500, expose: false };

describe('Fastify plugin registration outside the root context', () => {
  it('refuses to start when registered inside a prefixed child plugin (new-user repro: /admin/users and /billing answered 200 without a token)', async () => {
    /** The walkthrough's app: the guard in the API plugin under /v1, other routes on the root and in a sibling plugin. */
    const reproApp = () => {
      const a = app();
      void a.register(
        async (api) => {
          await api.register(tokenGuard, await basePolicy());
          api.get('/orders', async () => ({ inner: true }));
        },
        { prefix: '/v1' },
      );
      addOtherRoutes(a);
      return a;
    };
    // A fresh app per path: after a failed start Fastify's inject() no longer waits for a start, so only the first
    // answer of an app shows what a started server would do (listen() keeps refusing, below).
    for (const url of ['/admin/users', '/billing', '/v1/orders', '/nope']) {
      const answer = reproApp().inject({ url });
      await expect(answer, url).rejects.toBeInstanceOf(TokenGuardError);
      await expect(answer, url).rejects.toMatchObject(notRoot);
    }
    const a = reproApp();
    await expect(a.ready()).rejects.toThrow(/inside an encapsulated plugin \(prefix "\/v1"\).*Register it on the root instance/s);
    await expect(a.listen({ port: 0, host: '127.0.0.1' })).rejects.toMatchObject(notRoot);
  });

  it('refuses at the await of the enclosing register, as an app written with top-level await sees it', async () => {
    const a = app();
    await expect(
      a.register(async (api) => {
        await api.register(tokenGuard, await basePolicy());
      }),
    ).rejects.toMatchObject(notRoot);
  });

  it('refuses in a child plugin without a prefix, and in a fastify-plugin style plugin registered inside a child', async () => {
    const plain = app();
    void plain.register(async (child) => {
      await child.register(tokenGuard, await basePolicy());
      child.get('/orders/1', async () => ({ ok: true }));
    });
    addOtherRoutes(plain);
    await expect(plain.inject({ url: '/admin/users' })).rejects.toMatchObject(notRoot);

    const nested = app();
    const auth = skipOverride(async (instance) => {
      await instance.register(tokenGuard, await basePolicy());
    }, 'auth');
    void nested.register(async (child) => {
      await child.register(auth);
      child.get('/orders/1', async () => ({ ok: true }));
    });
    addOtherRoutes(nested);
    await expect(nested.inject({ url: '/billing' })).rejects.toMatchObject(notRoot);
  });
});

describe('Fastify plugin registration on the root context', () => {
  it('guards root, prefixed-plugin, sibling and unknown paths when registered on the root, public rules opening what is meant to be open', async () => {
    const a = app();
    await a.register(tokenGuard, await basePolicy());
    a.get('/health', async () => ({ up: true }));
    void a.register(
      async (api) => {
        api.get('/:id', async (req) => ({ reason: req.auth?.decision.reason }));
      },
      { prefix: '/orders' },
    );
    addOtherRoutes(a);
    expect((await a.inject({ url: '/health' })).statusCode).toBe(200);
    for (const url of ['/admin/users', '/billing', '/orders/1', '/nope']) {
      const res = await a.inject({ url });
      expect([url, res.statusCode, res.json().reason]).toEqual([url, 401, 'token.missing']);
    }
    // Rules name the full path, prefix included.
    const ok = await a.inject({ url: '/orders/1', headers: { authorization: `Bearer ${await signToken({ scope: 'orders:read' })}` } });
    expect([ok.statusCode, ok.json()]).toEqual([200, { reason: 'ok' }]);
  });

  it('accepts a fastify-plugin style plugin on the root that registers it, after other such plugins', async () => {
    const a = app();
    await a.register(skipOverride(async () => undefined, 'cors-like'));
    await a.register(
      skipOverride(async (instance) => {
        await instance.register(tokenGuard, await basePolicy());
      }, 'auth'),
    );
    addOtherRoutes(a);
    for (const url of ['/admin/users', '/billing', '/nope']) {
      const res = await a.inject({ url });
      expect([url, res.statusCode, res.json().reason]).toEqual([url, 401, 'token.missing']);
    }
  });
});
