// What every store checks about a claimOnce group before claiming: a caller bug must fail loudly, not cap nothing.
import { StoreArgumentError } from './validate.js';

/** Refuses a claim group that cannot work: a cap without a group, or a cap that is not a positive integer. */
export function checkClaimGroup(store: string, group: unknown, maxPerGroup: unknown, method = 'claimOnce'): void {
  if (group !== undefined && typeof group !== 'string') throw new StoreArgumentError(`${store}: ${method} group must be a string`);
  if (maxPerGroup === undefined) return;
  if (group === undefined) throw new StoreArgumentError(`${store}: claimOnce maxPerGroup needs a group`);
  if (!Number.isSafeInteger(maxPerGroup) || (maxPerGroup as number) < 1) throw new StoreArgumentError(`${store}: claimOnce maxPerGroup must be a positive integer`);
}
