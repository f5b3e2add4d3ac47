// Rejections nobody handled, caught for a test file instead of ending the run: a synchronous user callback that
// answers with a rejected promise would end a Node process by default, and these tests show that none is left.
import { afterEach, beforeEach } from 'vitest';

/** Registers hooks that collect each test's unhandled rejections into the returned array (emptied before each test). */
export function collectUnhandledRejections(): unknown[] {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  beforeEach(() => {
    unhandled.length = 0;
    process.on('unhandledRejection', onUnhandled);
  });
  afterEach(() => {
    process.off('unhandledRejection', onUnhandled);
  });
  return unhandled;
}

/** Node reports an unhandled rejection once the microtask queue is drained: one macrotask later it has been seen. */
export const afterRejectionsAreReported = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));
