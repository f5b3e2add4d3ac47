import { describe, expect, it } from 'vitest';
import { HoursConstraint, checkHours, type HoursRule } from '../../src/checks/hours.js';
import { createGuard, MemoryStore, PolicyError } from '../../src/index.js';
import { basePolicy, signToken, storeApiKey, NOW } from '../helpers/tokens.js';

const at = (iso: string) => new Date(iso).getTime();
const hours = (rule: HoursRule) => new HoursConstraint(rule);
const officeBerlin = hours({ timezone: 'Europe/Berlin', windows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '08:00', to: '18:00' }] });

describe('HoursConstraint', () => {
  it('allows inside a weekday window in the zone and refuses outside it', () => {
    expect(officeBerlin.allows(at('2026-11-25T10:00:00Z'))).toBe(true); // Wed 11:00 CET
    expect(officeBerlin.allows(at('2026-11-25T07:00:00Z'))).toBe(true); // Wed 08:00 CET: from is inclusive
    expect(officeBerlin.allows(at('2026-11-25T06:59:00Z'))).toBe(false); // Wed 07:59 CET
    expect(officeBerlin.allows(at('2026-11-25T17:00:00Z'))).toBe(false); // Wed 18:00 CET: to is exclusive
    expect(officeBerlin.allows(at('2026-11-28T10:00:00Z'))).toBe(false); // Saturday
  });

  it('reads the wall clock of the zone, not UTC (the day can differ)', () => {
    const ny = hours({ timezone: 'America/New_York', windows: [{ days: ['tue'], from: '21:00', to: '23:00' }] });
    expect(ny.allows(at('2026-11-25T03:00:00Z'))).toBe(true); // Tue 22:00 EST, already Wednesday in UTC
    expect(ny.allows(at('2026-11-24T03:00:00Z'))).toBe(false); // Mon 22:00 EST
  });

  it('spans midnight when from is later than to, belonging to the day it starts', () => {
    const fridayNight = hours({ timezone: 'UTC', windows: [{ days: ['fri'], from: '22:00', to: '06:00' }] });
    expect(fridayNight.allows(at('2026-11-27T21:59:00Z'))).toBe(false); // Fri 21:59
    expect(fridayNight.allows(at('2026-11-27T22:00:00Z'))).toBe(true); // Fri 22:00
    expect(fridayNight.allows(at('2026-11-28T05:59:00Z'))).toBe(true); // Sat 05:59
    expect(fridayNight.allows(at('2026-11-28T06:00:00Z'))).toBe(false); // Sat 06:00
    expect(fridayNight.allows(at('2026-11-28T23:00:00Z'))).toBe(false); // Sat 23:00: Saturday night is not Friday night
    expect(fridayNight.allows(at('2026-11-27T03:00:00Z'))).toBe(false); // Fri 03:00 belongs to Thursday night
  });

  it('wraps Saturday night into Sunday morning', () => {
    const saturdayNight = hours({ timezone: 'UTC', windows: [{ days: ['sat'], from: '22:00', to: '02:00' }] });
    expect(saturdayNight.allows(at('2026-11-29T01:00:00Z'))).toBe(true); // Sun 01:00
    expect(saturdayNight.allows(at('2026-11-29T02:00:00Z'))).toBe(false);
  });

  it('accepts 24:00 as the end of the day', () => {
    const late = hours({ timezone: 'UTC', windows: [{ from: '20:00', to: '24:00' }] });
    expect(late.allows(at('2026-11-25T23:59:00Z'))).toBe(true);
    expect(late.allows(at('2026-11-26T00:00:00Z'))).toBe(false);
  });

  it('reads the first hour after midnight as 00, not 24', () => {
    const firstHour = hours({ timezone: 'Europe/Berlin', windows: [{ from: '00:00', to: '01:00' }] });
    expect(firstHour.allows(at('2026-11-25T23:30:00Z'))).toBe(true); // 00:30 CET
    expect(firstHour.allows(at('2026-11-25T22:30:00Z'))).toBe(false); // 23:30 CET
  });

  it('never matches a wall-clock time that a DST change skips', () => {
    const twoToThree = hours({ timezone: 'Europe/Berlin', windows: [{ from: '02:00', to: '03:00' }] });
    // 2026-03-29: Berlin jumps from 02:00 CET to 03:00 CEST.
    expect(twoToThree.allows(at('2026-03-29T00:59:00Z'))).toBe(false); // 01:59 CET
    expect(twoToThree.allows(at('2026-03-29T01:00:00Z'))).toBe(false); // 03:00 CEST
    expect(twoToThree.allows(at('2026-03-28T01:30:00Z'))).toBe(true); // the day before: 02:30 CET
  });

  it('matches both instants of a wall-clock time that a DST change repeats', () => {
    const twoToThree = hours({ timezone: 'Europe/Berlin', windows: [{ from: '02:00', to: '03:00' }] });
    // 2026-10-25: Berlin goes from 03:00 CEST back to 02:00 CET; 02:30 happens twice.
    expect(twoToThree.allows(at('2026-10-25T00:30:00Z'))).toBe(true); // 02:30 CEST
    expect(twoToThree.allows(at('2026-10-25T01:30:00Z'))).toBe(true); // 02:30 CET
    expect(twoToThree.allows(at('2026-10-25T02:00:00Z'))).toBe(false); // 03:00 CET
  });

  it('keeps the office window at the same wall-clock time across a DST change', () => {
    expect(officeBerlin.allows(at('2026-03-30T06:00:00Z'))).toBe(true); // Mon 08:00 CEST
    expect(officeBerlin.allows(at('2026-03-27T06:00:00Z'))).toBe(false); // Fri 07:00 CET
  });

  it('gives the right answer when instants alternate between minutes (per-minute cache)', () => {
    const a = at('2026-11-25T16:59:30Z');
    const b = at('2026-11-25T17:00:10Z');
    expect([officeBerlin.allows(a), officeBerlin.allows(b), officeBerlin.allows(a)]).toEqual([true, false, true]);
  });

  it('reports bad zones, times, days and empty windows', () => {
    expect(checkHours({ timezone: 'Mars/Olympus', windows: [] })[0]?.message).toMatch(/unknown time zone/);
    expect(checkHours({ timezone: 'UTC', windows: [{ from: '8:00', to: '18:00' }] })).toEqual([{ path: 'windows[0].from', message: 'expected HH:MM' }]);
    expect(checkHours({ timezone: 'UTC', windows: [{ from: '08:00', to: '08:00' }] })[0]?.message).toMatch(/empty/);
    expect(checkHours({ timezone: 'UTC', windows: [{ days: ['funday' as never], from: '08:00', to: '09:00' }] })[0]?.path).toBe('windows[0].days[0]');
    expect(() => hours({ timezone: 'UTC', windows: [{ from: '25:00', to: '26:00' }] })).toThrow(TypeError);
  });
});

describe('hours through the guard', () => {
  const saturday = new Date('2026-11-28T10:00:00Z');

  it('refuses outside policy hours with 403 hours.outside and no challenge', async () => {
    const guard = createGuard(await basePolicy({ hours: { timezone: 'Europe/Berlin', windows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '08:00', to: '18:00' }] } }));
    const token = await signToken({ scope: 'orders:read' }, { iat: Math.floor(saturday.getTime() / 1000) });
    const d = await guard.evaluate({ method: 'GET', path: '/orders/1', headers: { authorization: `Bearer ${token}` }, remoteAddress: '127.0.0.1', now: saturday });
    expect([d.status, d.reason, d.headers['WWW-Authenticate']]).toEqual([403, 'hours.outside', undefined]);
  });

  it('applies rule-level hours only to that rule', async () => {
    const guard = createGuard(
      await basePolicy({
        rules: [
          { path: '/batch/**', scopes: ['orders:read'], hours: { timezone: 'UTC', windows: [{ from: '01:00', to: '04:00' }] } },
          { path: '/**', scopes: ['orders:read'] },
        ],
      }),
    );
    const token = await signToken({ scope: 'orders:read' });
    const ask = (path: string) => guard.evaluate({ method: 'GET', path, headers: { authorization: `Bearer ${token}` }, remoteAddress: '127.0.0.1', now: NOW });
    expect((await ask('/batch/run')).reason).toBe('hours.outside');
    expect((await ask('/orders/1')).reason).toBe('ok');
  });

  it("applies an API key record's own hours on top of the policy", async () => {
    const store = new MemoryStore();
    const { key } = await storeApiKey(store, { hours: { timezone: 'UTC', windows: [{ days: ['sat', 'sun'], from: '00:00', to: '24:00' }] } });
    const guard = createGuard(await basePolicy({ store }));
    const ask = (now: Date) => guard.evaluate({ method: 'GET', path: '/orders/1', headers: { authorization: `Bearer ${key}` }, remoteAddress: '127.0.0.1', now });
    expect((await ask(NOW)).reason).toBe('hours.outside');
    expect((await ask(saturday)).reason).toBe('ok');
  });

  it('names the bad path of an invalid hours window at start-up', async () => {
    const policy = await basePolicy();
    const rules = [...(policy.rules ?? []), { path: '/x', hours: { timezone: 'UTC', windows: [{ from: '8am', to: '18:00' }] } }];
    expect(() => createGuard({ ...policy, rules })).toThrow(PolicyError);
    expect(() => createGuard({ ...policy, rules })).toThrow('rules[5].hours.windows[0].from: expected HH:MM');
    expect(() => createGuard({ ...policy, hours: { timezone: 'Europe/Berlinn', windows: [{ from: '08:00', to: '18:00' }] } })).toThrow(
      'hours.timezone: unknown time zone: "Europe/Berlinn"',
    );
  });
});
