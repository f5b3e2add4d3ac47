// Coded TypeErrors for adapter options that cannot work (thrown at start-up, never per request).
// Kept in one place so that switching to the core's UsageError is a one-file change.

/** Code of the TypeError thrown for adapter options that cannot work. */
export type AdapterUsageCode = 'adapter.options_invalid' | 'adapter.scopes_invalid';

/** A developer mistake in adapter options: a TypeError with a stable `code`. */
export type AdapterUsageError = TypeError & { code: AdapterUsageCode };

/** Builds the error; callers `throw` it. */
export function usageError(code: AdapterUsageCode, message: string): AdapterUsageError {
  return Object.assign(new TypeError(message), { code });
}
