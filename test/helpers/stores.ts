// A store seen through a wrapper around every method call: to count calls, to answer later as a remote store does,
// or to fail some of them, while the store underneath keeps the state.
import { MemoryStore } from '../../src/index.js';

/** How a wrapped store answers one call: `call()` runs it on the store underneath. */
export type AroundCall = (method: string | symbol, call: () => unknown) => unknown;

/** `inner` with every method call (not the constructor) passed through `around`; other properties read as they are. */
export function wrapStore<S extends object>(inner: S, around: AroundCall): S {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function' || prop === 'constructor') return v;
      return (...args: unknown[]) => around(prop, () => (v as (...a: unknown[]) => unknown).apply(target, args));
    },
  });
}

/** A MemoryStore that counts every call made to it. */
export function countingStore(): { store: MemoryStore; calls: () => number } {
  let n = 0;
  const store = wrapStore(new MemoryStore(), (_method, call) => {
    n++;
    return call();
  });
  return { store, calls: () => n };
}

/** `inner` answering every call with a promise (a synchronous answer made asynchronous, as a remote store's is). */
export function asyncStore<S extends object>(inner: S): S {
  return wrapStore(inner, (_method, call) => Promise.resolve(call()));
}

/** What `fn` threw or rejected with (fails the test when it answered). */
export async function thrown(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected the call to be refused, but it answered');
}
