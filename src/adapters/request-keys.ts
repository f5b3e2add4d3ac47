// Reading a framework's request object by key rather than by name.
//
// Express gives every request its own hidden class: it swaps the request's prototype and then adds properties, and V8
// shares no transition after a prototype swap. A named read such as `req.method` therefore misses V8's megamorphic
// property cache on every request and is resolved by a call into the runtime (1,000–1,700 instructions each under
// callgrind, Node 20). A keyed read, `req[key]`, whose key the compiler does not know as a constant, is resolved inside
// the megamorphic builtin instead (about 400), as long as the property is the request's own: one found on a prototype
// (Express's `app`, Node's `headers` getter) still goes to the runtime, and the Express adapter reads those otherwise.
// On a request whose hidden class is stable (Koa, Fastify, plain Node) both kinds of read cost the same. So the keys
// are read from an array at each use: the compiler never folds an element of a mutable array into a constant, as it
// can a literal's element or a module-level binding, which would turn the read back into a named one.

/** The names, in a fresh mutable array: index it at the read (`req[KEYS[0]]`), never copy an element out first. */
export function requestKeys<const N extends readonly string[]>(...names: N): { -readonly [I in keyof N]: string } {
  return [...names] as { -readonly [I in keyof N]: string };
}

/** A request object read by key. */
export type Keyed = Record<string, unknown>;
