// DPoP replay, early: a proof the store already holds a claim for is refused before the request spends its quota.
// The proof check (pop.ts) verifies the proof in the bind phase and claims it at commit, once nothing refused the
// request. That claim alone refuses a replay, but only after the quota phase charged the token's rate limit: anyone
// who saw one request (a log, a proxy) could replay its proof for a minute to spend its holder's quota. Here the
// claim is read (not taken) beside the revocation lookup, so a known replay stops in the constraints phase.
import type { ReasonCode } from '../leaf/types.js';
import { defineCheck, isPromiseLike, type CheckContext, type CheckResult } from './check.js';
import type { DpopPolicySlice } from './pop.js';
import type { DpopPolicy, DpopProof } from './dpop.js';

/** What the check keeps of the policy: only that DPoP is on (the proof check owns the `dpop` slice's schema). */
interface CompiledReplay {
  readonly detail: string;
}

function verdict(ctx: CheckContext, claimed: boolean, c: CompiledReplay): ReasonCode | undefined {
  if (!claimed) return undefined;
  ctx.detail = c.detail;
  return 'pop.invalid';
}

/**
 * DPoP proof replay (`pop.invalid`), read before the quota phase: a verified proof whose one use was already claimed,
 * on any instance sharing the store, is refused without spending the token's rate limit or a key's uses. Needs a
 * store with `isClaimed` (MemoryStore, RedisStore, composeStores over one); with another, the claim at commit still
 * refuses the replay, after the counters. Copies of a proof sent before its first use was claimed (by someone on the
 * path, who sees it in flight) are each counted when they are decided before that claim lands; the claim still lets
 * only one through. Once it is claimed, no copy is counted.
 */
export const dpopReplayCheck = defineCheck<DpopPolicySlice, object, DpopPolicy, CompiledReplay>({
  name: 'dpop-replay',
  phase: 'constraints',
  order: 0,
  // No schema: the `dpop` slice is the proof check's; this one only runs when the policy has it.
  policyKey: 'dpop',
  compile: () => ({ detail: 'DPoP proof replayed (its one use was already claimed)' }),
  // Sent with the revocation lookup: one round trip's wait for both.
  prefetch(ctx) {
    const proof = ctx.notes?.['pop'] as DpopProof | undefined;
    // Called on the store: an adapter's request has its own, for which a claim this request made is nobody else's.
    return proof === undefined || ctx.store.isClaimed === undefined ? undefined : ctx.store.isClaimed(proof.replayKey, { now: ctx.nowMs, group: proof.replayGroup });
  },
  check(ctx, c, prefetched): CheckResult {
    if (prefetched === undefined) {
      ctx.skipped =
        ctx.notes?.['pop'] === undefined ? 'no DPoP proof on this request' : 'the store cannot read claims (no isClaimed): a replay is refused when its proof is claimed';
      return undefined;
    }
    return isPromiseLike(prefetched) ? Promise.resolve(prefetched).then((claimed) => verdict(ctx, claimed === true, c)) : verdict(ctx, prefetched === true, c);
  },
  // As the proof check's: a bearer token bound to nothing has no proof to replay.
  memo: (ctx) => ctx.scheme === 'bearer' && ctx.token !== undefined && ctx.token.cnf === undefined,
});
