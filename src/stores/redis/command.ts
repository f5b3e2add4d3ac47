// Every Redis call RedisStore makes goes through here: bounded by commandTimeout, failing only with StoreError, and
// sent only once the store may send it (durability: 'require' holds every call until its verdict on the server).
// RedisContext bundles that call with what the store's parts send it (client, scripts, key layout).
import type { Cluster, Redis } from 'ioredis';
import { StoreError } from '../../leaf/errors.js';
import type { KeyLayout } from './keys.js';
import type { ScriptCommands } from './lua.js';

/**
 * Runs one Redis call (named `what` in its error) within the store's time bound. `send` sends the command and is
 * called at most once: never when the call is refused, nor when its time runs out before it may be sent. A thunk,
 * not a promise, because an ioredis promise is a command already on its way: a write held back by its answer alone
 * would land in Redis while the caller is told it failed.
 */
export type Call = <T>(what: string, send: () => Promise<T>) => Promise<T>;

/** Whether a call may be sent now (`undefined`), must fail with an error instead, or waits for a promise that rejects when it must fail. */
export type Admission = () => undefined | Error | Promise<unknown>;

/**
 * A `Call` that rejects with StoreError after `timeoutMs`, and turns every other failure into a StoreError too. With
 * `admit`, a call is sent only once admitted; one that waits to be admitted does so within the same `timeoutMs`.
 */
export function boundedCall(timeoutMs: number, admit?: Admission): Call {
  if (admit === undefined) return (what, send) => bounded(what, timeoutMs, send());
  return <T>(what: string, send: () => Promise<T>): Promise<T> => {
    const verdict = admit();
    // The hot path, as without a gate: sent at once.
    if (verdict === undefined) return bounded(what, timeoutMs, send());
    if (verdict instanceof Error) return Promise.reject(verdict);
    return admitted(what, timeoutMs, verdict, send);
  };
}

function failure(what: string, err: unknown): StoreError {
  return err instanceof StoreError ? err : new StoreError(`Redis ${what} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

function bounded<T>(what: string, timeoutMs: number, promise: Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new StoreError(`Redis ${what} timed out after ${timeoutMs} ms`)), timeoutMs);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(failure(what, err));
      },
    );
  });
}

/** Sends once `verdict` resolves, if the bound has not run out by then; a rejected verdict is the call's failure, and nothing is sent. */
function admitted<T>(what: string, timeoutMs: number, verdict: Promise<unknown>, send: () => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let late = false;
    // Half the bound gone: from then on the call is failed unsent rather than sent (below). A timer, not a clock
    // reading, so that it keeps time with the bound itself.
    let halfGone = false;
    const half = setTimeout(() => {
      halfGone = true;
    }, timeoutMs / 2);
    const timer = setTimeout(() => {
      late = true;
      reject(new StoreError(`Redis ${what} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    const fail = (err: unknown): void => {
      clearTimeout(timer);
      clearTimeout(half);
      reject(failure(what, err));
    };
    verdict.then(() => {
      clearTimeout(half);
      // Timed out while waiting: the caller was told it failed, so nothing may be sent behind its back.
      if (late) return;
      // Admitted with less than half its bound left, a write would most likely land after its caller was told it timed
      // out: failed unsent instead, so a retry never spends twice.
      if (halfGone) {
        fail(new StoreError(`Redis ${what} timed out after ${timeoutMs} ms (not sent: the durability check answered too late)`));
        return;
      }
      let sent: Promise<T>;
      try {
        sent = send();
      } catch (err) {
        fail(err);
        return;
      }
      sent.then((value) => {
        clearTimeout(timer);
        resolve(value);
      }, fail);
    }, fail);
  });
}

/** What RedisStore's parts send their commands with: the app's client, the scripts on it, the key layout, `Call`. */
export interface RedisContext {
  client: Redis | Cluster;
  cmd: ScriptCommands;
  keys: KeyLayout;
  call: Call;
}
