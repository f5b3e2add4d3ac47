// Option values the commands share: times, durations, rate limits, key=value pairs.
import { parseDuration } from '../leaf/duration.js';
import { MAX_CLOCK_TOLERANCE_MS } from '../tokens/clock-tolerance.js';
import { usage } from './exit.js';
import { shownValue } from '../leaf/errors.js';

/**
 * Epoch milliseconds below this (March 1973) are refused: such a number is most likely epoch seconds (a JWT's `exp`)
 * or a bare year, read as milliseconds it would name a time in 1970 and the command would do nothing useful.
 */
const MIN_EPOCH_MS = 1e11;

/** `--at 2026-01-01T12:00:00Z`, `--at 1767268800000` or `now` → epoch ms. */
export function parseTime(flag: string, value: string, now: number): number {
  if (value === 'now') return now;
  const digits = /^\d+$/.test(value);
  const ms = digits ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms) || !Number.isFinite(new Date(ms).getTime())) {
    throw usage(`${flag}: expected an ISO 8601 time (2026-01-31T09:00:00Z), epoch milliseconds or "now" (got ${JSON.stringify(value)})`);
  }
  if (digits && ms < MIN_EPOCH_MS) {
    throw usage(`${flag}: ${value} read as epoch milliseconds is ${new Date(ms).toISOString()}: epoch seconds (a JWT's exp) are ${value}000 in ms`, 'or give an ISO 8601 time');
  }
  return ms;
}

/** `--expires-at`: a time still to come (one already passed would keep nothing: the command would store nothing). */
export function parseFutureTime(flag: string, value: string, now: number): number {
  const ms = parseTime(flag, value, now);
  if (ms <= now) {
    throw usage(`${flag}: ${new Date(ms).toISOString()} has already passed, so nothing would be kept`, 'a token past its expiry is refused anyway; give a time to come');
  }
  return ms;
}

/** `--expires-in 90d` → ms above zero. */
export function parseDurationFlag(flag: string, value: string): number {
  const ms = parseDuration(/^\d+$/.test(value) ? Number(value) : value);
  if (ms === undefined || ms === 0) throw usage(`${flag}: expected a duration above zero like 30s, 10m, 12h, 90d or milliseconds (got ${JSON.stringify(value)})`);
  return ms;
}

/**
 * `--clock-tolerance 30` → 30 000 ms: seconds, as `guard.clockTolerance` gives them, to the millisecond, from 0 to the
 * library's cap (300). Only digits and one point: `1e400`, `NaN`, `Infinity` and `-1` never reach Number().
 */
export function parseClockTolerance(flag: string, value: string): number {
  const m = /^(\d{1,6})(?:\.(\d{1,3}))?$/.exec(value);
  if (!m) {
    throw usage(
      `${flag}: expected seconds from 0 to ${MAX_CLOCK_TOLERANCE_MS / 1000}, like 5 or 0.5 (got ${shownValue(value)})`,
      "give the app's guard.clockTolerance (its largest jwt.clockTolerance, in seconds)",
    );
  }
  const ms = Number(m[1]) * 1000 + Number((m[2] ?? '').padEnd(3, '0'));
  if (ms > MAX_CLOCK_TOLERANCE_MS) {
    throw usage(
      `${flag}: at most ${MAX_CLOCK_TOLERANCE_MS / 1000} seconds (got ${value}): the library refuses a larger clock tolerance, so no app reads keys or keeps revocations with one`,
      "give the app's guard.clockTolerance (its largest jwt.clockTolerance, in seconds)",
    );
  }
  return ms;
}

/** `--rate-limit 100/1m` → `{ limit: 100, window: '1m' }`. */
export function parseRateLimit(flag: string, value: string): { limit: number; window: string | number } {
  const m = /^(\d+)\/(\S+)$/.exec(value);
  if (!m) throw usage(`${flag}: expected LIMIT/WINDOW like 100/1m (got ${JSON.stringify(value)})`);
  const window = /^\d+$/.test(m[2] as string) ? Number(m[2]) : (m[2] as string);
  return { limit: Number(m[1]), window };
}

/** `--metadata team=billing --metadata tier=2` → `{ team: 'billing', tier: '2' }` (values stay strings). */
export function parsePairs(flag: string, values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq <= 0) throw usage(`${flag}: expected KEY=VALUE (got ${JSON.stringify(v)})`);
    out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}

/** A JSON option value (`--hours '{"timezone":"UTC","windows":[…]}'`). */
export function parseJson(flag: string, value: string): unknown {
  try {
    return JSON.parse(value) as unknown;
  } catch (err) {
    throw usage(`${flag}: expected JSON (${(err as Error).message})`);
  }
}
