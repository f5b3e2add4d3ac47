// Regression (security review, stores): the revoker's clock decided how long a revocation lived. RedisStore set the
// entry's TTL to `expiresAt − now` on the revoker's clock, and RedisStore and PostgresStore skipped the write when
// `expiresAt <= now` there, while every reader judges the entry with its own clock. A revoker whose clock runs ahead
// (an admin laptop running the CLI against production) made instances with a correct clock serve the revoked token
// again until it expired. The entry now outlives its expiry by REVOCATION_TTL_SLACK_MS, and one that elapsed within
// that slack on the revoker's clock is still stored; its `exp` stays exact, so readers decide with their own clock.
// On real Redis and PostgreSQL, with times passed in (the revoker's and the reader's) instead of waiting.
import { describe, expect, it } from 'vitest';
import { createGuard, type GuardRequest } from '../../src/index.js';
import { REVOCATION_TTL_SLACK_MS } from '../../src/stores/clock-skew.js';
import { RedisStore } from '../../src/stores/redis.js';
import { pgUp, useTestDatabase } from '../helpers/postgres.js';
import { redisUp, useSharedRedis } from '../helpers/redis.js';
import { basePolicy, NOW, NOW_S, signToken } from '../helpers/tokens.js';

const SECOND = 1000;
/** The reader's clock (correct) and the revoker's, two minutes ahead. */
const READER = NOW.getTime();
const REVOKER = READER + 120 * SECOND;

const req = (token: string, now: Date): GuardRequest => ({ method: 'GET', path: '/orders/1', headers: { authorization: `Bearer ${token}` }, remoteAddress: '127.0.0.1', now });

describe.skipIf(!redisUp)('regression: a Redis revocation holds for readers whose clock is behind the revoker', () => {
  const redis = useSharedRedis('rev-skew');
  const { prefix } = redis;
  const redisStore = () => new RedisStore({ client: redis.client, prefix, durability: 'ignore' });

  it('a token expiring after the reader’s now but before the revoker’s is still revoked for the reader (guard.revoke on the skewed instance)', async () => {
    const revoker = createGuard(await basePolicy({ store: redisStore() }));
    const reader = createGuard(await basePolicy({ store: redisStore() }));
    // Expires 60 s from the reader's point of view: already past on the revoker's clock.
    const token = await signToken({ scope: 'orders:read', jti: 'tok-skew-1' }, { exp: NOW_S + 60 });
    const first = await reader.evaluate(req(token, NOW));
    expect(first.reason).toBe('ok');
    await revoker.revoke(first.token!, { now: new Date(REVOKER) });
    expect((await reader.evaluate(req(token, NOW))).reason).toBe('token.revoked');
  });

  it('the entry lives until the token expires on the reader’s clock, not the revoker’s (TTL slack), and keeps its exact expiry', async () => {
    const store = redisStore();
    const expiresAt = READER + 90 * SECOND;
    await store.revoke('tok-skew-2', { now: REVOKER, expiresAt });
    await store.revokeSubject('alice-skew', { now: REVOKER, before: REVOKER, expiresAt });
    for (const key of [`${prefix}{t:tok-skew-2}:rev`, `${prefix}{s:alice-skew}:rev`]) {
      // Redis counts the TTL down in real time from the write: the reader needs the entry for 90 s from now on.
      expect(await redis.client.pttl(key)).toBeGreaterThan(expiresAt - READER);
      expect(JSON.parse((await redis.client.get(key)) as string).exp).toBe(expiresAt);
    }
    expect(await store.getRevocation('tok-skew-2', 'alice-skew', READER)).toEqual({ revokedAt: REVOKER, subjectRevokedBefore: REVOKER });
    // Readers still decide on the exact expiry.
    expect(await store.getRevocation('tok-skew-2', 'alice-skew', expiresAt)).toBeUndefined();
  });

  it('a revocation that elapsed longer ago than the slack is not stored', async () => {
    const store = redisStore();
    await store.revoke('tok-skew-3', { now: REVOKER, expiresAt: REVOKER - REVOCATION_TTL_SLACK_MS });
    expect(await redis.client.exists(`${prefix}{t:tok-skew-3}:rev`)).toBe(0);
  });
});

describe.skipIf(!pgUp)('regression: a PostgreSQL revocation holds for readers whose clock is behind the revoker', () => {
  const db = useTestDatabase('revskew');

  it('stores a revocation that elapsed on the revoker’s clock only, and a sweep on that clock keeps it', async () => {
    const { store } = await db.store();
    const expiresAt = READER + 60 * SECOND;
    await store.revoke('tok-1', { now: REVOKER, expiresAt });
    await store.revokeSubject('alice', { now: REVOKER, before: REVOKER, expiresAt });
    await store.sweep({ now: REVOKER });
    expect(await store.getRevocation('tok-1', 'alice', READER)).toEqual({ revokedAt: REVOKER, subjectRevokedBefore: REVOKER });
    expect(await store.getRevocation('tok-1', 'alice', expiresAt)).toBeUndefined();
  });
});
