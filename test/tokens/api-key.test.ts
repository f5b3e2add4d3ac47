// API keys: issueApiKey / parseApiKey / hashApiKey, and how the guard treats keys and their records.
import { createHash, createHmac } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { describe, expect, it, vi } from 'vitest';
import { isApiKeyShaped } from '../../src/tokens/api-key.js';
import {
  ApiKeyError,
  MemoryStore,
  TokenGuardError,
  createGuard,
  hashApiKey,
  issueApiKey,
  parseApiKey,
  type ApiKeyRecord,
  type Duration,
  type IssueApiKeyOptions,
} from '../../src/index.js';
import { NOW, jwtPolicy, storeApiKey } from '../helpers/tokens.js';
import { ORDERS_RULES, apiKeyGuard, bearer, expectAllowed, expectRefused } from './fixtures.js';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
/** What a secret scanner would match: the prefix, then at least 32 + 6 base62 characters. */
const SCANNER_RE = /\btg_[0-9A-Za-z]{38,}\b/g;

/** The documented checksum: CRC32 of prefix + body, as 6 base62 digits (most significant first). */
function checksumOf(prefixAndBody: string): string {
  let n = crc32(prefixAndBody);
  let out = '';
  for (let i = 0; i < 6; i++) {
    out = BASE62[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out;
}

const issue = (options: Partial<IssueApiKeyOptions> = {}) =>
  issueApiKey({ prefix: 'tg_', subject: 'svc-billing', scopes: ['orders:read'], expiresIn: '30d', now: NOW, ...options });

/** Every string that differs from `key` in one character after the prefix (one substitution per position). */
function oneCharTypos(key: string, prefixLength: number): string[] {
  const typos: string[] = [];
  for (let i = prefixLength; i < key.length; i++) {
    const c = key[i] as string;
    const other = BASE62[(BASE62.indexOf(c) + 1 + (i % 61)) % 62] as string;
    typos.push(key.slice(0, i) + other + key.slice(i + 1));
    const flipped = c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase();
    if (flipped !== c) typos.push(key.slice(0, i) + flipped + key.slice(i + 1));
  }
  return typos;
}

/** A store whose getApiKey answers a fixed value: what a broken or tampered backing store might hand back. */
class FixedRecordStore extends MemoryStore {
  constructor(private readonly answer: unknown) {
    super();
  }
  override getApiKey(): ApiKeyRecord | undefined {
    return this.answer as ApiKeyRecord;
  }
}

describe('key format', () => {
  it('is the prefix, 40 base62 characters and a 6-character base62 checksum', () => {
    const { key } = issue();
    expect(key).toMatch(/^tg_[0-9A-Za-z]{46}$/);
    const parsed = parseApiKey(key, 'tg_');
    expect(parsed).toEqual({ prefix: 'tg_', body: key.slice(3, -6), checksum: key.slice(-6) });
    expect(parsed!.body.length).toBeGreaterThanOrEqual(32);
    expect(parsed!.checksum).toBe(checksumOf(`tg_${parsed!.body}`));
  });

  it('is found by a secret-scanner regex in surrounding text', () => {
    const { key } = issue();
    const text = `config:\n  TOKEN_GUARD_KEY="${key}"\n  other: tg_short\n`;
    expect(text.match(SCANNER_RE)).toEqual([key]);
  });

  it('takes any valid prefix', () => {
    const { key, record } = issue({ prefix: 'acmeLive_' });
    expect(key.startsWith('acmeLive_')).toBe(true);
    expect(record.prefix).toBe('acmeLive_');
    expect(parseApiKey(key, 'acmeLive_')).not.toBeNull();
    expect(parseApiKey(key)).not.toBeNull();
  });

  it('accepts a body of exactly 32 characters with a valid checksum, and refuses 31', () => {
    const body32 = 'A'.repeat(32);
    const body31 = 'A'.repeat(31);
    expect(parseApiKey(`tg_${body32}${checksumOf(`tg_${body32}`)}`, 'tg_')).toEqual({ prefix: 'tg_', body: body32, checksum: checksumOf(`tg_${body32}`) });
    expect(parseApiKey(`tg_${body31}${checksumOf(`tg_${body31}`)}`, 'tg_')).toBeNull();
  });

  it('issues 1000 distinct keys, record ids and hashes, all well-formed, using every base62 symbol', () => {
    const issued = Array.from({ length: 1000 }, () => issue());
    expect(new Set(issued.map((i) => i.key)).size).toBe(1000);
    expect(new Set(issued.map((i) => i.record.id)).size).toBe(1000);
    expect(new Set(issued.map((i) => i.record.hash)).size).toBe(1000);
    for (const { key } of issued) expect(parseApiKey(key, 'tg_')).not.toBeNull();
    const bodies = issued.map((i) => i.key.slice(3, -6)).join('');
    expect(new Set(bodies).size).toBe(62);
    // No position of the body is stuck on one symbol.
    for (let pos = 0; pos < 40; pos++) expect(new Set(issued.map((i) => i.key[3 + pos])).size).toBeGreaterThan(30);
  });
});

describe('parseApiKey', () => {
  it('refuses every one-character typo after the prefix, including a flipped case', () => {
    const { key } = issue();
    const typos = oneCharTypos(key, 3);
    expect(typos.length).toBeGreaterThanOrEqual(46);
    for (const typo of typos) expect(parseApiKey(typo, 'tg_')).toBeNull();
  });

  it('refuses two swapped neighbouring characters', () => {
    const { key } = issue();
    for (let i = 3; i < key.length - 1; i++) {
      if (key[i] === key[i + 1]) continue;
      const swapped = key.slice(0, i) + key[i + 1] + key[i] + key.slice(i + 2);
      expect(parseApiKey(swapped, 'tg_')).toBeNull();
    }
  });

  it('refuses a key under another prefix', () => {
    const { key } = issue();
    const rest = key.slice(3);
    expect(parseApiKey(`tx_${rest}`, 'tg_')).toBeNull();
    expect(parseApiKey(`TG_${rest}`, 'tg_')).toBeNull();
    expect(parseApiKey(rest, 'tg_')).toBeNull();
    // Without an expected prefix, a changed prefix still breaks the checksum (it covers the prefix).
    expect(parseApiKey(`tx_${rest}`)).toBeNull();
    // And a key issued under another prefix is not accepted as a tg_ key.
    expect(parseApiKey(issue({ prefix: 'live_' }).key, 'tg_')).toBeNull();
  });

  it('refuses a truncated or extended key', () => {
    const { key } = issue();
    for (const cut of [1, 5, 6, 7, 20, key.length - 3]) expect(parseApiKey(key.slice(0, -cut), 'tg_')).toBeNull();
    expect(parseApiKey(`${key}A`, 'tg_')).toBeNull();
    expect(parseApiKey(`${key}${key.slice(3)}`, 'tg_')).toBeNull();
  });

  it('refuses characters outside base62', () => {
    const { key } = issue();
    for (const bad of ['-', '_', '.', '+', '/', '=', '~', ' ', 'é', '\u0000']) {
      expect(parseApiKey(key.slice(0, 10) + bad + key.slice(11), 'tg_')).toBeNull();
      expect(parseApiKey(key + bad, 'tg_')).toBeNull();
    }
  });

  it('refuses inputs that are not plausible keys at all', () => {
    for (const input of ['', 'tg_', 'tg_' + 'A'.repeat(300), 'no-underscore', '_' + 'A'.repeat(40)]) expect(parseApiKey(input, 'tg_')).toBeNull();
    expect(parseApiKey(42 as unknown as string)).toBeNull();
  });
});

describe('real-world prefixes', () => {
  for (const prefix of ['sk_live_', 'rk_test_', 'pk_live_v2_', 'acme_prod_', 'A_', `a${'_'.repeat(30)}_`, 'tg_']) {
    it(`issues and parses keys under ${JSON.stringify(prefix)}`, () => {
      const { key, record } = issue({ prefix });
      expect(key).toMatch(new RegExp(`^${prefix}[0-9A-Za-z]{46}$`));
      expect(record.prefix).toBe(prefix);
      const expected = { prefix, body: key.slice(prefix.length, -6), checksum: key.slice(-6) };
      expect(parseApiKey(key)).toEqual(expected);
      expect(parseApiKey(key, prefix)).toEqual(expected);
      expect(parseApiKey(key, { prefixes: [prefix, 'zz_'] })).toEqual(expected);
    });
  }

  it('reads the prefix up to the last underscore, so sk_ and sk_live_ keys never pass for each other', () => {
    const short = issue({ prefix: 'sk_' }).key;
    const live = issue({ prefix: 'sk_live_' }).key;
    expect(parseApiKey(live, { prefixes: ['sk_'] })).toBeNull();
    expect(parseApiKey(short, { prefixes: ['sk_live_'] })).toBeNull();
    expect(parseApiKey(live, { prefixes: ['sk_', 'sk_live_'] })).toMatchObject({ prefix: 'sk_live_' });
    expect(parseApiKey(short, { prefixes: ['sk_', 'sk_live_'] })).toMatchObject({ prefix: 'sk_' });
    // Moving the boundary (sk_ + "live_…") breaks the CRC, which covers the prefix.
    expect(parseApiKey(`sk_${live.slice(3)}`, { prefixes: ['sk_'] })).toBeNull();
  });

  it('refuses a key whose prefix is not among those accepted, and a key under an invalid prefix', () => {
    const { key } = issue({ prefix: 'rk_test_' });
    expect(parseApiKey(key, { prefixes: ['sk_live_', 'sk_test_'] })).toBeNull();
    expect(parseApiKey(key, { prefixes: [] })).toBeNull();
    const body = 'A'.repeat(40);
    for (const p of ['_', '1k_', 'sk-live_', '_sk_']) expect(parseApiKey(`${p}${body}${checksumOf(`${p}${body}`)}`)).toBeNull();
  });

  it('refuses options that are neither a prefix nor an options object', () => {
    const { key } = issue();
    for (const bad of [42, null, true]) expect(() => parseApiKey(key, bad as unknown as string)).toThrow(ApiKeyError);
  });
});

const SECRET = 'a-deployment-secret-of-at-least-32-bytes!';
const OTHER_SECRET = 'another-deployment-secret-32-bytes-long!!';

/** The documented keyed checksum: HMAC-SHA256(secret, prefix + body), first 64 bits, 11 base62 digits. */
function macOf(secret: string, prefixAndBody: string): string {
  let n = createHmac('sha256', secret).update(prefixAndBody).digest().readBigUInt64BE(0);
  let out = '';
  for (let i = 0; i < 11; i++) {
    out = BASE62[Number(n % 62n)] + out;
    n /= 62n;
  }
  return out;
}

describe('the keyed checksum (checksumSecret)', () => {
  it('is prefix, 40 base62 characters, an 11-character HMAC and a CRC32 over all of it', () => {
    const { key } = issue({ prefix: 'sk_live_', checksumSecret: SECRET });
    expect(key).toMatch(/^sk_live_[0-9A-Za-z]{57}$/);
    const body = key.slice(8, 48);
    const mac = key.slice(48, 59);
    expect(mac).toBe(macOf(SECRET, `sk_live_${body}`));
    expect(key.slice(-6)).toBe(checksumOf(key.slice(0, -6)));
    expect(parseApiKey(key, { prefixes: 'sk_live_', checksumSecret: SECRET })).toEqual({ prefix: 'sk_live_', body, mac, checksum: key.slice(-6) });
  });

  it('accepts the secret as bytes, the same as its UTF-8 string', () => {
    const { key } = issue({ checksumSecret: Buffer.from(SECRET) });
    expect(parseApiKey(key, { checksumSecret: SECRET })).not.toBeNull();
    expect(parseApiKey(issue({ checksumSecret: SECRET }).key, { checksumSecret: new TextEncoder().encode(SECRET) })).not.toBeNull();
  });

  it('still reads as a well-formed key where no secret is known (secret scanners, parseApiKey without options)', () => {
    const { key } = issue({ checksumSecret: SECRET });
    expect(parseApiKey(key, 'tg_')).toMatchObject({ prefix: 'tg_', checksum: key.slice(-6) });
    expect(key.match(SCANNER_RE)).toEqual([key]);
  });

  it('refuses a key minted under another secret, or with none', () => {
    expect(parseApiKey(issue({ checksumSecret: OTHER_SECRET }).key, { checksumSecret: SECRET })).toBeNull();
    expect(parseApiKey(issue().key, { checksumSecret: SECRET })).toBeNull();
  });

  it('refuses a made-up key with a valid CRC, which the CRC alone would let through', () => {
    const body = 'Q'.repeat(40) + 'R'.repeat(11);
    const forged = `tg_${body}${checksumOf(`tg_${body}`)}`;
    expect(parseApiKey(forged, 'tg_')).not.toBeNull();
    expect(parseApiKey(forged, { prefixes: 'tg_', checksumSecret: SECRET })).toBeNull();
  });

  it('refuses every one-character change to a keyed key, the MAC included', () => {
    const { key } = issue({ checksumSecret: SECRET });
    for (const typo of oneCharTypos(key, 3)) expect(parseApiKey(typo, { checksumSecret: SECRET })).toBeNull();
    // A changed MAC with its CRC recomputed: only the secret catches it.
    const mac = key.slice(43, 54);
    const other = mac.slice(0, -1) + (mac.endsWith('A') ? 'B' : 'A');
    const refit = key.slice(0, 43) + other;
    expect(parseApiKey(refit + checksumOf(refit), { checksumSecret: SECRET })).toBeNull();
    expect(parseApiKey(refit + checksumOf(refit), 'tg_')).not.toBeNull();
  });

  it('throws ApiKeyError for a secret under 32 bytes or of the wrong type', () => {
    const { key } = issue();
    for (const secret of ['x'.repeat(31), '', new Uint8Array(16), 42, {}]) {
      expect(() => parseApiKey(key, { checksumSecret: secret as string })).toThrow(ApiKeyError);
    }
    // 32 bytes counted in UTF-8, not in characters: 16 two-byte characters are enough.
    expect(() => parseApiKey(key, { checksumSecret: 'é'.repeat(16) })).not.toThrow();
    expect(() => parseApiKey(key, { checksumSecret: 'é'.repeat(15) })).toThrow(ApiKeyError);
  });
});

describe('hashApiKey and the record', () => {
  it('is the SHA-256 of the key, base64url', () => {
    const { key, record } = issue();
    const expected = createHash('sha256').update(key).digest('base64url');
    expect(hashApiKey(key)).toBe(expected);
    expect(hashApiKey(key)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(record.hash).toBe(expected);
  });

  it('keeps no trace of the plaintext key in the record', () => {
    const { key, record } = issue({ name: 'billing', metadata: { team: 'payments' }, uses: 5, ip: { allow: ['10.0.0.0/8'] } });
    const serialized = JSON.stringify(record);
    const body = key.slice(3);
    expect(serialized).not.toContain(key);
    for (let i = 0; i + 12 <= body.length; i++) expect(serialized).not.toContain(body.slice(i, i + 12));
    expect(Object.keys(record)).not.toContain('key');
  });

  it('fills the record from the options', () => {
    const { record } = issue({ expiresIn: '1h', uses: 3, name: 'billing', rotatedFrom: 'key_old' });
    expect(record).toMatchObject({
      id: expect.stringMatching(/^key_[0-9a-f]{32}$/),
      prefix: 'tg_',
      subject: 'svc-billing',
      scopes: ['orders:read'],
      createdAt: NOW.getTime(),
      expiresAt: NOW.getTime() + 3_600_000,
      remaining: 3,
      name: 'billing',
      rotatedFrom: 'key_old',
    });
    expect(issue({ expiresIn: null }).record.expiresAt).toBeNull();
  });
});

describe('issueApiKey option errors', () => {
  const bad: [string, Partial<IssueApiKeyOptions>, RegExp][] = [
    ['a prefix without the underscore', { prefix: 'tg' }, /prefix: /],
    ['a prefix starting with a digit', { prefix: '1tg_' }, /prefix: /],
    ['a prefix with a dash', { prefix: 'tg-' }, /prefix: /],
    ['a prefix longer than 32 characters', { prefix: `${'a'.repeat(32)}_` }, /prefix: /],
    ['a prefix starting with an underscore', { prefix: '_sk_' }, /prefix: /],
    ['a prefix every JWT starts with', { prefix: 'eyJhbGci_' }, /prefix: .*eyJ/],
    ['a prefix with a space', { prefix: 'sk live_' }, /prefix: /],
    ['a prefix with a non-ASCII letter', { prefix: 'sk_é_' }, /prefix: /],
    ['a checksum secret under 32 bytes', { checksumSecret: 'x'.repeat(31) }, /checksumSecret: .*32 bytes/],
    ['a checksum secret of 31 bytes given as bytes', { checksumSecret: new Uint8Array(31) }, /checksumSecret: .*32 bytes/],
    ['a checksum secret that is a number', { checksumSecret: 42 as unknown as string }, /checksumSecret: /],
    ['an empty subject', { subject: '' }, /subject: /],
    ['a scope with a space', { scopes: ['orders:read orders:write'] }, /scopes\[0\]: /],
    ['an unreadable lifetime', { expiresIn: 'soon' as Duration }, /expiresIn: /],
    ['a CIDR with too many bits', { ip: { allow: ['10.0.0.0/33'] } }, /ip\.allow\[0\]: /],
    ['an allowed address that is not an IP', { ip: { allow: ['10.0.0.0/8', 'intranet'] } }, /ip\.allow\[1\]: /],
    ['a denied address that is not an IP', { ip: { deny: ['300.1.2.3'] } }, /ip\.deny\[0\]: /],
    ['an unknown time zone', { hours: { timezone: 'Mars/Olympus_Mons', windows: [{ from: '08:00', to: '18:00' }] } }, /hours\.timezone: /],
    ['a window start that is not HH:MM', { hours: { timezone: 'UTC', windows: [{ from: '25:00', to: '18:00' }] } }, /hours\.windows\[0\]\.from: /],
    ['an unknown day', { hours: { timezone: 'UTC', windows: [{ days: ['funday' as 'mon'], from: '08:00', to: '18:00' }] } }, /hours\.windows\[0\]\.days\[0\]: /],
    ['an empty window', { hours: { timezone: 'UTC', windows: [{ from: '08:00', to: '08:00' }] } }, /hours\.windows\[0\]: /],
    ['zero uses', { uses: 0 }, /uses: /],
    ['negative uses', { uses: -1 }, /uses: /],
    ['fractional uses', { uses: 1.5 }, /uses: /],
    ['NaN uses', { uses: Number.NaN }, /uses: /],
    ['a rate limit of zero', { rateLimit: { limit: 0, window: '1m' } }, /rateLimit\.limit: /],
    // Regressions: each of these used to issue a key (or throw a bare TypeError) instead of refusing.
    ['a zero lifetime (a key born expired)', { expiresIn: 0 }, /expiresIn: .*greater than zero/],
    ['an invalid issue time (NaN times, which JSON stores as null: never expires)', { now: new Date('not a date') }, /now: /],
    ['an ip allow-list given as a string', { ip: { allow: '10.0.0.0/8' as unknown as string[] } }, /ip\.allow: /],
    ['a misspelt ip key (an unrestricted key)', { ip: { alow: ['10.0.0.0/8'] } as unknown as IssueApiKeyOptions['ip'] }, /ip\.alow: unknown key/],
    ['an ip rule that is not an object', { ip: '10.0.0.0/8' as unknown as IssueApiKeyOptions['ip'] }, /ip: /],
    ['a non-string ip entry', { ip: { deny: [167772160 as unknown as string] } }, /ip\.deny\[0\]: /],
    ['an hours rule without windows', { hours: { timezone: 'UTC' } as unknown as IssueApiKeyOptions['hours'] }, /hours\.windows: /],
    ['a name that is not a string', { name: 42 as unknown as string }, /name: expected a string/],
    ['metadata that is not an object', { metadata: ['a'] as unknown as Record<string, string> }, /metadata: expected an object/],
    ['a metadata value that is an object', { metadata: { team: { id: 1 } } as unknown as Record<string, string> }, /metadata\.team: /],
    ['a metadata value that is NaN', { metadata: { weight: Number.NaN } }, /metadata\.weight: /],
    // A lone surrogate (a name cut mid-emoji): PostgreSQL refuses it and Redis's Lua cannot decode it.
    ['a name cut in the middle of an emoji', { name: 'deploy bot \ud83d' }, /name: expected well-formed Unicode/],
    ['a subject with a lone surrogate', { subject: '\udc00svc' }, /subject: expected well-formed Unicode/],
    ['a metadata value with a lone surrogate', { metadata: { note: 'x\ud800' } }, /metadata\.note: expected well-formed Unicode/],
    ['a name with a NUL', { name: 'deploy\u0000bot' }, /name: expected well-formed Unicode without NUL/],
  ];
  for (const [what, options, field] of bad) {
    it(`throws ApiKeyError naming the field for ${what}`, () => {
      let thrown: unknown;
      try {
        issue(options);
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(ApiKeyError);
      expect(thrown).toBeInstanceOf(TokenGuardError);
      expect(thrown).toMatchObject({ name: 'ApiKeyError', code: 'api_key.invalid', message: expect.stringMatching(field) });
    });
  }

  it('takes names and metadata with emoji and other well-formed Unicode as they are', () => {
    const { record } = issue({ name: 'deploy bot \ud83d\ude80', metadata: { team: 'caf\u00e9', weight: 2, on: true } });
    expect(record).toMatchObject({ name: 'deploy bot \ud83d\ude80', metadata: { team: 'caf\u00e9', weight: 2, on: true } });
  });

  it('names every bad field at once', () => {
    expect(() => issue({ prefix: 'tg', uses: 0, ip: { allow: ['nope'] } })).toThrow(/prefix: .*ip\.allow\[0\]: .*uses: /s);
  });
});

describe('the guard and API keys', () => {
  it('accepts a stored key and describes it by its record', async () => {
    const store = new MemoryStore();
    const { key, record } = await storeApiKey(store);
    const decision = await apiKeyGuard(store).evaluate(bearer(key));
    expectAllowed(decision);
    expect(decision.token).toMatchObject({ id: record.id, kind: 'api_key', subject: 'svc-billing', scopes: ['orders:read'] });
  });

  it('refuses malformed and mistyped keys as token.malformed without a store lookup', async () => {
    const store = new MemoryStore();
    const { key } = await storeApiKey(store);
    const lookups = vi.spyOn(store, 'getApiKey');
    const guard = apiKeyGuard(store);
    const malformed = [
      ...oneCharTypos(key, 3).slice(0, 12),
      key.slice(0, -1),
      key.slice(0, 20),
      `${key}A`,
      `${key.slice(0, 10)}-${key.slice(11)}`,
      `${key.slice(0, 10)}.${key.slice(11)}`,
      `${key.slice(0, 10)}~${key.slice(11)}`,
      `tg_${key.slice(0, -1)}`,
    ];
    for (const bad of malformed) expectRefused(await guard.evaluate(bearer(bad)), 'token.malformed');
    expect(lookups).not.toHaveBeenCalled();
    expectAllowed(await guard.evaluate(bearer(key)));
    expect(lookups).toHaveBeenCalledTimes(1);
  });

  it('refuses a key under another prefix as token.malformed without a store lookup when JWTs are accepted too', async () => {
    const store = new MemoryStore();
    const { key } = await storeApiKey(store);
    const lookups = vi.spyOn(store, 'getApiKey');
    const guard = createGuard({ jwt: await jwtPolicy(), apiKeys: { prefix: 'tg_' }, store, clock: () => NOW, rules: ORDERS_RULES });
    expectRefused(await guard.evaluate(bearer(`tx_${key.slice(3)}`)), 'token.malformed');
    expectRefused(await guard.evaluate(bearer(issue({ prefix: 'live_' }).key)), 'token.malformed');
    expect(lookups).not.toHaveBeenCalled();
  });

  it('refuses a well-formed key the store does not know as token.invalid', async () => {
    const store = new MemoryStore();
    const lookups = vi.spyOn(store, 'getApiKey');
    const { key } = issue();
    expectRefused(await apiKeyGuard(store).evaluate(bearer(key)), 'token.invalid');
    expect(lookups).toHaveBeenCalledWith(hashApiKey(key));
  });

  it('refuses a key whose record has expired as token.expired', async () => {
    const store = new MemoryStore();
    const { key } = await storeApiKey(store, { expiresIn: '1h', now: new Date(NOW.getTime() - 2 * 3_600_000) });
    expectRefused(await apiKeyGuard(store).evaluate(bearer(key)), 'token.expired');
  });

  it('refuses a key at the very instant its record expires, and accepts it a moment before', async () => {
    const store = new MemoryStore();
    const { key } = await storeApiKey(store, { expiresIn: '1h', now: new Date(NOW.getTime() - 3_600_000) });
    const guard = apiKeyGuard(store);
    expectRefused(await guard.evaluate(bearer(key)), 'token.expired');
    expectAllowed(await guard.evaluate(bearer(key, { now: new Date(NOW.getTime() - 1) })));
  });

  it('accepts a key that never expires', async () => {
    const store = new MemoryStore();
    const { key } = await storeApiKey(store, { expiresIn: null });
    expectAllowed(await apiKeyGuard(store).evaluate(bearer(key, { now: new Date('2099-01-01T00:00:00Z') })));
  });

  it('refuses a key whose record carries revokedAt as token.revoked', async () => {
    const store = new MemoryStore();
    const { key, record } = await storeApiKey(store);
    store.updateApiKey(record.hash, { revokedAt: NOW.getTime() - 1000 });
    expectRefused(await apiKeyGuard(store).evaluate(bearer(key)), 'token.revoked');
  });

  it('honours a revokedAt in the future from that instant on', async () => {
    const store = new MemoryStore();
    const { key, record } = await storeApiKey(store);
    store.updateApiKey(record.hash, { revokedAt: NOW.getTime() + 60_000 });
    const guard = apiKeyGuard(store);
    expectAllowed(await guard.evaluate(bearer(key)));
    expectRefused(await guard.evaluate(bearer(key, { now: new Date(NOW.getTime() + 60_000) })), 'token.revoked');
  });

  it('refuses a key revoked through guard.revoke by its record id', async () => {
    const store = new MemoryStore();
    const { key, record } = await storeApiKey(store);
    const guard = apiKeyGuard(store);
    expectAllowed(await guard.evaluate(bearer(key)));
    await guard.revoke(record.id);
    expectRefused(await guard.evaluate(bearer(key)), 'token.revoked');
  });

  it('refuses a key once its uses are spent', async () => {
    const store = new MemoryStore();
    const { key } = await storeApiKey(store, { uses: 2 });
    const guard = apiKeyGuard(store);
    expectAllowed(await guard.evaluate(bearer(key)));
    expectAllowed(await guard.evaluate(bearer(key)));
    expectRefused(await guard.evaluate(bearer(key)), 'token.expired');
  });

  it("narrows access to the key's own ip allow-list", async () => {
    const store = new MemoryStore();
    const { key } = await storeApiKey(store, { ip: { allow: ['10.0.0.0/8'] } });
    const guard = apiKeyGuard(store);
    expectRefused(await guard.evaluate(bearer(key, { remoteAddress: '203.0.113.9' })), 'ip.denied');
    expectAllowed(await guard.evaluate(bearer(key, { remoteAddress: '10.1.2.3' })));
  });

  it("refuses an address on the key's own deny list", async () => {
    const store = new MemoryStore();
    const { key } = await storeApiKey(store, { ip: { deny: ['203.0.113.9'] } });
    const guard = apiKeyGuard(store);
    expectRefused(await guard.evaluate(bearer(key, { remoteAddress: '203.0.113.9' })), 'ip.denied');
    expectAllowed(await guard.evaluate(bearer(key, { remoteAddress: '203.0.113.10' })));
  });

  it("cannot widen the policy's ip allow-list with its own", async () => {
    const store = new MemoryStore();
    const { key } = await storeApiKey(store, { ip: { allow: ['10.0.0.0/8'] } });
    const guard = apiKeyGuard(store, { ip: { allow: ['203.0.113.0/24'] } });
    expectRefused(await guard.evaluate(bearer(key, { remoteAddress: '10.1.2.3' })), 'ip.denied');
    expectRefused(await guard.evaluate(bearer(key, { remoteAddress: '203.0.113.9' })), 'ip.denied');
  });

  it("narrows access to the key's own hours", async () => {
    // NOW is Wednesday 10:00 UTC.
    const store = new MemoryStore();
    const night = await storeApiKey(store, { hours: { timezone: 'UTC', windows: [{ from: '00:00', to: '06:00' }] } });
    const mondays = await storeApiKey(store, { hours: { timezone: 'UTC', windows: [{ days: ['mon'], from: '08:00', to: '18:00' }] } });
    const office = await storeApiKey(store, { hours: { timezone: 'Europe/Berlin', windows: [{ days: ['wed'], from: '10:30', to: '11:30' }] } });
    const guard = apiKeyGuard(store);
    expectRefused(await guard.evaluate(bearer(night.key)), 'hours.outside');
    expectRefused(await guard.evaluate(bearer(mondays.key)), 'hours.outside');
    expectAllowed(await guard.evaluate(bearer(office.key))); // 11:00 in Berlin
  });

  it('answers 503 store.unavailable, never allow, when the key lookup fails', async () => {
    const store = new MemoryStore();
    const { key } = await storeApiKey(store);
    vi.spyOn(store, 'getApiKey').mockImplementation(() => {
      throw new Error('connection reset');
    });
    expectRefused(await apiKeyGuard(store).evaluate(bearer(key)), 'store.unavailable');
    vi.spyOn(store, 'getApiKey').mockImplementation(() => Promise.reject(new Error('connection reset')) as never);
    expectRefused(await apiKeyGuard(store).evaluate(bearer(key)), 'store.unavailable');
  });

  it('accepts a record that went through a JSON round trip (a plain, unfrozen object)', async () => {
    const { key, record } = issue();
    const store = new FixedRecordStore(JSON.parse(JSON.stringify(record)));
    expectAllowed(await apiKeyGuard(store).evaluate(bearer(key)));
  });
});

describe('garbage in the store', () => {
  const { key, record } = issue();
  const garbage: [string, unknown][] = [
    ['a string instead of a record', 'svc-billing'],
    ['a number instead of a record', 42],
    ['an array instead of a record', [record]],
    ['scopes that are not an array', { ...record, scopes: 'orders:read' }],
    ['scopes holding a non-string', { ...record, scopes: ['orders:read', 7] }],
    ['a subject that is not a string', { ...record, subject: { name: 'svc' } }],
    ['a missing id', { ...record, id: undefined }],
    ['a missing createdAt', { ...record, createdAt: undefined }],
    ['an expiresAt that is a date string', { ...record, expiresAt: '2099-01-01T00:00:00Z' }],
    ['a revokedAt that is a date string', { ...record, revokedAt: '2026-01-01T00:00:00Z' }],
    ['a remaining count that is a string', { ...record, remaining: 'lots' }],
    ['the record of another key', { ...record, hash: hashApiKey(issue().key) }],
    ['an ip rule with a string allow-list', { ...record, ip: { allow: '10.0.0.0/8' } }],
    ['an ip rule with a bad CIDR', { ...record, ip: { allow: ['10.0.0.0/99'] } }],
    ['an hours rule with an unknown time zone', { ...record, hours: { timezone: 'Nowhere/Land', windows: [{ from: '08:00', to: '18:00' }] } }],
    ['an hours rule that is a string', { ...record, hours: 'office' }],
    ['a rate limit of minus one', { ...record, rateLimit: { limit: -1, window: '1m' } }],
    ['a rate limit with an unreadable window', { ...record, rateLimit: { limit: 10, window: 'often' } }],
  ];
  for (const [what, stored] of garbage) {
    it(`refuses a key whose stored record has ${what} as token.invalid`, async () => {
      expectRefused(await apiKeyGuard(new FixedRecordStore(stored)).evaluate(bearer(key)), 'token.invalid');
    });
  }
});

// Regression: a stored record whose restricting fields are unreadable (NaN compares false with everything; an
// ip rule that is not { allow?, deny? } restricts nothing) must be refused, never read as "no restriction".
describe('garbage in the store that must not fail open', () => {
  const { key, record } = issue({ now: new Date(NOW.getTime() - 86_400_000) });
  const failOpen: [string, unknown, 'revokeSubject'?][] = [
    ['an expiresAt of NaN (never expires)', { ...record, expiresAt: Number.NaN }],
    ['a revokedAt of NaN (never revoked)', { ...record, revokedAt: Number.NaN }],
    ['a remaining count of NaN (unlimited uses)', { ...record, remaining: Number.NaN }],
    ['a createdAt of NaN (escapes a subject-wide revocation)', { ...record, createdAt: Number.NaN }, 'revokeSubject'],
    ['an ip rule that is a string (unrestricted)', { ...record, ip: '10.0.0.0/8' }],
    ['an expiresAt no Date can hold (an Invalid Date in decision.token)', { ...record, expiresAt: 1e20 }],
    ['an ip rule with a misspelt key (unrestricted)', { ...record, ip: { alow: ['10.0.0.0/8'] } }],
  ];
  for (const [what, stored, revokeSubject] of failOpen) {
    it(`refuses a key whose stored record has ${what} as token.invalid`, async () => {
      const guard = apiKeyGuard(new FixedRecordStore(stored));
      if (revokeSubject) await guard.revokeSubject('svc-billing');
      expectRefused(await guard.evaluate(bearer(key)), 'token.invalid');
    });
  }
});

describe('isApiKeyShaped', () => {
  it('recognises a key of any prefix, keyed or not, by its checksum, and nothing else', () => {
    const secret = 'k'.repeat(32);
    for (const prefix of ['tg_', 'sk_live_', 'rk_test_', 'key_']) {
      expect(isApiKeyShaped(issueApiKey({ prefix, subject: 's', scopes: [], expiresIn: '1h' }).key)).toBe(true);
      expect(isApiKeyShaped(issueApiKey({ prefix, subject: 's', scopes: [], expiresIn: '1h', checksumSecret: secret }).key)).toBe(true);
    }
    const key = issueApiKey({ prefix: 'sk_live_', subject: 's', scopes: [], expiresIn: '1h' }).key;
    const typo = key.slice(0, 12) + (key[12] === 'a' ? 'b' : 'a') + key.slice(13);
    for (const other of [typo, 'jti-123', 'tg_short', `${key}x`, key.replace('sk_live_', '9k_')]) expect([other, isApiKeyShaped(other)]).toEqual([other, false]);
  });

  it('never takes a record id for a key: `key_` + 32 hex characters is shorter than any key body and checksum', () => {
    for (let i = 0; i < 2000; i++) {
      const { record } = issueApiKey({ prefix: 'tg_', subject: 's', scopes: [], expiresIn: '1h' });
      expect(record.id).toMatch(/^key_[0-9a-f]{32}$/);
      expect(isApiKeyShaped(record.id)).toBe(false);
    }
  });
});
