// The hours check shares one wall clock per time zone. Key records bring their own zones (an app's data, perhaps a
// tenant's input) and zone names are case-insensitive, so a map keyed by the spelling grew by one clock per spelling
// and never shrank. Clocks are now kept by the runtime's canonical zone name, at most 256 of them; a constraint past
// that keeps its own. Answers do not depend on which clock a constraint reads.
import { describe, expect, it } from 'vitest';
import { createGuard, MemoryStore } from '../../src/index.js';
import { HoursConstraint, sharedZoneClocks } from '../../src/checks/hours.js';
import { mulberry32 } from '../helpers/prng.js';
import { basePolicy, NOW, storeApiKey } from '../helpers/tokens.js';

/** The wall-clock minute of the day at `at` in `zone`, read straight from Intl. */
function localMinute(zone: string, at: Date): number {
  const parts = new Intl.DateTimeFormat('en-US', { timeZone: zone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).formatToParts(at);
  const part = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  return part('hour') * 60 + part('minute');
}

const hhmm = (m: number) => (m === 1440 ? '24:00' : `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`);

/** A one-minute window at local minute `m` (mod one day). */
const minuteWindow = (m: number) => ({ from: hhmm(m % 1440), to: hhmm((m % 1440) + 1) });

/**
 * `count` distinct spellings of the runtime's zones, each with the zone it spells: names are case-insensitive, so
 * each is a zone the runtime accepts.
 */
function spellings(count: number, seed: number): [spelling: string, zone: string][] {
  const zones = Intl.supportedValuesOf('timeZone');
  const random = mulberry32(seed);
  const out = new Map<string, string>();
  for (let i = 0; out.size < count; i++) {
    const zone = zones[i % zones.length] as string;
    out.set([...zone].map((ch) => (random() < 0.5 ? ch.toLowerCase() : ch.toUpperCase())).join(''), zone);
  }
  return [...out];
}

/** Local minute of NOW per zone, one formatter per zone. */
const reference = new Map<string, number>();
function nowIn(zone: string): number {
  let m = reference.get(zone);
  if (m === undefined) reference.set(zone, (m = localMinute(zone, NOW)));
  return m;
}

describe('hours: the shared zone clocks', () => {
  it('stay at most 256 for 1,500 distinct zone spellings (more zones than the cap), and every constraint answers by its own zone', { timeout: 60_000 }, () => {
    expect(Intl.supportedValuesOf('timeZone').length).toBeGreaterThan(256);
    const wrong: string[] = [];
    spellings(1_500, 20_261_125).forEach(([timezone, zone], i) => {
      const now = nowIn(zone);
      // Every other constraint allows only the minute it is now in its zone, the rest only the next one.
      const inside = i % 2 === 0;
      const c = new HoursConstraint({ timezone, windows: [minuteWindow(inside ? now : now + 1)] });
      if (c.allows(NOW.getTime()) !== inside) wrong.push(timezone);
    });
    expect(wrong).toEqual([]);
    expect(sharedZoneClocks()).toBeLessThanOrEqual(256);
  });

  it('answer API keys whose records spell their zones any way by those zones, through the guard', { timeout: 60_000 }, async () => {
    const store = new MemoryStore();
    const guard = createGuard(await basePolicy({ store, unmatched: 'authenticate' }));
    const wrong: string[] = [];
    let i = 0;
    for (const [timezone, zone] of spellings(600, 7)) {
      const now = nowIn(zone);
      const inside = i++ % 2 === 0;
      const { key } = await storeApiKey(store, { hours: { timezone, windows: [minuteWindow(inside ? now : now + 1)] } });
      const d = await guard.evaluate({ method: 'GET', path: '/orders/1', headers: { authorization: `Bearer ${key}` }, remoteAddress: '203.0.113.9', now: NOW });
      if (d.reason !== (inside ? 'ok' : 'hours.outside')) wrong.push(`${timezone}: ${d.reason}`);
    }
    expect(wrong).toEqual([]);
    expect(sharedZoneClocks()).toBeLessThanOrEqual(256);
  });

  it('share one clock among the spellings of a zone', async () => {
    const windows = [{ from: '08:00', to: '18:00' }];
    const before = sharedZoneClocks();
    for (const timezone of ['Pacific/Chatham', 'pacific/chatham', 'PACIFIC/CHATHAM', 'Pacific/CHATHAM']) {
      createGuard(await basePolicy({ hours: { timezone, windows } }));
    }
    expect(sharedZoneClocks() - before).toBeLessThanOrEqual(1);
  });
});
