// Stores read by a guard with several issuer configurations, as far as this process knows: with such a guard, token
// ids and subjects are filed per issuer (`<name>:<jti>`, `<name>:<sub>`), so a writer that files bare ones (a SET
// receiver without `guard`) would revoke nothing. Weak: a store the app lets go of is let go of here too.
const stores = new WeakSet<object>();

/** Notes that a guard with several issuer configurations reads `store`. */
export function noteMultiIssuerStore(store: object): void {
  stores.add(store);
}

/** Whether a guard of this process with several issuer configurations reads `store`. */
export function hasMultiIssuerGuard(store: object): boolean {
  return stores.has(store);
}
