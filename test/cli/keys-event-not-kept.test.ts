// Regression: `keys issue` and `keys rotate` against a store that took the key but could not keep its lifecycle event
// failed (exit 4) without printing the key. The key was stored and worked (rotate had already revoked the old one,
// whose holder was then locked out), and its plaintext existed nowhere else. The key is now printed as on success,
// then the failure is reported (exit 4; with --json, one document holding both). The library's LifecycleEventError
// carries it as a `result` that logging does not show.
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { createApiKey, hashApiKey, LifecycleEventError, MemoryStore, type IssuedApiKey } from '../../src/index.js';
import { useCliRedis } from '../helpers/cli-redis.js';
import { REDIS_URL, redisUp } from '../helpers/redis.js';
import { cli, json } from './run.js';

interface Failed {
  error: { code: string; exit: number; message: string };
  result: { key: string; record: { id: string }; previous?: { id: string; state: string } };
}

describe('createApiKey when the store cannot keep the event', () => {
  it('throws LifecycleEventError whose result is the issued key, kept out of inspect and JSON', async () => {
    const store = new MemoryStore();
    store.appendLifecycleEvent = () => Promise.reject(new Error('disk full'));
    const err = await createApiKey(store, { prefix: 'tg_', subject: 'svc', scopes: [], expiresIn: '1d' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LifecycleEventError);
    const issued = (err as LifecycleEventError).result as IssuedApiKey;
    expect(issued.key).toMatch(/^tg_/);
    expect(await store.getApiKey(hashApiKey(issued.key))).toMatchObject({ id: issued.record.id });
    expect(inspect(err, { depth: 5 })).not.toContain(issued.key);
    expect(JSON.stringify(err)).not.toContain(issued.key);
  });
});

describe.skipIf(!redisUp)('token-guard keys issue and rotate when the event cannot be kept', () => {
  const redis = useCliRedis('cli-ev');
  const { prefix } = redis;
  const env = { REDIS_URL };
  const breakEvents = () => redis.client.set(`${prefix}{e}:log`, 'not a list');
  const mendEvents = () => redis.client.del(`${prefix}{e}:log`);

  const issueArgs = ['keys', 'issue', '--prefix', prefix, '--subject', 'svc-ev', '--key-prefix', 'tg_', '--expires-in', '30d'];

  it('issue: prints the key (text and --json), which works, and exits 4', async () => {
    await breakEvents();
    const text = await cli(issueArgs, { env });
    expect(text.code).toBe(4);
    const printed = /\btg_[0-9A-Za-z]{30,}\b/.exec(text.stdout)?.[0];
    expect(printed).toBeDefined();
    expect(text.stderr).toMatch(/lifecycle event could not be kept.*shown above is stored and works/);
    expect(await redis.store.getApiKey(hashApiKey(printed as string))).toMatchObject({ subject: 'svc-ev' });

    const r = await cli([...issueArgs, '--json'], { env });
    expect(r.code).toBe(4);
    const doc = json<Failed>(r);
    expect(doc.error).toMatchObject({ code: 'cli.store_unreachable', exit: 4 });
    expect(await redis.store.getApiKey(hashApiKey(doc.result.key))).toMatchObject({ id: doc.result.record.id });
    await mendEvents();
  });

  it('rotate: prints the successor, which works while the old key is rotated, and exits 4', async () => {
    const issued = json<{ key: string; record: { id: string } }>(await cli([...issueArgs, '--json'], { env }));
    await breakEvents();
    const r = await cli(['keys', 'rotate', issued.record.id, '--prefix', prefix, '--json'], { env });
    expect(r.code).toBe(4);
    const doc = json<Failed>(r);
    expect(doc.result.previous).toMatchObject({ id: issued.record.id });
    expect(await redis.store.getApiKey(hashApiKey(doc.result.key))).toMatchObject({ rotatedFrom: issued.record.id });
    expect(await redis.store.getApiKey(hashApiKey(issued.key))).toMatchObject({ rotatedTo: doc.result.record.id });
    await mendEvents();
  });
});
