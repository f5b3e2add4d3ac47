import { describe, expect, it } from 'vitest';
import { addUse, freshUsage, mergeUsage } from '../../src/stores/usage.js';
import { RECENT_IPS_KEPT, type TokenUsage, type UsageEvent } from '../../src/leaf/store.js';

const T = Date.UTC(2026, 10, 30, 12, 0, 0);
const uses: UsageEvent[] = [
  { at: T, ip: '10.0.0.1', userAgent: 'a' },
  { at: T + 1000, ip: '10.0.0.1' },
  { at: T + 61_000, ip: '10.0.0.2', userAgent: 'b' },
  { at: T + 500, ip: '10.0.0.3' },
  { at: T + 62_000 },
  { at: T + 63_000, ip: '10.0.0.1' },
  ...Array.from({ length: RECENT_IPS_KEPT + 2 }, (_, i): UsageEvent => ({ at: T + 70_000 + i, ip: `10.1.0.${i}` })),
  { at: T - 5000, ip: '10.9.9.9', userAgent: 'old' },
  { at: T + 200_000, ip: '10.1.0.3' },
];

describe('usage records', () => {
  it('adds a use in place exactly as mergeUsage adds it to a copy, in order or out of order', () => {
    let merged: TokenUsage | undefined;
    let inPlace: TokenUsage | undefined;
    for (const use of uses) {
      const before = merged === undefined ? undefined : structuredClone(merged);
      merged = mergeUsage(merged, use);
      if (before !== undefined) expect(merged).not.toBe(before);
      if (inPlace === undefined) inPlace = freshUsage(use);
      else addUse(inPlace, use);
      expect(inPlace).toEqual(merged);
    }
    expect(inPlace?.recentIps.length).toBe(RECENT_IPS_KEPT);
  });

  it('mergeUsage leaves the record it was given untouched', () => {
    const first = mergeUsage(undefined, { at: T, ip: '10.0.0.1' });
    const copy = structuredClone(first);
    mergeUsage(first, { at: T + 1, ip: '10.0.0.2', userAgent: 'x' });
    expect(first).toEqual(copy);
  });
});
