// preAuthLimit with failedAuth against a store that answers asynchronously (Redis, Postgres, any remote store): an
// attempt counts from the moment it passes the limit until its token is verified, so a burst of concurrent guesses
// cannot all reach the store before the first of them has failed, while clients that authenticate get every
// attempt back.
import { describe, expect, it } from 'vitest';
import { issueApiKey, MemoryStore, type Decision, type TokenGuardPolicy } from '../../src/index.js';
import { guessedKey, preAuthGuard } from '../helpers/pre-auth.js';
import { wrapStore } from '../helpers/stores.js';
import { NOW, signToken } from '../helpers/tokens.js';
import { requestWith } from '../tokens/fixtures.js';

const A = '198.51.100.7';

/**
 * A MemoryStore whose every answer waits until the test lets it through (`answerAll`), counting key lookups. Keys are
 * put in `inner` directly, so only the guard's calls wait.
 */
function gatedStore() {
  const inner = new MemoryStore();
  const waiting: (() => void)[] = [];
  let lookups = 0;
  const store = wrapStore(inner, (method, call) => {
    if (method === 'getApiKey') lookups++;
    const out = call();
    return new Promise((resolve) => waiting.push(() => resolve(out)));
  });
  /** Answers every waiting store call, and those they lead to, until every evaluation has settled. */
  async function answerAll(evaluations: Promise<Decision>[]): Promise<Decision[]> {
    let settled = false;
    const all = Promise.all(evaluations).finally(() => {
      settled = true;
    });
    while (!settled) {
      for (const answer of waiting.splice(0)) answer();
      await new Promise((resolve) => setImmediate(resolve));
    }
    return all;
  }
  return { inner, store, answerAll, lookups: () => lookups };
}

const req = (token: string | undefined, remoteAddress = A) => requestWith(token === undefined ? {} : { authorization: `Bearer ${token}` }, { remoteAddress });

/** How many decisions gave each reason. */
function tally(ds: readonly Decision[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const d of ds) counts[d.reason] = (counts[d.reason] ?? 0) + 1;
  return counts;
}

async function guardWith(preAuthLimit: Partial<NonNullable<TokenGuardPolicy['preAuthLimit']>> = {}) {
  const gated = gatedStore();
  const guard = await preAuthGuard(gated.store, { limit: 3, window: '1h', failedAuth: true, ...preAuthLimit });
  const key = issueApiKey({ prefix: 'tg_', subject: 'svc-billing', scopes: ['orders:read'], expiresIn: '30d', now: NOW });
  gated.inner.putApiKey(key.record);
  return { ...gated, guard, key: key.key };
}

describe('preAuthLimit failedAuth with an asynchronous store', () => {
  it.each(['ip', 'ip+subject'] as const)('lets only limit of 200 concurrent guesses from one IP reach the store, and refuses the rest before it (by %s)', async (by) => {
    const { guard, answerAll, lookups } = await guardWith({ by });
    const ds = await answerAll(Array.from({ length: 200 }, () => guard.evaluate(req(guessedKey()))));
    expect(tally(ds)).toEqual({ 'token.invalid': 3, 'rate.limited': 197 });
    expect(lookups()).toBe(3);
  });

  it('counts guesses one after another as before: limit failures, then 429 before the store, the headers showing the budget before each attempt', async () => {
    const { guard, answerAll, lookups } = await guardWith();
    const ds: Decision[] = [];
    for (let i = 0; i < 5; i++) ds.push(...(await answerAll([guard.evaluate(req(guessedKey()))])));
    expect(ds.map((d) => d.reason)).toEqual(['token.invalid', 'token.invalid', 'token.invalid', 'rate.limited', 'rate.limited']);
    expect(ds.slice(0, 3).map((d) => d.headers['RateLimit'])).toEqual(['"preauth";r=3;t=0', '"preauth";r=2;t=1200', '"preauth";r=1;t=2400']);
    expect(lookups()).toBe(3);
  });

  it.each(['ip', 'ip+subject'] as const)(
    'holds a burst of valid keys to limit while they are looked up, and hands every attempt back once they are verified (by %s)',
    async (by) => {
      const { guard, answerAll, lookups, key } = await guardWith({ by });
      const first = await answerAll(Array.from({ length: 5 }, () => guard.evaluate(req(key))));
      expect(tally(first)).toEqual({ ok: 3, 'rate.limited': 2 });
      // Settled, they hold nothing: the next bursts get the whole budget, and so would a guesser.
      for (let round = 0; round < 3; round++) expect(tally(await answerAll(Array.from({ length: 3 }, () => guard.evaluate(req(key)))))).toEqual({ ok: 3 });
      const before = lookups();
      const guesses = await answerAll(Array.from({ length: 5 }, () => guard.evaluate(req(guessedKey()))));
      expect(tally(guesses)).toEqual({ 'token.invalid': 3, 'rate.limited': 2 });
      expect(lookups() - before).toBe(3);
    },
  );

  it('hands back the attempt of a request that ends without a failed authentication: no token, a valid JWT, a token refused once verified, a bound token without its proof, an expired key', async () => {
    const { guard, answerAll, lookups, inner } = await guardWith();
    const jwt = await signToken({ scope: 'orders:read' });
    const unscoped = await signToken({ scope: 'reports:read' });
    // Bound to a key it brings no proof of: refused once verified, as the token is bound (pop.invalid).
    const bound = await signToken({ scope: 'orders:read', cnf: { jkt: 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs' } });
    const expired = issueApiKey({ prefix: 'tg_', subject: 'svc-old', scopes: ['orders:read'], expiresIn: '1d', now: new Date(NOW.getTime() - 2 * 86_400_000) });
    inner.putApiKey(expired.record);
    // Bursts of limit at a time, one kind after another: each would use up the budget if it kept its attempts.
    const kinds = [
      [undefined, 'token.missing'],
      [jwt, 'ok'],
      [unscoped, 'scope.insufficient'],
      [bound, 'pop.invalid'],
      [expired.key, 'token.expired'],
    ] as const;
    for (const [token, reason] of kinds) {
      for (let round = 0; round < 2; round++) expect(tally(await answerAll(Array.from({ length: 3 }, () => guard.evaluate(req(token)))))).toEqual({ [reason]: 3 });
    }
    const before = lookups();
    const guesses = await answerAll(Array.from({ length: 5 }, () => guard.evaluate(req(guessedKey()))));
    expect(tally(guesses)).toEqual({ 'token.invalid': 3, 'rate.limited': 2 });
    expect(lookups() - before).toBe(3);
  });

  it('hands an attempt back once its token is verified, not when the request ends: requests waiting on the store after that hold nothing', async () => {
    const { guard, answerAll, lookups } = await guardWith();
    const jwt = await signToken({ scope: 'orders:read' });
    expect((await answerAll([guard.evaluate(req(jwt))]))[0]?.reason).toBe('ok');
    // Verified from the cache at once, these wait on the store for their revocation while the guesses arrive.
    const valid = Array.from({ length: 3 }, () => guard.evaluate(req(jwt)));
    const guesses = Array.from({ length: 5 }, () => guard.evaluate(req(guessedKey())));
    expect(lookups()).toBe(3);
    expect(tally(await answerAll([...valid, ...guesses]))).toEqual({ ok: 3, 'token.invalid': 3, 'rate.limited': 2 });
  });

  it('keeps nothing for a dry run: explain with spend: false holds no attempt and counts no failure', async () => {
    const { guard, answerAll } = await guardWith();
    for (let i = 0; i < 5; i++) {
      const x = guard.explain(req(guessedKey()), { spend: false });
      await answerAll([x.then((e) => e.decision)]);
      expect((await x).decision.reason).toBe('token.invalid');
    }
    const ds = await answerAll(Array.from({ length: 5 }, () => guard.evaluate(req(guessedKey()))));
    expect(tally(ds)).toEqual({ 'token.invalid': 3, 'rate.limited': 2 });
  });

  it('leaves other IPs their own budget while one IP has attempts in flight', async () => {
    const { guard, answerAll } = await guardWith();
    const ds = await answerAll([
      ...Array.from({ length: 10 }, () => guard.evaluate(req(guessedKey()))),
      ...Array.from({ length: 3 }, () => guard.evaluate(req(guessedKey(), '203.0.113.9'))),
    ]);
    expect(tally(ds.slice(0, 10))).toEqual({ 'token.invalid': 3, 'rate.limited': 7 });
    expect(tally(ds.slice(10))).toEqual({ 'token.invalid': 3 });
  });
});
