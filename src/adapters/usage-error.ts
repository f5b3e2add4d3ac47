// Coded errors for adapter options that cannot work (thrown at start-up, never per request): the core's UsageError.
import { UsageError } from '../leaf/errors.js';

/** Code of the error thrown for adapter options that cannot work. */
export type AdapterUsageCode = 'adapter.options_invalid' | 'adapter.scopes_invalid';

/** A developer mistake in adapter options: a UsageError (a TypeError) with a stable `code`. */
export type AdapterUsageError = UsageError & { code: AdapterUsageCode };

/** Builds the error; callers `throw` it. */
export function usageError(code: AdapterUsageCode, message: string): AdapterUsageError {
  const help =
    code === 'adapter.scopes_invalid'
      ? 'requireScopes takes scope strings, or one { all?, any? } object with at least one scope'
      : 'tokenGuard takes a policy object, or a guard from createGuard()';
  return new UsageError(message, { code, help }) as AdapterUsageError;
}
