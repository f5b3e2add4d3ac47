// Which stores a guard with several issuer configurations reads, and which a SET receiver without `guard` writes, as
// far as this process knows. Such a guard files JWT ids per issuer (`<name>:<jti>`), so a receiver that revokes a
// `jwt_id` under its bare `jti` would refuse nothing: the two must not meet on one store. Weak: a store the app lets go
// of is let go of here too.
import { warnOnce } from './warnings.js';

const readByMultiIssuer = new WeakSet<object>();
const writtenByBareIds = new WeakSet<object>();

/** Notes that a guard with several issuer configurations reads `store`, warning when a receiver without `guard` writes it. */
export function noteMultiIssuerGuard(store: object): void {
  readByMultiIssuer.add(store);
  if (!writtenByBareIds.has(store)) return;
  warnOnce(
    'TOKEN_GUARD_SET_WITHOUT_GUARD',
    'token-guard: a security event receiver created without `guard` writes the store of this guard, which has several issuers: a jwt_id event is revoked under its bare jti, which this guard never reads. Pass the guard to createSetReceiver.',
  );
}

/**
 * Notes that a SET receiver without `guard` writes `store`, unless a guard with several issuer configurations reads
 * it: true then (the receiver is refused, so nothing is noted).
 */
export function noteBareIdReceiver(store: object): boolean {
  if (readByMultiIssuer.has(store)) return true;
  writtenByBareIds.add(store);
  return false;
}
