// Strict IP parsing, CIDR sets compiled to integer masks, and client-IP resolution behind trusted proxies.
// The allow/deny check itself is src/checks/ip.ts.
import ipaddr from 'ipaddr.js';
import { BoundedMap, flatCopy } from './bounded-map.js';

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
  return { v4: ip.v4, words, masks };
}

/** Why an IP or CIDR string is invalid, or undefined when it is fine. */
export function checkCidr(input: string): string | undefined {
  return parseCidr(input) ? undefined : `not an IP or CIDR: "${input}"`;
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

/** The longest X-Forwarded-For value whose hops ClientIpResolver keeps in its cache. */
const MAX_KEPT_HEADER = 256;

/** Resolves the client address of a request from its socket address and, behind trusted proxies, X-Forwarded-For. */
export class ClientIpResolver {
  // Parsing costs ~1-2 µs; clients repeat, so parsed addresses are kept in a small bounded map (cheaper to read
  // than an LRU, and a client that drops out of it only costs one parse).
  private readonly cache = new BoundedMap<string, ParsedIp | false>(2048);
  private readonly trusted: CidrSet | undefined;
  // The address parsed last, and what it parsed to: a keep-alive connection (or the one load balancer in front of the
  // app) sends request after request from one address, which then costs one string compare instead of a Map lookup.
  private lastText: string | undefined;
  private lastIp: ParsedIp | null = null;

  constructor(trustProxy: false | readonly string[]) {
    this.trusted = trustProxy && trustProxy.length > 0 ? new CidrSet(trustProxy) : undefined;
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
   * walking X-Forwarded-For right to left past trusted proxies.
   */
  resolve(remoteAddress: string | undefined, forwardedFor: string | string[] | undefined): ParsedIp | null {
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
}

/** An allow/deny constraint: deny wins; with an allow list, anything not in it is denied. */
export interface IpRule {
  allow?: readonly string[];
  deny?: readonly string[];
}
