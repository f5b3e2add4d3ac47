// Usage records under guards met on a request's way, as a matrix: sequences of two guards (A, B: each its own store)
// and credential swaps between them, every pair of token kinds, synchronous and asynchronous stores, rate limits on
// neither, one (A; the sequences put either guard first) or both. Whatever the sequence, each guard records one use a request of each token it allowed, and
// spends nothing twice (a limit of N requests answers all N with 200). Written by a reviewer to hunt the defects of
// the usage mark (a swapped credential never recorded; a token verified anew counted twice); kept as the property.
import express from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { tokenGuard } from '../../src/adapters/express.js';
import { MemoryStore, type TokenGuardPolicy, type TokenStore } from '../../src/index.js';
import { asyncStore } from '../helpers/stores.js';
import { basePolicy, signToken, storeApiKey } from '../helpers/tokens.js';

const N = 3;
type Step = { guard: 'A' | 'B' } | { swap: 't1' | 't2' };
const g = (guard: 'A' | 'B'): Step => ({ guard });
const swap = (to: 't1' | 't2'): Step => ({ swap: to });
const SEQUENCES: [string, Step[]][] = [
  ['A A', [g('A'), g('A')]],
  ['A B', [g('A'), g('B')]],
  ['A B A', [g('A'), g('B'), g('A')]],
  ['A B A B', [g('A'), g('B'), g('A'), g('B')]],
  ['A swap A', [g('A'), swap('t2'), g('A')]],
  ['A swap A swap-back A', [g('A'), swap('t2'), g('A'), swap('t1'), g('A')]],
  ['A B swap A B', [g('A'), g('B'), swap('t2'), g('A'), g('B')]],
  ['A swap B A', [g('A'), swap('t2'), g('B'), g('A')]],
  ['B A swap A B swap-back B A', [g('B'), g('A'), swap('t2'), g('A'), g('B'), swap('t1'), g('B'), g('A')]],
];
const KINDS = [
  ['jwt', 'jwt'],
  ['key', 'key'],
  ['jwt', 'key'],
  ['key', 'jwt'],
] as const;

/** An Express app running `steps` in order, each in a router nested in the one before (every mount is on the way). */
function appOf(guards: Record<'A' | 'B', express.RequestHandler>, steps: Step[], tokens: Record<string, string>): express.Express {
  const app = express();
  let router: express.Router = app as unknown as express.Router;
  for (const s of steps) {
    const r = express.Router();
    if ('guard' in s) r.use(guards[s.guard]);
    else
      r.use((req, _res, next) => {
        req.headers.authorization = tokens[s.swap];
        next();
      });
    router.use(r);
    router = r;
  }
  router.all('/:section/:id', (_req, res) => void res.send('ok'));
  return app;
}

/** The uses each guard should have recorded: N of each token it met. */
function expected(steps: Step[]): Record<string, number> {
  const seen = new Set<string>();
  let token = 't1';
  for (const s of steps) {
    if ('swap' in s) token = s.swap;
    else seen.add(`${s.guard}:${token}`);
  }
  return Object.fromEntries([...seen].sort().map((k) => [k, N]));
}

const cases = SEQUENCES.flatMap(([name, steps]) =>
  KINDS.flatMap(([k1, k2]) => [false, true].flatMap((isAsync) => ['none', 'A', 'AB'].map((limited) => [name, k1, k2, isAsync, limited, steps] as const))),
);

describe('usage under guards met on the way, a matrix', () => {
  it.each(cases)('%s, t1 %s, t2 %s, async store %s, rate limit on %s', async (_name, k1, k2, isAsync, limited, steps) => {
    const inner = { A: new MemoryStore(), B: new MemoryStore() };
    const stores: Record<'A' | 'B', TokenStore> = isAsync ? { A: asyncStore(inner.A), B: asyncStore(inner.B) } : inner;
    const tokens: Record<string, string> = {};
    const ids: Record<string, string> = {};
    for (const [t, kind] of [
      ['t1', k1],
      ['t2', k2],
    ] as const) {
      if (kind === 'jwt') {
        tokens[t] = `Bearer ${await signToken({ scope: 'orders:read', jti: `jti-${t}` })}`;
        ids[t] = `jti-${t}`;
      } else {
        const { key, record } = await storeApiKey(inner.A);
        await inner.B.putApiKey(record);
        tokens[t] = `Bearer ${key}`;
        ids[t] = record.id;
      }
    }
    const limit: Partial<TokenGuardPolicy> = { rateLimit: { limit: N, window: '1m' } };
    const guards = {
      A: tokenGuard(await basePolicy({ store: stores.A, ...(limited.includes('A') && limit) })),
      B: tokenGuard(await basePolicy({ store: stores.B, ...(limited.includes('B') && limit) })),
    };
    const app = appOf(guards, steps, tokens);
    const statuses: number[] = [];
    for (let i = 0; i < N; i++)
      statuses.push(
        (
          await request(app)
            .get('/orders/1')
            .set('Authorization', tokens.t1 as string)
        ).status,
      );
    const uses: Record<string, number> = {};
    for (const guard of ['A', 'B'] as const) {
      for (const t of ['t1', 't2']) {
        const count = (await inner[guard].getUsage(ids[t] as string))?.count ?? 0;
        if (count > 0) uses[`${guard}:${t}`] = count;
      }
    }
    expect({ statuses, uses }).toEqual({ statuses: Array(N).fill(200), uses: expected(steps) });
  });
});
