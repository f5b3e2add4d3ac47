// Strict IP parsing, CIDR sets compiled to integer masks, and client-IP resolution behind trusted proxies.
// The allow/deny check itself is src/checks/ip.ts.
import ipaddr from 'ipaddr.js';
import { BoundedMap, flatCopy } from './bounded-map.js';
import { warnOnce } from './warnings.js';

/** A parsed address: IPv4 as one 32-bit word, IPv6 as four. IPv4-mapped IPv6 is stored as IPv4. */
export interface ParsedIp {
  v4: boolean;
  words: Uint32Array;
  /** Canonical text (`203.0.113.7`, `2001:db8::1`) for audit events. */
  text: string;
}

interface Cidr {
  v4: boolean;
  words: Uint32Array;
  masks: Uint32Array;
  /** Prefix length in the address's own family: an IPv4-mapped `::ffff:10.0.0.0/104` is 8. */
  bits: number;
}

// Four-part dotted decimal only: `010.0.0.1` (octal to some parsers), `0x7f.1`, `127.1` are refused,
// never re-interpreted, so a proxy and the guard cannot disagree about what an address means.
const V4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const V6_CHARS_RE = /^[0-9a-fA-F:.]+$/;

function v4FromMatch(m: RegExpExecArray, text: string): ParsedIp {
  const n = ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0;
  // Copied: an X-Forwarded-For hop is a slice of the whole header, and the text outlives the request (usage records,
  // limiter keys), so a client padding the header would otherwise make each of them cost kilobytes.
  return { v4: true, words: Uint32Array.of(n), text: flatCopy(text) };
}

/** Parses an IP address strictly (no octal, hex or short IPv4; IPv6 zone ids dropped). Returns null if it is not one. */
export function parseIp(input: string): ParsedIp | null {
  const m4 = V4_RE.exec(input);
  if (m4) return v4FromMatch(m4, input);
  let s = input;
  const zone = s.indexOf('%');
  if (zone !== -1) s = s.slice(0, zone);
  if (s.length < 2 || s.length > 45 || !V6_CHARS_RE.test(s) || !s.includes(':')) return null;
  if (s.includes('.')) {
    // The dotted tail is written as its two hex words before ipaddr.js sees it: ipaddr.js reads `::a.b.c.d` (an
    // IPv4-compatible address, which Node prints for a peer `::a00:1`) as `::ffff:a.b.c.d`, so the same IPv6 peer would
    // pass IPv4 allow lists and trusted-proxy entries as a.b.c.d in one spelling and not in the other.
    const colon = s.lastIndexOf(':');
    const tail = V4_RE.exec(s.slice(colon + 1));
    if (!tail) return null;
    const hi = (Number(tail[1]) << 8) | Number(tail[2]);
    const lo = (Number(tail[3]) << 8) | Number(tail[4]);
    s = `${s.slice(0, colon + 1)}${hi.toString(16)}:${lo.toString(16)}`;
  }
  if (!ipaddr.IPv6.isValid(s)) return null;
  const v6 = ipaddr.IPv6.parse(s);
  if (v6.isIPv4MappedAddress()) {
    const v4 = v6.toIPv4Address().toString();
    return v4FromMatch(V4_RE.exec(v4) as RegExpExecArray, v4);
  }
  const p = v6.parts;
  const words = Uint32Array.of(
    (((p[0] as number) << 16) | (p[1] as number)) >>> 0,
    (((p[2] as number) << 16) | (p[3] as number)) >>> 0,
    (((p[4] as number) << 16) | (p[5] as number)) >>> 0,
    (((p[6] as number) << 16) | (p[7] as number)) >>> 0,
  );
  return { v4: false, words, text: v6.toString() };
}

function parseCidr(input: string): Cidr | null {
  const slash = input.indexOf('/');
  const ip = parseIp(slash === -1 ? input : input.slice(0, slash));
  if (!ip || (slash !== -1 && input.includes('%'))) return null;
  const max = ip.v4 ? 32 : 128;
  let bits = max;
  if (slash !== -1) {
    const b = input.slice(slash + 1);
    if (!/^(0|[1-9]\d{0,2})$/.test(b)) return null;
    bits = Number(b);
    // `::ffff:10.0.0.0/104` is IPv4-mapped: its prefix counts from the start of the IPv6 address.
    if (ip.v4 && input.includes(':')) bits -= 96;
    if (bits < 0 || bits > max) return null;
  }
  const masks = new Uint32Array(ip.words.length);
  for (let i = 0; i < masks.length; i++) {
    const b = Math.max(0, Math.min(32, bits - i * 32));
    masks[i] = b === 0 ? 0 : (0xffffffff << (32 - b)) >>> 0;
  }
  const words = ip.words.map((w, i) => (w & (masks[i] as number)) >>> 0);
  return { v4: ip.v4, words, masks, bits };
}

/** Why an IP or CIDR string is invalid, or undefined when it is fine. */
export function checkCidr(input: string): string | undefined {
  return parseCidr(input) ? undefined : `not an IP or CIDR: "${input}"`;
}

/** The widest prefixes a trusted proxy range may have: fc00::/7 (unique-local IPv6) and the IPv4 /8s stay acceptable. */
const MIN_PROXY_BITS_V4 = 8;
const MIN_PROXY_BITS_V6 = 7;

/**
 * Why a `trustProxy` entry is invalid or too wide, or undefined when it is fine. A range that takes in public address
 * space wholesale (IPv4 wider than /8, IPv6 wider than /7, an IPv4-mapped range wider than `::ffff:0:0/104`) makes
 * nearly every client a trusted proxy, and a trusted proxy's X-Forwarded-For is believed: each client could then
 * write in whatever address it likes. Read from the parsed range, so every spelling (`0::0/0`, `::FFFF:0.0.0.0/96`)
 * is judged alike.
 */
export function checkProxyCidr(input: string): string | undefined {
  const c = parseCidr(input);
  if (!c) return `not an IP or CIDR: "${input}"`;
  const min = c.v4 ? MIN_PROXY_BITS_V4 : MIN_PROXY_BITS_V6;
  if (c.bits >= min) return undefined;
  const widest = !c.v4
    ? 'an IPv6 range wider than /7 (fc00::/7 is the widest accepted)'
    : input.includes(':')
      ? 'an IPv4-mapped range wider than ::ffff:0:0/104'
      : 'an IPv4 range wider than /8';
  return (
    `"${input}" is ${widest}: it takes in public addresses, so nearly any client would count as a trusted proxy and could ` +
    "choose its own address through X-Forwarded-For (IP rules, key IP bindings, preAuthLimit and risk would read it). List your proxies' " +
    "own addresses or private ranges, or, when they are not known (a hosting platform's load balancer), give trustProxy: { hops: n }, " +
    'the number of proxies in front of the app'
  );
}

function contains(cidr: Cidr, ip: ParsedIp): boolean {
  if (cidr.v4 !== ip.v4) return false;
  for (let i = 0; i < cidr.words.length; i++) {
    if (((ip.words[i] as number) & (cidr.masks[i] as number)) >>> 0 !== cidr.words[i]) return false;
  }
  return true;
}

/** A compiled list of CIDRs. */
export class CidrSet {
  private readonly cidrs: Cidr[];

  /** Throws TypeError naming the first bad entry; policies are checked before this runs. */
  constructor(entries: readonly string[]) {
    this.cidrs = entries.map((e) => {
      const c = parseCidr(e);
      if (!c) throw new TypeError(`not an IP or CIDR: "${e}"`);
      return c;
    });
  }

  /** Whether the address falls in any range of the set. */
  has(ip: ParsedIp): boolean {
    for (const c of this.cidrs) if (contains(c, ip)) return true;
    return false;
  }

  get size(): number {
    return this.cidrs.length;
  }
}

/** Why a `trustProxy.hops` value is not a number of proxies (a whole number from 1 to 10), or undefined when it is one. */
export function checkProxyHops(v: unknown): string | undefined {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 10) return undefined;
  if (v === undefined) return 'required: the number of proxies in front of the app, 1 to 10';
  return `expected a whole number of proxies from 1 to 10${v === 0 ? ' (for none, give trustProxy: false)' : ''}`;
}

/** The longest X-Forwarded-For value whose hops ClientIpResolver keeps in its cache. */
const MAX_KEPT_HEADER = 256;

/**
 * Which X-Forwarded-For entries are believed: none (`false`), those written by the proxies in a CIDR list, or the
 * rightmost `hops` (the proxies in front of the app, however they are addressed).
 */
export type TrustProxySetting = false | readonly string[] | { readonly hops: number };

/** Resolves the client address of a request from its socket address and, behind trusted proxies, X-Forwarded-For. */
export class ClientIpResolver {
  // Parsing costs ~1-2 µs; clients repeat, so parsed addresses are kept in a small bounded map (cheaper to read
  // than an LRU, and a client that drops out of it only costs one parse).
  private readonly cache = new BoundedMap<string, ParsedIp | false>(2048);
  private readonly trusted: CidrSet | undefined;
  /** With `{ hops }`: which X-Forwarded-For entry, counted from the right (1 = the last), is the client; else 0. */
  private readonly hops: number;
  // The address parsed last, and what it parsed to: a keep-alive connection (or the one load balancer in front of the
  // app) sends request after request from one address, which then costs one string compare instead of a Map lookup.
  private lastText: string | undefined;
  private lastIp: ParsedIp | null = null;
  /** Whether this resolver has reported an ignored X-Forwarded-For: after that the hot path reads only this flag. */
  private xffReported: boolean;

  /** `setting` undefined: the policy left `trustProxy` out (off, and a header it ignores is worth a warning). */
  constructor(setting: TrustProxySetting | undefined) {
    const trustProxy = setting ?? false;
    const list = trustProxy !== false && Array.isArray(trustProxy) ? (trustProxy as readonly string[]) : undefined;
    this.trusted = list && list.length > 0 ? new CidrSet(list) : undefined;
    const hops = trustProxy !== false && !list ? (trustProxy as { hops: number }).hops : 0;
    if (!Number.isInteger(hops) || hops < 0) throw new TypeError(`trustProxy.hops: expected a whole number of proxies (got ${String(hops)})`);
    this.hops = hops;
    // Only the default can ignore the header unawares: with CIDRs or hops it is read, and `false` (or `[]`) says the app
    // knows clients reach it directly.
    this.xffReported = setting !== undefined;
  }

  /** `keep`: whether `s` may be kept as a cache key (see resolve). */
  private parse(s: string, keep = true): ParsedIp | null {
    if (s === this.lastText) return this.lastIp;
    const hit = this.cache.get(s);
    let ip: ParsedIp | null;
    if (hit !== undefined) ip = hit || null;
    else {
      ip = parseIp(s);
      if (!keep) return ip;
      this.cache.set(s, ip ?? false);
    }
    this.lastText = s;
    this.lastIp = ip;
    return ip;
  }

  /**
   * The client address, or null when unknown: no socket address, or an unparsable entry met while
   * walking X-Forwarded-For right to left past trusted proxies; with `{ hops }`, an X-Forwarded-For with fewer
   * entries than hops, or an unparsable entry where the client's should be.
   */
  resolve(remoteAddress: string | undefined, forwardedFor: string | string[] | undefined): ParsedIp | null {
    if (this.hops !== 0) return this.fromRight(forwardedFor);
    if (!this.xffReported && forwardedFor !== undefined && forwardedFor !== '') this.reportIgnoredXff();
    if (!remoteAddress) return null;
    const peer = this.parse(remoteAddress);
    if (!peer || !this.trusted?.has(peer) || forwardedFor === undefined) return peer;
    const joined = typeof forwardedFor === 'string' ? forwardedFor : forwardedFor.join(',');
    const hops = joined.split(',');
    // A hop is a slice of the header and keeps all of it alive: hops of a long header (a client can send kilobytes
    // through a proxy that appends) are parsed but not kept, so the cache holds at most 2048 short headers.
    const keep = joined.length <= MAX_KEPT_HEADER;
    let client = peer;
    for (let i = hops.length - 1; i >= 0; i--) {
      const entry = (hops[i] as string).trim();
      if (entry === '' && hops.length === 1) return peer;
      const ip = this.parse(entry, keep);
      if (!ip) return null;
      client = ip;
      if (!this.trusted.has(ip)) return ip;
    }
    // Every hop was a trusted proxy: the leftmost one is as far as the chain can be believed.
    return client;
  }

  /**
   * A request with X-Forwarded-For and no trusted proxy: most likely the app is behind a proxy it was not told about,
   * so every client resolves to the proxy's address, and IP allow lists, per-IP limits and preAuthLimit all key on that
   * one address. Said once per process; a client writing the header itself (no proxy) costs one harmless warning.
   */
  private reportIgnoredXff(): void {
    this.xffReported = true;
    warnOnce(
      'TOKEN_GUARD_XFF_IGNORED',
      'A request carried X-Forwarded-For, but trustProxy is off, so the header is ignored and the client is the socket ' +
        "address: behind a proxy, every client looks like the proxy (IP rules, per-IP limits and preAuthLimit all key on it). Set trustProxy to your proxies' CIDRs " +
        "(trustProxy: ['10.0.0.0/8']) or, when their addresses are not known, to the number of proxies in front of the app (trustProxy: { hops: 1 }). " +
        'If clients reach the app directly, leave trustProxy off: the header is theirs to write and rightly ignored.',
    );
  }

  /**
   * `{ hops: n }`: the entry n from the right. Each proxy appends the address it was reached from, and a client can
   * only write to the left of what they append, so the rightmost n entries are the proxies' own. The socket address
   * is not read: it is the last proxy's. Fewer than n entries means the request did not come through all n proxies,
   * so the client is unknown rather than guessed. Scans with lastIndexOf, several headers last to first (as if
   * joined with commas), and slices out only the one entry it reads: no split, no join.
   */
  private fromRight(forwardedFor: string | string[] | undefined): ParsedIp | null {
    if (forwardedFor === undefined) return null;
    let left = this.hops;
    const many = typeof forwardedFor === 'string' ? undefined : forwardedFor;
    for (let h = many ? many.length - 1 : 0; h >= 0; h--) {
      const header: unknown = many ? many[h] : forwardedFor;
      if (typeof header !== 'string') return null;
      let end = header.length;
      for (;;) {
        const comma = end === 0 ? -1 : header.lastIndexOf(',', end - 1);
        if (--left === 0) return this.parse(header.slice(comma + 1, end).trim(), header.length <= MAX_KEPT_HEADER);
        if (comma === -1) break;
        end = comma;
      }
    }
    return null;
  }
}

/** An allow/deny constraint: deny wins; with an allow list, anything not in it is denied. */
export interface IpRule {
  allow?: readonly string[];
  deny?: readonly string[];
}
