// Two app instances (B in its own process) on the shared Redis: revoke on A, the very next request to B is refused,
// with the near-cache on (each instance with a subscriber) and off.
import { describe } from 'vitest';
import { redisClient, redisUp, REDIS_URL } from '../helpers/redis.js';
import { twoInstanceScenario } from './two-instance-scenario.js';

const target = () => ({ connect: () => redisClient(), env: { TG_REDIS_URL: REDIS_URL } });

describe.skipIf(!redisUp)('two instances on one Redis, near-cache on', () => {
  twoInstanceScenario(target, { nearCache: true });
});

describe.skipIf(!redisUp)('two instances on one Redis, near-cache off', () => {
  twoInstanceScenario(target, { nearCache: false });
});
