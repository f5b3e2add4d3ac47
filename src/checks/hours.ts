// Allowed hours: windows of days and HH:MM ranges in an IANA time zone, compiled to a minute-of-week bitmap.
import { z } from 'zod';
import { checkHours, DAYS, MINUTES_PER_DAY, parseHHMM, type HoursRule } from '../leaf/hours-rule.js';
import { defineCheck } from './check.js';

export { checkHours, DAYS, isValidTimeZone, parseHHMM, type Day, type HoursRule, type HoursWindow } from '../leaf/hours-rule.js';

const MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY;

const WEEKDAY_INDEX: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };

/**
 * Wall-clock minute of the week in one zone. `Intl` costs ~1 µs a call, and the answer only changes
 * once a minute, so the last minute's answer is kept. Reading the wall clock for each instant (rather
 * than adding an offset) is what makes DST right: a skipped hour never occurs, a repeated one occurs twice.
 * The kept answer covers the wall-clock minute, not the UTC one: an offset with seconds (Africa/Monrovia
 * until 1972, LMT anywhere) turns the local minute part-way through the UTC minute.
 */
class ZoneClock {
  private readonly fmt: Intl.DateTimeFormat;
  /** The runtime's canonical name of the zone (`Europe/Berlin` for `europe/berlin`). */
  readonly zone: string;
  private from = Number.NaN;
  private until = Number.NaN;
  private value = 0;

  constructor(zone: string) {
    this.fmt = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      // 'h23', not hour12: false, which prints midnight as 24:00 in some engines.
      hourCycle: 'h23',
    });
    this.zone = this.fmt.resolvedOptions().timeZone;
  }

  minuteOfWeek(ms: number): number {
    if (ms >= this.from && ms < this.until) return this.value;
    let day = 0;
    let hour = 0;
    let min = 0;
    let sec = 0;
    for (const part of this.fmt.formatToParts(ms)) {
      if (part.type === 'weekday') day = WEEKDAY_INDEX[part.value] ?? 0;
      else if (part.type === 'hour') hour = Number(part.value) % 24;
      else if (part.type === 'minute') min = Number(part.value);
      else if (part.type === 'second') sec = Number(part.value);
    }
    // Offsets are whole seconds, so the wall-clock minute began `sec` seconds (and this second's ms) ago.
    this.from = ms - sec * 1000 - (((ms % 1000) + 1000) % 1000);
    this.until = this.from + 60_000;
    this.value = day * MINUTES_PER_DAY + hour * 60 + min;
    return this.value;
  }
}

// One clock per zone, shared by every constraint that uses it. Key records bring their own zones (app data, perhaps a
// tenant's input), and zone names are case-insensitive (`europe/BERLIN`), so a map keyed by spelling could grow
// without end: clocks are kept under the runtime's canonical name (its zone database bounds those: a few hundred),
// and past MAX_SHARED_CLOCKS a constraint keeps a clock of its own, freed with it. Nothing is evicted: a kept clock is
// correct forever, and a constraint's answers do not depend on whether its clock is shared.
const MAX_SHARED_CLOCKS = 256;
const clocks = new Map<string, ZoneClock>();
function clockFor(zone: string): ZoneClock {
  const kept = clocks.get(zone);
  if (kept) return kept;
  const c = new ZoneClock(zone);
  const shared = clocks.get(c.zone);
  if (shared) return shared;
  if (clocks.size < MAX_SHARED_CLOCKS) clocks.set(c.zone, c);
  return c;
}

/** How many zone clocks are kept for sharing (at most MAX_SHARED_CLOCKS), for tests. */
export function sharedZoneClocks(): number {
  return clocks.size;
}

/** A compiled hours rule. */
export class HoursConstraint {
  private readonly clock: ZoneClock;
  private readonly allowed = new Uint8Array(MINUTES_PER_WEEK);

  /** Throws TypeError on an invalid rule; policies are checked before this runs. */
  constructor(rule: HoursRule) {
    const problems = checkHours(rule);
    if (problems.length) throw new TypeError(problems.map((p) => `${p.path}: ${p.message}`).join('; '));
    this.clock = clockFor(rule.timezone);
    for (const w of rule.windows) {
      const from = parseHHMM(w.from) as number;
      const to = parseHHMM(w.to, true) as number;
      const days = w.days ?? DAYS;
      for (const d of days) {
        const start = DAYS.indexOf(d) * MINUTES_PER_DAY + from;
        const length = to > from ? to - from : MINUTES_PER_DAY - from + to;
        // A window past midnight runs on into the next day, and Saturday night into Sunday (index wraps).
        for (let m = 0; m < length; m++) this.allowed[(start + m) % MINUTES_PER_WEEK] = 1;
      }
    }
  }

  /** Whether the instant falls in an allowed window. */
  allows(ms: number): boolean {
    return this.allowed[this.clock.minuteOfWeek(ms)] === 1;
  }
}

const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected HH:MM');

/** An HoursRule: policies, rules, risk's offHours and key records all use this one schema. */
export const hoursSchema = z
  .strictObject({
    timezone: z.string(),
    windows: z
      .array(
        z.strictObject({
          days: z
            .array(z.enum(DAYS as [string, ...string[]]))
            .min(1)
            .optional(),
          from: hhmm,
          to: z.union([hhmm, z.literal('24:00')], { error: 'expected HH:MM' }),
        }),
      )
      .min(1, 'expected at least one window'),
  })
  .superRefine((v, ctx) => {
    for (const p of checkHours(v as HoursRule)) {
      if (p.message !== 'expected HH:MM')
        ctx.addIssue({
          code: 'custom',
          message: p.message,
          path: p.path
            .split(/\.|\[|\]/)
            .filter(Boolean)
            .map((s) => (/^\d+$/.test(s) ? Number(s) : s)),
        });
    }
  });

/** The policy's `hours`. */
export interface HoursPolicySlice {
  /** Allowed hours for every request. */
  hours?: HoursRule;
}

/** A rule's `hours`. */
export interface HoursRuleSlice {
  /** Hours for this rule (on top of the policy's). */
  hours?: HoursRule;
}

/** Allowed hours: policy, rule and key record (`hours.outside`). */
export const hoursCheck = defineCheck<HoursPolicySlice, HoursRuleSlice, HoursRule, HoursConstraint>({
  name: 'hours',
  phase: 'constraints',
  order: 20,
  policyKey: 'hours',
  ruleKey: 'hours',
  recordKey: 'hours',
  policySchema: hoursSchema,
  compile: (rule) => new HoursConstraint(rule),
  check: (ctx, c) => (c.allows(ctx.nowMs) ? undefined : 'hours.outside'),
});
