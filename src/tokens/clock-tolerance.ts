// The bound on every clock tolerance: `jwt.clockTolerance`, a SET receiver's and key lifecycle's `clockTolerance`.
// A tolerance widens `exp`, `nbf`, `maxTokenAge`, step-up `max_age` and revocation cut-offs by itself: a large one
// (a `'7d'` meant as a maximum age) would quietly keep expired tokens and stale logins working for that long.
import { durationSchemaOf, parseDuration } from '../leaf/duration.js';
import { shownValue } from '../leaf/errors.js';

/** The largest clock tolerance accepted, in ms: 5 minutes (Kerberos' default skew), ample for clocks kept by NTP. */
export const MAX_CLOCK_TOLERANCE_MS = 300_000;

/** Why a value cannot be a clock tolerance, or undefined when it can: a duration from 0 to MAX_CLOCK_TOLERANCE_MS. */
export function clockToleranceProblem(value: unknown): string | undefined {
  const ms = parseDuration(value);
  if (ms === undefined) return `expected a duration like '5s', '500ms' or milliseconds, 0 or more (got ${shownValue(value)})`;
  if (ms > MAX_CLOCK_TOLERANCE_MS) {
    return (
      `expected at most '5m' (got ${shownValue(value)}): the tolerance stretches exp, nbf, maxTokenAge and step-up max_age ` +
      'by as much, so expired tokens and stale logins would pass that long. Clocks kept by NTP differ by well under a second; ' +
      'to limit how old a token may be, use jwt.maxTokenAge'
    );
  }
  return undefined;
}

/** Zod schema for a clock tolerance (see clockToleranceProblem). */
export const clockToleranceSchema = durationSchemaOf(clockToleranceProblem);
