// Regression (review of the CLI): `token-guard revoke` opened its RedisStore without a subscriber, so it published the
// invalidation unconfirmed and exited 0 at once, while an app instance could still answer "not revoked" from its
// near-cache; docs/cli.md says the command behaves exactly like the app's own calls. Now it listens as an app instance
// does: it returns once every listening instance has dropped its cached lookup, and exits 4 when one does not confirm
// within --timeout (the revocation is stored all the same). Against the real Redis, with one app instance whose
// pub/sub link is slow (a TCP proxy holding back what Redis sends it).
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { RedisStore } from '../../src/stores/redis.js';
import { deletePrefix, randomPrefix, REDIS_URL, redisClient, redisUp } from '../helpers/redis.js';
import { type RedisProxy, redisProxy } from '../stores/redis-proxy.js';
import { cli, json } from './run.js';

describe.skipIf(!redisUp)('token-guard revoke waits for every listening instance, as an app revoke does', () => {
  const prefix = randomPrefix('cli-confirm');
  const channel = `${prefix}{c}:inv`;
  const env = { REDIS_URL };
  const admin = redisClient();
  const connections: Redis[] = [];
  let stores: RedisStore[] = [];
  let proxies: RedisProxy[] = [];

  /** An app instance on the prefix whose subscriber hears Redis `delayMs` late. */
  async function slowInstance(delayMs: number): Promise<RedisStore> {
    const proxy = await redisProxy(REDIS_URL, { delayMs });
    proxies.push(proxy);
    const sub = new Redis(proxy.port, '127.0.0.1');
    sub.on('error', () => undefined);
    const client = redisClient();
    connections.push(sub, client);
    const store = new RedisStore({ client, subscriber: sub, prefix, durability: 'ignore', confirmTimeout: 10_000 });
    stores.push(store);
    return store;
  }

  afterEach(async () => {
    for (const s of stores) await s.close();
    for (const c of connections.splice(0)) c.disconnect();
    for (const p of proxies) await p.close();
    stores = [];
    proxies = [];
  });
  afterAll(async () => {
    await deletePrefix(admin, prefix);
    admin.disconnect();
  });

  it('returns only once an instance with the token near-cached has dropped it', async () => {
    const b = await slowInstance(1000);
    await vi.waitFor(() => expect(b.stats().nearCacheEnabled).toBe(true), { timeout: 20_000, interval: 20 });
    const now = Date.now();
    expect(await b.getRevocation('cli-tok', 'cli-alice', now)).toBeUndefined();
    expect(b.getRevocation('cli-tok', 'cli-alice', now)).toBeUndefined(); // cached

    const r = await cli(['revoke', 'token', 'cli-tok', '--prefix', prefix, '--reason', 'compromised', '--json'], { env });
    expect(r).toMatchObject({ code: 0, timedOut: false });
    expect(json(r)).toMatchObject({ revoked: { tokenId: 'cli-tok', reason: 'compromised' } });
    // No waiting: B reads the revocation from Redis, its cached "not revoked" is gone.
    const onB = b.getRevocation('cli-tok', 'cli-alice', Date.now());
    expect(onB).toBeInstanceOf(Promise);
    expect(await onB).toMatchObject({ reason: 'compromised' });

    const s = await cli(['revoke', 'subject', 'cli-alice', '--prefix', prefix, '--json'], { env });
    expect(s).toMatchObject({ code: 0, timedOut: false });
    const subjectOnB = b.getRevocation('cli-other', 'cli-alice', Date.now());
    expect(await subjectOnB).toMatchObject({ subjectRevokedBefore: expect.any(Number) });
  });

  it('exits 4 when an instance does not confirm within --timeout, saying so; the revocation is stored', async () => {
    await slowInstance(3000);
    // B is subscribed (Redis counts it) whatever its replies' delay.
    await vi.waitFor(async () => expect((await admin.pubsub('NUMSUB', channel))[1]).toBe(1), { timeout: 10_000, interval: 20 });
    const r = await cli(['revoke', 'token', 'cli-unconfirmed', '--prefix', prefix, '--timeout', '1s', '--json'], { env });
    expect(r.timedOut).toBe(false);
    expect(r.code).toBe(4);
    expect(json(r)).toEqual({
      error: expect.objectContaining({ exit: 4, message: expect.stringMatching(/revocation stored, but 1 of 2 instance\(s\) did not confirm within 1000 ms/) }),
    });
    expect(await admin.get(`${prefix}{t:cli-unconfirmed}:rev`)).not.toBeNull();
  });
});
