// Keys with a number of uses (`remaining`): one use spent per request that goes through, in the store, so
// instances sharing it agree; the last use refuses the next request with `token.expired`.
import { revokedKeyDetail } from '../leaf/lifecycle.js';
import type { ReasonCode } from '../leaf/types.js';
import { defineCheck, isPromiseLike, type CheckContext } from './check.js';
import { EXHAUSTED, EXPIRY_DETAIL } from './expiry.js';

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
    const hadUses = record.remaining > 0;
    const spent = (left: number): ReasonCode | undefined | PromiseLike<ReasonCode> => {
      // The last use: authentication reads the key as used up from now on, also to this request's later evaluations
      // (the guard mounted twice on its way), which then go on with this holder (core/engine.ts, authenticateKey).
      if (left === 0) ctx.store.remember?.(keyUsesCheck, record.hash, ctx.token);
      if (left >= 0) return undefined;
      ctx.detail = EXPIRY_DETAIL[EXHAUSTED];
      // The record said there were uses left: either other requests spent them meanwhile, or the key was rotated
      // (its uses went to the successor). Only the second is worth a second read, and only on this rare path.
      return hadUses ? whyRefused(ctx, record.hash) : 'token.expired';
    };
    const answer = ctx.store.useApiKey(record.hash);
    return isPromiseLike(answer) ? Promise.resolve(answer).then(spent) : spent(answer);
  },
});

/** `token.revoked` (with the rotation's detail) when the key is rotated now, else `token.expired`. */
function whyRefused(ctx: CheckContext, hash: string): ReasonCode | PromiseLike<ReasonCode> {
  const reasonOf = (now: Readonly<Record<string, unknown>> | undefined): ReasonCode => {
    if (typeof now?.['rotatedTo'] !== 'string') return 'token.expired';
    ctx.detail = revokedKeyDetail(now);
    return 'token.revoked';
  };
  // The refusal is settled; a store that fails to say why must not turn it into a 503.
  try {
    const answer = ctx.store.getApiKey(hash);
    return isPromiseLike(answer) ? Promise.resolve(answer).then(reasonOf, () => 'token.expired' as const) : reasonOf(answer);
  } catch {
    return 'token.expired';
  }
}
