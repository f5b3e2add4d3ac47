// Deep freezing of what is handed out as-is on the hot path (verified claims, stored records): safe without copies.

/** Freezes `value` and everything reachable from it; a part already frozen is left as is (and cycles end there). */
export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
