// Which stores a guard with several issuer configurations reads, and which a SET receiver without `guard` writes, as
// far as this process knows. Such a guard files JWT ids per issuer (`<name>:<jti>`), so a receiver that revokes a
// `jwt_id` under its bare `jti` would refuse nothing: the two must not meet on one store. Weak: a store the app lets go
// of is let go of here too.
const readByMultiIssuer = new WeakSet<object>();
const writtenByBareIds = new WeakSet<object>();

/** Notes that a guard with several issuer configurations reads `store`; true when a receiver without `guard` writes it. */
export function noteMultiIssuerGuard(store: object): boolean {
  readByMultiIssuer.add(store);
  return writtenByBareIds.has(store);
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
