// The shape of an hours rule and its validation: data that policies, key records and the hours check share.

/** Day names accepted in `days`. */
export type Day = 'mon' | 'tue' | 'wed' | 'thu' | 'fri' | 'sat' | 'sun';

/** One window: on `days` (default every day), from `from` (inclusive) to `to` (exclusive), HH:MM local time. */
export interface HoursWindow {
  days?: readonly Day[];
  from: string;
  to: string;
}

/** Allowed hours. A window whose `from` is later than its `to` spans midnight and belongs to the day it starts. */
export interface HoursRule {
  /** IANA zone name, e.g. `Europe/Berlin`, or `UTC`. */
  timezone: string;
  windows: readonly HoursWindow[];
}

export const DAYS: readonly Day[] = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
/** Minutes in a day. */
export const MINUTES_PER_DAY = 1440;
const HHMM_RE = /^([01]\d|2[0-3]):([0-5]\d)$/;

/** Minutes since midnight for `HH:MM`; `24:00` is accepted where `allow24` (as an exclusive end). */
export function parseHHMM(s: string, allow24 = false): number | undefined {
  if (allow24 && s === '24:00') return MINUTES_PER_DAY;
  const m = HHMM_RE.exec(s);
  return m ? Number(m[1]) * 60 + Number(m[2]) : undefined;
}

/** Whether `zone` is an IANA time zone this runtime knows. */
export function isValidTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** Why an hours rule is invalid (path-relative messages), or an empty list when it is fine. */
export function checkHours(rule: HoursRule): { path: string; message: string }[] {
  const problems: { path: string; message: string }[] = [];
  if (typeof rule.timezone !== 'string' || !Array.isArray(rule.windows)) return [{ path: '', message: 'expected { timezone, windows }' }];
  if (!isValidTimeZone(rule.timezone)) problems.push({ path: 'timezone', message: `unknown time zone: "${rule.timezone}"` });
  rule.windows.forEach((w, i) => {
    const from = parseHHMM(w.from);
    const to = parseHHMM(w.to, true);
    if (from === undefined) problems.push({ path: `windows[${i}].from`, message: 'expected HH:MM' });
    if (to === undefined) problems.push({ path: `windows[${i}].to`, message: 'expected HH:MM' });
    if (from !== undefined && from === to) problems.push({ path: `windows[${i}]`, message: '"from" and "to" are equal: the window is empty' });
    (w.days as readonly string[] | undefined)?.forEach((d: string, j: number) => {
      if (!(DAYS as readonly string[]).includes(d)) problems.push({ path: `windows[${i}].days[${j}]`, message: `expected one of ${DAYS.join(', ')}` });
    });
  });
  return problems;
}
