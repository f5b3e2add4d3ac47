// Durations in policies: '250ms', '30s', '10m', '1h', '7d', or a number of milliseconds.
import { z } from 'zod';
import { shownValue, UsageError } from './errors.js';

/** A duration: milliseconds as a number, or a string such as `'30s'`, `'10m'`, `'1h'`, `'7d'`. */
export type Duration = number | `${number}${'ms' | 's' | 'm' | 'h' | 'd'}`;

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

/**
 * Longest delay a timer can take: Node's setTimeout (and AbortSignal.timeout) store it in a signed 32-bit
 * integer and fire after 1 ms for anything longer, so a long timeout would silently become an instant one.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Parses a duration to milliseconds, or returns undefined when it is not one (negative, NaN, infinite, bad unit). */
export function parseDuration(value: unknown): number | undefined {
  let ms: number;
  if (typeof value === 'number') ms = value;
  else if (typeof value === 'string') {
    const m = DURATION_RE.exec(value.trim());
    if (!m) return undefined;
    ms = Number(m[1]) * (UNIT_MS[m[2] as string] as number);
  } else return undefined;
  // '1e400' and a string of 400 digits both parse to Infinity: not a duration.
  return Number.isFinite(ms) && ms >= 0 ? ms : undefined;
}

/**
 * Why a value cannot be a timer duration (one handed to setTimeout), or undefined when it can: a
 * duration above zero and at most MAX_TIMER_MS. Zero is refused: a zero timeout fails every call.
 * Shared by the policy schema and options validated outside it (store timeouts).
 */
export function timerDurationProblem(value: unknown): string | undefined {
  const ms = parseDuration(value);
  if (ms === undefined) return `expected a duration like '250ms', '5s' or milliseconds (got ${shownValue(value)})`;
  if (ms === 0) return 'expected a duration greater than zero';
  if (ms > MAX_TIMER_MS) return `expected at most ${MAX_TIMER_MS} ms (about 24.8 days): a longer timer fires at once`;
  return undefined;
}

/** A timer duration in whole milliseconds (at least 1), or throws TypeError naming `name` when the value is not one. */
export function parseTimerDuration(name: string, value: unknown): number {
  const problem = timerDurationProblem(value);
  if (problem !== undefined) throw new UsageError(`${name}: ${problem}`);
  return Math.max(1, Math.ceil(parseDuration(value) as number));
}

/** Zod schema for a duration that `problem` (undefined: none) judges, for policy and option schemas. */
export function durationSchemaOf(problem: (value: unknown) => string | undefined) {
  return z.union([z.number(), z.string()]).superRefine((v, ctx) => {
    const found = problem(v);
    if (found !== undefined) ctx.addIssue({ code: 'custom', message: found });
  });
}

/** Zod schema for a timer duration (see timerDurationProblem), for policy and option schemas. */
export const timerDurationSchema = durationSchemaOf(timerDurationProblem);

/** Zod schema for any duration (zero included). */
export const durationSchema = durationSchemaOf((v) =>
  parseDuration(v) === undefined ? `expected a duration like '30s', '10m', '1h', '7d' or milliseconds (got ${shownValue(v)})` : undefined,
);

/** Zod schema for a duration above zero. */
export const positiveDurationSchema = durationSchema.superRefine((v, ctx) => {
  if (parseDuration(v) === 0) ctx.addIssue({ code: 'custom', message: 'expected a duration greater than zero' });
});
