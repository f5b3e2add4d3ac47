// Every Redis call RedisStore makes goes through here: bounded by commandTimeout, and failing only with StoreError.
// RedisContext bundles that call with what the store's parts send it (client, scripts, key layout).
import type { Cluster, Redis } from 'ioredis';
import { StoreError } from '../../leaf/errors.js';
import type { KeyLayout } from './keys.js';
import type { ScriptCommands } from './lua.js';

/** Runs one Redis call (named `what` in its error) within the store's time bound. */
export type Call = <T>(what: string, promise: Promise<T>) => Promise<T>;

/** A `Call` that rejects with StoreError after `timeoutMs`, and turns every other failure into a StoreError too. */
export function boundedCall(timeoutMs: number): Call {
  return <T>(what: string, promise: Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new StoreError(`Redis ${what} timed out after ${timeoutMs} ms`)), timeoutMs);
      promise.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err instanceof StoreError ? err : new StoreError(`Redis ${what} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
        },
      );
    });
}

/** What RedisStore's parts send their commands with: the app's client, the scripts on it, the key layout, `Call`. */
export interface RedisContext {
  client: Redis | Cluster;
  cmd: ScriptCommands;
  keys: KeyLayout;
  call: Call;
}
