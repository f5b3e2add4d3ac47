// The allow path every adapter takes for nearly every request, kept free of allocations: an allowed decision's own
// headers are what `outcomeOf` would hand back (`passHeaders` returns them as they are), and most often there are none.

/** Whether a header set has any entry, without allocating a key list (`for…in` stops at the first). */
export function hasHeaders(headers: Record<string, string>): boolean {
  for (const _ in headers) return true;
  return false;
}
