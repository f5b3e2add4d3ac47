// decisionRecorder on its own, fed DecisionEvents as a guard's onDecision (or the app's own hook) would: a window
// that follows the clock rather than the newest event, top lists that forget the least recent key rather than
// lumping new ones under "(other)", and rate-limit headroom that drops counters already full again.
import { describe, expect, it, vi } from 'vitest';
import { decisionRecorder } from '../../src/observe/dashboard.js';
import type { DecisionEvent } from '../../src/index.js';
import { fakeDateEachTest } from '../helpers/fake-date.js';
import { lcg } from '../helpers/prng.js';

const T0 = Date.parse('2026-12-03T10:00:00Z');

function refusal(over: Partial<DecisionEvent> = {}): DecisionEvent {
  return {
    time: new Date(Date.now()),
    effect: 'deny',
    status: 401,
    reason: 'token.revoked',
    reasons: ['token.revoked'],
    mode: 'enforce',
    passed: false,
    method: 'GET',
    path: '/orders/1',
    source: 'guard',
    latencyUs: 3,
    ...over,
  };
}

fakeDateEachTest(T0);

describe('decisionRecorder: the window follows the clock', () => {
  it('shows no rate once a burst is over, however long ago its last event was', () => {
    const recorder = decisionRecorder({ windowS: 60 });
    for (let i = 0; i < 600; i++) recorder.onDecision(refusal());
    expect(recorder.snapshot().rate.deny).toBe(10);
    vi.setSystemTime(T0 + 10 * 60_000);
    const later = recorder.snapshot();
    expect([later.now, later.rate.deny, later.total.deny]).toEqual([T0 + 600_000, 0, 600]);
    expect(later.perSecond.every((p) => p.deny === 0)).toBe(true);
  });

  it('an event stamped an hour ahead (a clock step, a request `now`) does not blind the window to the ones after it', () => {
    const recorder = decisionRecorder({ windowS: 60 });
    recorder.onDecision(refusal({ time: new Date(T0 + 3_600_000) }));
    for (let i = 0; i < 5; i++) recorder.onDecision(refusal());
    const snap = recorder.snapshot();
    expect(snap.now).toBe(T0);
    expect(snap.perSecond.at(-1)).toMatchObject({ t: Math.floor(T0 / 1000), deny: 6 });
    // Its own time is what the recent refusals show.
    expect(snap.recentDenials.at(-1)?.time).toBe(T0 + 3_600_000);
  });

  it('a clock stepped back by a whole window does not wipe the second it lands on', () => {
    const recorder = decisionRecorder({ windowS: 60 });
    for (let i = 0; i < 100; i++) recorder.onDecision(refusal());
    vi.setSystemTime(T0 - 60_000);
    recorder.onDecision(refusal());
    vi.setSystemTime(T0);
    const snap = recorder.snapshot();
    expect([snap.perSecond.reduce((n, p) => n + p.deny, 0), snap.total.deny]).toEqual([100, 101]);
  });

  it('a clock stepped back for good counts the decisions after the step at once (an attack during an NTP correction shows)', () => {
    const recorder = decisionRecorder({ windowS: 60 });
    for (let s = 0; s < 60; s++) {
      vi.setSystemTime(T0 + s * 1000);
      recorder.onDecision(refusal());
    }
    const back = T0 - 3_600_000;
    for (let i = 0; i < 300; i++) {
      vi.setSystemTime(back + Math.floor(i / 10) * 1000);
      recorder.onDecision(refusal());
    }
    const snap = recorder.snapshot();
    expect([snap.perSecond.reduce((n, p) => n + p.deny, 0), snap.rate.deny, snap.total.deny]).toEqual([300, 5, 360]);
  });

  it('counts each second of the window once, over a window of an hour', () => {
    const recorder = decisionRecorder({ windowS: 3600 });
    for (let s = 0; s < 7200; s += 7) {
      vi.setSystemTime(T0 + s * 1000);
      recorder.onDecision(refusal());
    }
    const snap = recorder.snapshot();
    expect(snap.perSecond).toHaveLength(3600);
    // Seconds 3599..7197 of the run, every 7th: what an hour back from the last one holds.
    const expected = Array.from({ length: 1029 }, (_, i) => i * 7).filter((s) => s > 7196 - 3600).length;
    expect(snap.perSecond.reduce((n, p) => n + p.deny, 0)).toBe(expected);
  });
});

describe('decisionRecorder: bounded top lists forget the least recent key', () => {
  it("names today's offender after a week of other tokens filled every slot, and never shows an (other) row", () => {
    const recorder = decisionRecorder({ maxKeys: 100 });
    for (let i = 0; i < 10_000; i++) recorder.onDecision(refusal({ tokenId: `jti-${i}`, subject: `user-${i}` }));
    for (let i = 0; i < 50; i++) recorder.onDecision(refusal({ tokenId: 'stolen', subject: 'mallory' }));
    const snap = recorder.snapshot({ top: 1000 });
    expect(snap.deniedTokens[0]).toEqual({ tokenId: 'stolen', count: 50, lastReason: 'token.revoked' });
    expect(snap.deniedSubjects[0]).toEqual({ subject: 'mallory', count: 50 });
    expect(snap.deniedTokens).toHaveLength(100);
    expect(snap.deniedTokens.some((t) => t.tokenId === '(other)' || t.tokenId === 'jti-0')).toBe(false);
    // The 99 kept beside it are the most recent ones.
    expect(snap.deniedTokens.filter((t) => t.tokenId !== 'stolen').every((t) => Number(t.tokenId.slice(4)) >= 9901)).toBe(true);
  });

  it('keeps a key that keeps being refused, while a flood of new keys passes through the other slots', () => {
    const recorder = decisionRecorder({ maxKeys: 10 });
    for (let i = 0; i < 1000; i++) {
      recorder.onDecision(refusal({ tokenId: 'persistent' }));
      recorder.onDecision(refusal({ tokenId: `flood-${i}` }));
    }
    expect(recorder.snapshot({ top: 1 }).deniedTokens).toEqual([{ tokenId: 'persistent', count: 1000, lastReason: 'token.revoked' }]);
  });

  it('forgets exactly the key a reference LRU forgets, over a long run of repeats and new keys past the bound', () => {
    const recorder = decisionRecorder({ maxKeys: 50 });
    const lru = new Map<string, number>();
    const random = lcg(11);
    for (let i = 0; i < 20_000; i++) {
      // Mostly repeats of recent keys (each moves to the newest end), now and then a burst of new ones.
      const id = random() < 0.7 ? `t${Math.floor(random() * 80)}` : `new-${i}`;
      const n = (lru.get(id) ?? 0) + 1;
      lru.delete(id);
      if (n === 1 && lru.size >= 50) lru.delete(lru.keys().next().value as string);
      lru.set(id, n);
      recorder.onDecision(refusal({ tokenId: id }));
    }
    const kept = recorder.snapshot({ top: 1000 }).deniedTokens.map((t) => [t.tokenId, t.count]);
    expect(new Map(kept as [string, number][])).toEqual(lru);
  });

  it('lists the n largest counts, ties by key, as a full sort would', () => {
    const recorder = decisionRecorder({ maxKeys: 5000 });
    const counts = new Map<string, number>();
    const random = lcg(7);
    for (let i = 0; i < 20_000; i++) {
      const id = `t${Math.floor(random() * random() * 3000)}`;
      counts.set(id, (counts.get(id) ?? 0) + 1);
      recorder.onDecision(refusal({ tokenId: id }));
    }
    const sorted = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    for (const n of [1, 10, 137, 1000]) {
      expect(recorder.snapshot({ top: n }).deniedTokens.map((t) => [t.tokenId, t.count])).toEqual(sorted.slice(0, n));
    }
  });
});

describe('decisionRecorder: rate-limit headroom', () => {
  /** A request let through, carrying its token's rate-limit state. */
  const allowed = (tokenId: string, rateLimit: NonNullable<DecisionEvent['rateLimit']>) =>
    refusal({ effect: 'allow', passed: true, status: 200, reason: 'ok', reasons: [], tokenId, rateLimit });

  it('drops a counter once its reset has passed (it is full again), and keeps the latest state before that', () => {
    const recorder = decisionRecorder();
    recorder.onDecision(allowed('a', { limit: 10, remaining: 3, resetS: 30 }));
    recorder.onDecision(allowed('b', { limit: 10, remaining: 1, resetS: 120 }));
    vi.setSystemTime(T0 + 10_000);
    recorder.onDecision(allowed('a', { limit: 10, remaining: 2, resetS: 25 }));
    expect(recorder.snapshot().rateLimits.map((l) => [l.tokenId, l.remaining])).toEqual([
      ['b', 1],
      ['a', 2],
    ]);
    vi.setSystemTime(T0 + 60_000);
    expect(recorder.snapshot().rateLimits.map((l) => l.tokenId)).toEqual(['b']);
    vi.setSystemTime(T0 + 121_000);
    expect(recorder.snapshot().rateLimits).toEqual([]);
  });
});
