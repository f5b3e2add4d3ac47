// Keys with a number of uses (`remaining`): one use spent per request that goes through, in the store, so
// instances sharing it agree; the last use refuses the next request with `token.expired`.
import type { ReasonCode } from '../leaf/types.js';
import { defineCheck, isPromiseLike } from './check.js';

/** Uses of limited API keys (`token.expired`, "no uses left"). Runs for every key whose record counts uses. */
export const keyUsesCheck = defineCheck<object, object, undefined, true>({
  name: 'keyUses',
  phase: 'quota',
  order: 20,
  always: true,
  keysOnly: true,
  compile: () => true,
  check(ctx) {
    const record = ctx.token?.record;
    if (record?.remaining === undefined) {
      ctx.skipped = record === undefined ? 'not an API key' : 'the key has no use limit';
      return undefined;
    }
    const spent = (left: number): ReasonCode | undefined => {
      if (left >= 0) return undefined;
      ctx.detail = 'no uses left';
      return 'token.expired';
    };
    const answer = ctx.store.useApiKey(record.hash);
    return isPromiseLike(answer) ? Promise.resolve(answer).then(spent) : spent(answer);
  },
});
