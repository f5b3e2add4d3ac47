// Synchronous user callbacks (claims predicates, risk signals, telemetry hooks, otel's spanAttributes, a SET receiver's
// subjectOf) that answer with a promise anyway. Its value comes too late for a caller that decides synchronously, and a
// rejection nobody handles ends the process (Node's default `--unhandled-rejections=throw`): one place settles them.

/**
 * Whether `fn` is an `async` function (or async generator): it answers with a promise, too late for a caller that
 * decides synchronously. Refused where the option is given, so the mistake shows at start-up.
 */
export function isAsyncFunction(fn: unknown): boolean {
  const tag = Object.prototype.toString.call(fn);
  return tag === '[object AsyncFunction]' || tag === '[object AsyncGeneratorFunction]';
}

/**
 * Settles a promise a synchronous callback returned by mistake: its value is not waited for (the caller decides
 * without it), and its rejection is handled here rather than left unhandled, which would end the process.
 */
export function dropPromise(p: PromiseLike<unknown>): void {
  try {
    Promise.resolve(p).then(undefined, () => undefined);
  } catch {
    // A thenable whose `constructor` getter throws: nothing was started that could reject unhandled by us.
  }
}

/**
 * When a callback's answer is a promise (any thenable, not only a native Promise), drops it with its rejection
 * handled and answers true; any other answer gives false. A `then` getter that throws makes no promise.
 */
export function droppedPromise(value: unknown): boolean {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return false;
  let then: unknown;
  try {
    then = (value as { then?: unknown }).then;
  } catch {
    return false;
  }
  if (typeof then !== 'function') return false;
  dropPromise(value as PromiseLike<unknown>);
  return true;
}

/**
 * Epoch ms from a `clock` option, or `Date.now` without one: no Date is made per call then. An answer that is no
 * Date (an Invalid Date, a promise from an async clock that slipped through: dropped, its rejection handled) is NaN,
 * which the caller refuses.
 */
export function clockMs(clock: (() => Date) | undefined): () => number {
  if (!clock) return Date.now;
  return () => {
    const t: unknown = clock();
    return droppedPromise(t) ? Number.NaN : ((t as { getTime?: () => number } | null | undefined)?.getTime?.() ?? Number.NaN);
  };
}
