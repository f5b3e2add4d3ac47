// The bound on every clock tolerance: `jwt.clockTolerance`, a SET receiver's and key lifecycle's `clockTolerance`.
// A tolerance widens `exp`, `nbf`, `maxTokenAge`, step-up `max_age` and revocation cut-offs by itself: a large one
// (a `'7d'` meant as a maximum age) would quietly keep expired tokens and stale logins working for that long.
import { z } from 'zod';
import { parseDuration } from '../leaf/duration.js';

/** The largest clock tolerance accepted, in ms: 5 minutes (Kerberos' default skew), ample for clocks kept by NTP. */
export const MAX_CLOCK_TOLERANCE_MS = 300_000;

/** Why a value cannot be a clock tolerance, or undefined when it can: a duration from 0 to MAX_CLOCK_TOLERANCE_MS. */
export function clockToleranceProblem(value: unknown): string | undefined {
  const ms = parseDuration(value);
  if (ms === undefined) return `expected a duration like '5s', '500ms' or milliseconds, 0 or more (got ${describe(value)})`;
  if (ms > MAX_CLOCK_TOLERANCE_MS) {
    return (
      `expected at most '5m' (got ${describe(value)}): the tolerance stretches exp, nbf, maxTokenAge and step-up max_age ` +
      'by as much, so expired tokens and stale logins would pass that long. Clocks kept by NTP differ by well under a second; ' +
      'to limit how old a token may be, use jwt.maxTokenAge'
    );
  }
  return undefined;
}

/** Zod schema for a clock tolerance (see clockToleranceProblem). */
export const clockToleranceSchema = z.union([z.number(), z.string()]).superRefine((v, ctx) => {
  const problem = clockToleranceProblem(v);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
});

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) return String(value);
  return typeof value;
}
