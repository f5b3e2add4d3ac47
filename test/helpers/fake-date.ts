// A faked wall clock for each test of a file: Date.now moves only when the test moves it, while timers stay real
// (a fetch timeout or a server's socket still fires).
import { afterEach, beforeEach, vi } from 'vitest';

/** Before each test of the enclosing file or describe, fakes Date alone and sets it to `start`; after it, real again. */
export function fakeDateEachTest(start: Date | number): void {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(start);
  });
  afterEach(() => {
    vi.useRealTimers();
  });
}
