// Property: hour windows agree, minute by minute across DST changes, with a reference that reads each
// instant's wall clock from Intl and applies the windows as the README words them.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { HoursConstraint, checkHours, type Day, type HoursRule } from '../../src/checks/hours.js';
import { FUZZ_TIMEOUT, fuzzParams } from './runs.js';

const NAMED = ['Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Kolkata', 'Pacific/Chatham', 'UTC', 'America/Sao_Paulo', 'Africa/Casablanca'];
const ALL_ZONES = Intl.supportedValuesOf('timeZone');
const DAY_NAMES: Day[] = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

const wallFormats = new Map<string, Intl.DateTimeFormat>();
/** The reference wall clock: a different formatter from the guard's (numeric date, weekday derived by hand). */
function wallClock(zone: string, ms: number): { day: number; minute: number } {
  let f = wallFormats.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-GB', { timeZone: zone, year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', hourCycle: 'h23' });
    wallFormats.set(zone, f);
  }
  const p: Record<string, number> = {};
  for (const part of f.formatToParts(ms)) if (part.type !== 'literal') p[part.type] = Number(part.value);
  const day = new Date(Date.UTC(p['year'] as number, (p['month'] as number) - 1, p['day'] as number)).getUTCDay();
  return { day, minute: (p['hour'] as number) * 60 + (p['minute'] as number) };
}

const toMinutes = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3));

/** The README's rule: `from` inclusive, `to` exclusive; a window past midnight belongs to the day it starts. */
function refAllows(rule: HoursRule, ms: number): boolean {
  const { day, minute } = wallClock(rule.timezone, ms);
  const yesterday = DAY_NAMES[(day + 6) % 7] as Day;
  const today = DAY_NAMES[day] as Day;
  return rule.windows.some((w) => {
    const days = w.days ?? DAY_NAMES;
    const from = toMinutes(w.from);
    const to = toMinutes(w.to);
    if (from < to) return days.includes(today) && minute >= from && minute < to;
    return (days.includes(today) && minute >= from) || (days.includes(yesterday) && minute < to);
  });
}

/** UTC offset (ms) of a zone at an instant, to find its transitions. */
function offsetAt(zone: string, ms: number): number {
  const { day, minute } = wallClock(zone, ms);
  const utc = new Date(ms);
  let diff = (day - utc.getUTCDay()) * 1440 + minute - (utc.getUTCHours() * 60 + utc.getUTCMinutes());
  if (diff > 7 * 720) diff -= 7 * 1440;
  if (diff < -7 * 720) diff += 7 * 1440;
  return diff * 60_000;
}

/** Instants (to the minute) at which the named zones change offset in 2025 and 2026: the DST changes. */
const transitions: { zone: string; at: number }[] = [];
for (const zone of NAMED) {
  const start = Date.UTC(2025, 0, 1);
  for (let t = start; t < Date.UTC(2027, 0, 1); t += 86_400_000) {
    if (offsetAt(zone, t) === offsetAt(zone, t + 86_400_000)) continue;
    let lo = t;
    let hi = t + 86_400_000;
    while (hi - lo > 60_000) {
      const mid = lo + Math.floor((hi - lo) / 120_000) * 60_000;
      if (offsetAt(zone, mid) === offsetAt(zone, t)) lo = mid;
      else hi = mid;
    }
    transitions.push({ zone, at: hi });
  }
}

const hhmm = fc.tuple(fc.nat(23), fc.oneof(fc.constantFrom(0, 30, 45, 59), fc.nat(59))).map(([h, m]) => `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}`);
const window = fc.record({ days: fc.subarray(DAY_NAMES, { minLength: 1 }), from: hhmm, to: fc.oneof(hhmm, fc.constant('24:00')) }, { requiredKeys: ['from', 'to'] });
/** A zone and a starting instant: near a DST change of a named zone, or anywhere in any zone. */
const start = fc.oneof(
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.constantFrom(...transitions), fc.integer({ min: -120, max: 30 }), fc.nat(59_999))
      .map(([t, min, ms]) => ({ zone: t.zone, at: t.at + min * 60_000 + ms })),
  },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...ALL_ZONES), fc.integer({ min: Date.UTC(1990, 0, 1), max: Date.UTC(2060, 0, 1) })).map(([zone, at]) => ({ zone, at })) },
  // Offsets with seconds: Monrovia until 1972, local mean time anywhere before standard time.
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom('Africa/Monrovia', 'Europe/Dublin', 'Asia/Kolkata', ...NAMED), fc.integer({ min: Date.UTC(1850, 0, 1), max: Date.UTC(1972, 0, 1) }))
      .map(([zone, at]) => ({ zone, at })),
  },
);

describe('fuzz: hour windows', () => {
  it('finds DST changes in every named zone that has them', () => {
    for (const zone of ['Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'Pacific/Chatham']) {
      expect(transitions.filter((t) => t.zone === zone).length, zone).toBeGreaterThanOrEqual(4);
    }
  });

  it(
    'allows exactly the instants the minute-by-minute reference allows, across DST changes and midnight',
    () => {
      fc.assert(
        fc.property(start, fc.array(window, { minLength: 1, maxLength: 3 }), fc.array(fc.nat(29_999), { minLength: 180, maxLength: 180 }), ({ zone, at }, windows, jitter) => {
          const rule: HoursRule = { timezone: zone, windows };
          fc.pre(checkHours(rule).length === 0);
          const hours = new HoursConstraint(rule);
          // Three hours in one-minute steps, each moved by up to a minute, so two reads can share a UTC minute.
          for (let i = 0; i < jitter.length; i++) {
            const ms = at + i * 60_000 + (jitter[i] as number) * 2;
            if (hours.allows(ms) !== refAllows(rule, ms)) {
              const { day, minute } = wallClock(zone, ms);
              expect.fail(
                `${new Date(ms).toISOString()} in ${zone} (local ${DAY_NAMES[day]} ${Math.floor(minute / 60)}:${minute % 60}): guard ${hours.allows(ms)}, reference ${refAllows(rule, ms)}, windows ${JSON.stringify(windows)}`,
              );
            }
          }
        }),
        fuzzParams(0.1),
      );
    },
    FUZZ_TIMEOUT,
  );
});
