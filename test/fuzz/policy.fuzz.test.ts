// Property: no policy, however broken, makes createGuard throw anything but a PolicyError; and a guard it
// does build answers a request.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createGuard, MemoryStore, PolicyError, type TokenGuardPolicy } from '../../src/index.js';
import { NOW } from '../helpers/tokens.js';
import { FUZZ_TIMEOUT, fuzzParams } from './runs.js';

/** A valid policy touching most of the schema (JSON only: a mutation must be able to reach every value). */
const VALID = {
  jwt: {
    issuer: ['https://id.example.test/'],
    audience: 'api://orders',
    algorithms: ['HS256'],
    secret: 'a-shared-secret-that-is-at-least-32-bytes',
    clockTolerance: '5s',
    maxTokenAge: '1h',
    requireExp: true,
    typ: 'at+jwt',
    cacheSize: 100,
  },
  apiKeys: { prefix: 'tg_' },
  storeTimeout: 500,
  trustProxy: ['10.0.0.0/8', '::ffff:192.168.0.0/112'],
  ip: { allow: ['0.0.0.0/0', '::/0'], deny: ['203.0.113.7'] },
  hours: {
    timezone: 'Europe/Berlin',
    windows: [
      { days: ['mon', 'fri'], from: '22:00', to: '06:00' },
      { from: '08:00', to: '24:00' },
    ],
  },
  rules: [
    { path: '/health', public: true },
    { methods: ['GET'], path: '/orders/*/items/**', scopes: ['orders:read'], rateLimit: { limit: 5, window: '1m' } },
    { path: '/reports/**', scopes: { any: ['reports:read', 'admin'] }, mode: 'report-only' },
    {
      path: '/admin/**',
      scopes: { all: ['admin'] },
      ip: { allow: ['10.0.0.0/8'] },
      hours: { timezone: 'UTC', windows: [{ from: '09:00', to: '17:00' }] },
      stepUp: { maxAge: '10m', amr: ['mfa'] },
    },
  ],
  unmatched: 'deny',
  mode: 'enforce',
  rateLimit: { limit: 600, window: '1m' },
  caseSensitive: false,
  maxTokenBytes: 4096,
  realm: 'orders',
  trackUsage: true,
  risk: {
    newIp: 10,
    userAgentChange: 5,
    velocity: { score: 20, factor: 3 },
    offHours: { score: 5, hours: { timezone: 'Asia/Kolkata', windows: [{ from: '09:30', to: '18:00' }] } },
    stepUpAt: 20,
    denyAt: 50,
  },
  dpop: { origins: ['https://api.example.test'], algorithms: ['ES256'], maxAge: '60s', required: false },
};

/** Every path to a value inside a JSON-ish tree. */
function pathsOf(v: unknown, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(at);
  if (Array.isArray(v)) v.forEach((x, i) => pathsOf(x, [...at, i], out));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) pathsOf(x, [...at, k], out);
  return out;
}

/** A copy of `root` with the value at `path` replaced (or removed, when `value` is the REMOVE marker). */
const REMOVE = Symbol('remove');
function withValue(root: unknown, path: readonly (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value === REMOVE ? undefined : value;
  const [head, ...rest] = path as [string | number, ...(string | number)[]];
  if (Array.isArray(root)) {
    // An added key named "length" on an array would be a RangeError of this generator, not of the policy.
    if (head === 'length') return root;
    const copy = [...root];
    if (rest.length === 0 && value === REMOVE) copy.splice(head as number, 1);
    else copy[head as number] = withValue(copy[head as number], rest, value);
    return copy;
  }
  const copy = { ...(root as Record<string, unknown>) };
  if (rest.length === 0 && value === REMOVE) delete copy[head];
  else copy[head] = withValue(copy[head], rest, value);
  return copy;
}

// Values that have broken validators before: edge numbers, empty and odd strings, wrong containers.
const nasty = fc.constantFrom<unknown>(
  NaN,
  Infinity,
  -Infinity,
  -1,
  0,
  0.5,
  1e21,
  2 ** 31,
  Number.MAX_SAFE_INTEGER + 2,
  -0,
  '',
  ' ',
  '0',
  '1e3',
  '24:00',
  '23:60',
  '-1s',
  '0s',
  '9999999999d',
  '1.5h',
  'NaN',
  '__proto__',
  'constructor',
  'toString',
  '::/0',
  '0.0.0.0/0',
  '::ffff:0:0/95',
  '1.2.3.4/33',
  'Europe/Nowhere',
  'none',
  '/**',
  '/a/**b',
  '*',
  '/../x',
  '\u0000',
  [],
  {},
  [[]],
  [{}],
  null,
  true,
  false,
  undefined,
  new Date(NaN),
  new Uint8Array(0),
  () => undefined,
  Symbol('s'),
  10n,
  Object.create(null),
  { toString: 1 },
  { kty: 'RSA' },
  '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----',
);
const anyValue = fc.oneof(
  { weight: 2, arbitrary: nasty },
  { weight: 2, arbitrary: fc.anything({ maxDepth: 2, withNullPrototype: true, withBigInt: true, withDate: true, withTypedArray: true, withSparseArray: true }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
);

/** A mutation of the valid policy: one to three values replaced, removed, or unknown keys added. */
const mutated = fc
  .array(fc.tuple(fc.nat(), fc.oneof(anyValue, fc.constant<unknown>(REMOVE)), fc.option(fc.string({ maxLength: 8 }))), { minLength: 1, maxLength: 3 })
  .map((edits) => {
    let p: unknown = VALID;
    for (const [pick, value, extraKey] of edits) {
      const paths = pathsOf(p);
      const path = paths[pick % paths.length] as (string | number)[];
      p = extraKey !== null && value !== REMOVE ? withValue(p, [...path, extraKey], value) : withValue(p, path, value);
    }
    return p;
  });

// A small store shared by every case: the default one sizes its LRUs for 100 000 entries, which dominates the run.
const STORE = new MemoryStore({ maxApiKeys: 16, maxCounters: 64, maxUsage: 64 });
const withStore = (p: unknown) => (p && typeof p === 'object' && !Array.isArray(p) && !('store' in p) ? { ...p, store: STORE } : p);

function check(policy: unknown): Promise<void> | void {
  let guard: ReturnType<typeof createGuard>;
  try {
    guard = createGuard(policy as TokenGuardPolicy);
  } catch (err) {
    if (!(err instanceof PolicyError)) throw new Error(`createGuard threw ${String(err)} for ${show(policy)}`, { cause: err });
    expect(err.issues.length).toBeGreaterThan(0);
    return;
  }
  // A guard that was built must answer: no throw, no 5xx but a (healthy) store's 503.
  return guard.evaluate({ method: 'GET', path: '/orders/1/items', headers: {}, remoteAddress: '10.1.2.3', now: NOW }).then((d) => {
    expect(d.status, show(policy)).not.toBe(503);
    expect([200, 400, 401, 403]).toContain(d.status);
  });
}
function show(p: unknown): string {
  try {
    return JSON.stringify(p, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : typeof v === 'number' && !Number.isFinite(v) ? String(v) : v));
  } catch {
    return String(p);
  }
}

describe('fuzz: the policy schema', () => {
  it('accepts the valid base policy', async () => {
    await check(VALID);
    expect(() => createGuard(VALID as TokenGuardPolicy)).not.toThrow();
  });

  it(
    'throws nothing but a PolicyError for any value given as a policy',
    async () => {
      await fc.assert(
        fc.asyncProperty(anyValue, async (p) => check(p)),
        fuzzParams(),
      );
    },
    FUZZ_TIMEOUT,
  );

  it(
    'throws nothing but a PolicyError for any mutation of a valid policy, and a guard it builds answers',
    async () => {
      // Each case that passes validation builds a guard (a few ms: LRUs, hour bitmaps, Intl formats).
      await fc.assert(
        fc.asyncProperty(mutated, async (p) => check(withStore(p))),
        fuzzParams(0.15),
      );
    },
    FUZZ_TIMEOUT,
  );
});
