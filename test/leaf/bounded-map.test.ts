import { describe, expect, it, vi } from 'vitest';
import { BoundedMap, EvictionCursor, tailHash } from '../../src/leaf/bounded-map.js';
import { mulberry32 as prng } from '../helpers/prng.js';

describe('BoundedMap', () => {
  it('never holds more than max entries: the oldest inserted is dropped first', () => {
    const m = new BoundedMap<string, number>(3);
    for (let i = 0; i < 1000; i++) m.set(`k${i}`, i);
    expect(m.size).toBe(3);
    expect(m.get('k996')).toBeUndefined();
    expect([m.get('k997'), m.get('k998'), m.get('k999')]).toEqual([997, 998, 999]);
  });

  it('with refresh, keeps an entry read at least once every max / 2 insertions, as an LRU would', () => {
    const plain = new BoundedMap<string, number>(8);
    const refreshed = new BoundedMap<string, number>(8, { refresh: true });
    for (const m of [plain, refreshed]) {
      m.set('busy', 0);
      for (let i = 0; i < 100; i++) {
        m.set(`k${i}`, i);
        if (i % 4 === 0) m.get('busy');
      }
    }
    expect(plain.get('busy')).toBeUndefined();
    expect(refreshed.get('busy')).toBe(0);
    expect(refreshed.size).toBe(8);
    // The others still go oldest first: the last 7 inserted remain beside it.
    expect(refreshed.get('k92')).toBeUndefined();
    expect(refreshed.get('k93')).toBe(93);
  });

  it('with refresh, still drops an entry that is not read within max insertions', () => {
    const m = new BoundedMap<string, number>(8, { refresh: true });
    m.set('idle', 1);
    for (let i = 0; i < 8; i++) m.set(`k${i}`, i);
    expect(m.get('idle')).toBeUndefined();
  });

  it('updates an existing key where it stands, without dropping another', () => {
    const m = new BoundedMap<string, number>(2);
    m.set('a', 1);
    m.set('b', 2);
    m.set('a', 3);
    expect(m.size).toBe(2);
    expect([m.get('a'), m.get('b')]).toEqual([3, 2]);
  });

  it('stops serving an entry at its expiry, on the caller clock, and drops it when read', () => {
    const m = new BoundedMap<string, string>(10);
    m.set('t', 'v', 1000);
    expect(m.get('t', 999)).toBe('v');
    expect(m.has('t', 999)).toBe(true);
    expect(m.get('t', 1000)).toBeUndefined();
    expect(m.size).toBe(0);
    expect(m.get('t', 0)).toBeUndefined();
  });

  it('serves an entry set without expiry until it is dropped', () => {
    const m = new BoundedMap<string, string>(10);
    m.set('t', 'v');
    expect(m.get('t', Number.MAX_SAFE_INTEGER)).toBe('v');
    expect(m.delete('t')).toBe(true);
    expect(m.delete('t')).toBe(false);
    m.set('u', 'w');
    m.clear();
    expect(m.size).toBe(0);
  });

  it('with an index, answers only for the whole key: two keys with one index replace each other, never read as each other', () => {
    const m = new BoundedMap<string, string>(10, { index: tailHash });
    const tail = 'x'.repeat(24);
    const a = `aaaa.${tail}`;
    const b = `bbbb.${tail}`;
    m.set(a, 'A');
    expect(m.get(b)).toBeUndefined();
    expect(m.has(b)).toBe(false);
    expect(m.delete(b)).toBe(false);
    m.set(b, 'B');
    expect(m.size).toBe(1);
    expect(m.get(a)).toBeUndefined();
    expect(m.get(b)).toBe('B');
    expect(m.get(`${b}`.slice(0))).toBe('B');
  });

  it('stays bounded under a million distinct long keys (memory flat)', () => {
    const m = new BoundedMap<string, number>(1000, { index: tailHash });
    for (let i = 0; i < 1_000_000; i++) m.set(`header.payload.${i.toString(36).padStart(30, '0')}`, i);
    expect(m.size).toBe(1000);
    expect(m.get(`header.payload.${(999_999).toString(36).padStart(30, '0')}`)).toBe(999_999);
  });

  it('refuses a bound that could never hold anything', () => {
    for (const max of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) expect(() => new BoundedMap(max)).toThrow(RangeError);
  });
});

/** Removes and returns a random key of the model (which must not be empty). */
const takeAny = (model: string[], random: () => number): string => model.splice(Math.floor(random() * model.length), 1)[0] as string;

describe('EvictionCursor', () => {
  it('hands out the oldest live key under any mix of inserts, re-inserts, deletes, evictions and clear (against an array model)', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const random = prng(seed);
      const map = new Map<string, number>();
      const cursor = new EvictionCursor(map);
      const model: string[] = [];
      const max = 1 + Math.floor(random() * 50);
      let next = 0;
      for (let step = 0; step < 3000; step++) {
        const r = random();
        if (r < 0.5) {
          const key = `k${next++}`;
          map.set(key, step);
          model.push(key);
        } else if (r < 0.7 && model.length > 0) {
          // Re-inserted: moves to the newest end, as the pre-auth limiter does with every client it looks at.
          const key = takeAny(model, random);
          map.delete(key);
          map.set(key, step);
          model.push(key);
        } else if (r < 0.85 && model.length > 0) {
          const key = takeAny(model, random);
          map.delete(key);
        } else if (r < 0.851) {
          map.clear();
          model.length = 0;
        }
        while (map.size > max) {
          const oldest = cursor.oldest();
          expect(oldest, `seed ${seed}, step ${step}`).toBe(model[0]);
          map.delete(oldest as string);
          model.shift();
        }
      }
      expect([...map.keys()]).toEqual(model);
    }
  });

  it('answers undefined for an empty map, and starts again after one', () => {
    const map = new Map<string, number>();
    const cursor = new EvictionCursor(map);
    expect(cursor.oldest()).toBeUndefined();
    map.set('a', 1);
    map.set('b', 2);
    expect(cursor.oldest()).toBe('a');
    map.delete('a');
    map.delete('b');
    expect(cursor.oldest()).toBeUndefined();
    map.set('c', 3);
    expect(cursor.oldest()).toBe('c');
  });
});

describe('BoundedMap eviction order', () => {
  it('drops the oldest live entry, with deletes and clear in between (against an array model)', () => {
    for (let seed = 1; seed <= 10; seed++) {
      const random = prng(seed);
      const max = 2 + Math.floor(random() * 40);
      const m = new BoundedMap<string, number>(max);
      const model: string[] = [];
      let next = 0;
      for (let step = 0; step < 3000; step++) {
        const r = random();
        if (r < 0.7) {
          const key = `k${next++}`;
          m.set(key, step);
          model.push(key);
          if (model.length > max) model.shift();
        } else if (r < 0.9 && model.length > 0) {
          const key = takeAny(model, random);
          expect(m.delete(key)).toBe(true);
        } else if (r < 0.901) {
          m.clear();
          model.length = 0;
        }
        expect(m.size, `seed ${seed}, step ${step}`).toBe(model.length);
      }
      for (const key of model) expect(m.has(key)).toBe(true);
    }
  });
});

describe('tailHash', () => {
  it('files a key under a small integer of its last 12 characters (keyed per process): what comes before them does not count', () => {
    const tail = 'abcdefghijkl';
    const h = tailHash(`${'h'.repeat(100)}.${tail}`);
    expect(Number.isInteger(h) && h >= 0 && h < 2 ** 30).toBe(true);
    expect(tailHash(`other.header.${tail}`)).toBe(h);
    expect(tailHash(tail)).toBe(h);
    // Any one of the last 12 characters changes it.
    for (let i = 0; i < 12; i++) expect(tailHash(`x.${tail.slice(0, i)}_${tail.slice(i + 1)}`)).not.toBe(h);
    expect(tailHash('10.0.0.1')).not.toBe(tailHash('10.0.0.2'));
  });

  it('is keyed per process: a fresh copy of the module files the same keys under other indexes', async () => {
    vi.resetModules();
    const fresh = (await import('../../src/leaf/bounded-map.js')).tailHash;
    const keys = ['abcdefghijkl', 'x.y.0123456789ab', '10.0.0.1'];
    // Another key draws other indexes (each equal by chance with odds of 2^-30).
    expect(keys.map(fresh)).not.toEqual(keys.map(tailHash));
    expect(keys.map(fresh)).toEqual(keys.map(fresh));
  });

  it('spreads 100 000 distinct signatures over distinct indexes (a shared index only costs a miss, but should be rare)', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 100_000; i++) seen.add(tailHash(`h.p.${(i * 2654435761).toString(36).padStart(12, '0')}`));
    expect(seen.size).toBeGreaterThan(99_980);
  });
});
