// Properties of IP parsing, CIDR membership and the X-Forwarded-For walk, against a naive reference:
// addresses as BigInts, membership as a compare of the top `prefix` bits.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { CidrSet, ClientIpResolver, checkCidr, parseIp } from '../../src/leaf/ip.js';
import { IpConstraint } from '../../src/checks/ip.js';
import { FUZZ_TIMEOUT, fuzzParams } from './runs.js';

const MAPPED = 0xffffn << 32n; // ::ffff:0:0/96
const ALL = (1n << 128n) - 1n;

/** The reference's view of an address: IPv4-mapped IPv6 is the IPv4 address (as the README says). */
interface RefIp {
  v4: boolean;
  value: bigint; // 32 bits for IPv4, 128 for IPv6
}
const refOf = (v6: bigint): RefIp => (v6 >> 32n === 0xffffn ? { v4: true, value: v6 & 0xffffffffn } : { v4: false, value: v6 });

/** Whether `ip` is in `net/prefix` (same family): the top `prefix` bits agree. */
function refContains(net: RefIp, prefix: number, ip: RefIp): boolean {
  if (net.v4 !== ip.v4) return false;
  const width = net.v4 ? 32n : 128n;
  const shift = width - BigInt(prefix);
  return net.value >> shift === ip.value >> shift;
}

const dotted = (n: bigint) => [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 0xffn)).join('.');
const groups = (v: bigint) => Array.from({ length: 8 }, (_, i) => Number((v >> BigInt(112 - 16 * i)) & 0xffffn));

/** One of the many spellings of an IPv6 address: full, zero-padded, compressed, upper case, dotted tail. */
function spellV6(v: bigint, style: number): string {
  const g = groups(v);
  let parts = g.map((x) => x.toString(16));
  if (style % 5 === 1) parts = g.map((x) => x.toString(16).padStart(4, '0'));
  let text: string;
  if (style % 5 === 4) text = `${parts.slice(0, 6).join(':')}:${dotted(v & 0xffffffffn)}`;
  else if (style % 5 >= 2) {
    // Compress the longest run of zero groups (two or more) with '::'.
    let best = -1;
    let bestLen = 1;
    for (let i = 0; i < 8; ) {
      let j = i;
      while (j < 8 && g[j] === 0) j++;
      if (j - i > bestLen) [best, bestLen] = [i, j - i];
      i = j === i ? i + 1 : j;
    }
    text = best === -1 ? parts.join(':') : `${parts.slice(0, best).join(':')}::${parts.slice(best + bestLen).join(':')}`;
  } else text = parts.join(':');
  return style % 2 === 1 && style % 5 !== 1 ? text.toUpperCase() : text;
}

/** An address as 128 bits (IPv4 as ::ffff:a.b.c.d) with a spelling the guard must accept. */
const v4Value = fc.bigInt({ min: 0n, max: 0xffffffffn });
const v6Value = fc.oneof(
  fc.bigInt({ min: 0n, max: ALL }),
  v4Value.map((v) => MAPPED | v),
  fc.bigInt({ min: 0n, max: 0xffffffffn }), // ::a.b.c.d, IPv4-compatible (not mapped)
  fc.bigInt({ min: 0n, max: 0xffffn }).map((v) => (0x2001_0db8n << 96n) | v),
);

interface Addr {
  v6: bigint;
  text: string;
}
const spelled = (v6: bigint, style: number): Addr => {
  const ref = refOf(v6);
  if (ref.v4 && style % 3 === 0) return { v6, text: dotted(ref.value) };
  if (ref.v4 && style % 3 === 1) return { v6, text: `${style % 2 ? '::FFFF' : '::ffff'}:${dotted(ref.value)}` };
  return { v6, text: spellV6(v6, style) };
};
const address = fc.tuple(v6Value, fc.nat(29)).map(([v, s]) => spelled(v, s));

interface Net {
  addr: Addr;
  /** Prefix as written after the slash. */
  bits: number;
  text: string;
}
/** A CIDR; IPv4 ones written `a.b.c.d/p` or `::ffff:a.b.c.d/96+p`. */
const cidr = fc.tuple(address, fc.nat(128), fc.boolean()).map(([addr, n, bare]): Net => {
  const dottedForm = !addr.text.includes(':');
  const max = dottedForm ? 32 : 128;
  const bits = n % (max + 1);
  return { addr, bits, text: bare ? addr.text : `${addr.text}/${bits}` };
});

/** The reference reading of a CIDR: undefined when the guard must refuse it. */
function refNet(net: Net): { net: RefIp; prefix: number } | undefined {
  const ref = refOf(net.addr.v6);
  const written = net.text.includes('/') ? net.bits : net.addr.text.includes(':') ? 128 : 32;
  if (!ref.v4) return { net: ref, prefix: written };
  // IPv4 written in IPv6 form counts its prefix from the start of the IPv6 address.
  const prefix = net.addr.text.includes(':') ? written - 96 : written;
  return prefix < 0 ? undefined : { net: ref, prefix };
}

/** An address near a network: inside it, or one bit past its prefix, or anywhere. */
const nearby = (net: Net) =>
  fc.oneof(
    address,
    fc.tuple(fc.bigInt({ min: 0n, max: ALL }), fc.nat(128), fc.nat(29)).map(([noise, flip, style]) => {
      const r = refNet(net);
      if (!r) return spelled(noise, style);
      const width = r.net.v4 ? 32 : 128;
      const hostBits = BigInt(width - r.prefix);
      const hostMask = (1n << hostBits) - 1n;
      let v = (r.net.value & ~hostMask) | (noise & hostMask);
      if (flip % 2 === 0 && r.prefix > 0) v ^= 1n << BigInt(width - 1 - (flip % r.prefix));
      return spelled(r.net.v4 ? MAPPED | (v & 0xffffffffn) : v, style);
    }),
  );

describe('fuzz: IP parsing and CIDR membership', () => {
  it(
    'never throws on any string, and parses every spelling of every address to that address',
    () => {
      const resolver = new ClientIpResolver(false);
      fc.assert(
        fc.property(
          fc.oneof(
            fc.string({ unit: 'binary', maxLength: 50 }),
            fc.stringMatching(/^[0-9a-fA-F:.%/]{0,45}$/),
            address.map((a) => a.text),
          ),
          (s) => {
            parseIp(s);
            checkCidr(s);
            expect(() => resolver.resolve(s, s)).not.toThrow();
          },
        ),
        fuzzParams(),
      );
      fc.assert(
        fc.property(address, (a) => {
          const parsed = parseIp(a.text);
          const ref = refOf(a.v6);
          expect(parsed, a.text).not.toBeNull();
          expect(parsed?.v4).toBe(ref.v4);
          const value = (parsed as NonNullable<typeof parsed>).words.reduce((acc, w) => (acc << 32n) | BigInt(w), 0n);
          expect(value).toBe(ref.value);
        }),
        fuzzParams(),
      );
    },
    FUZZ_TIMEOUT,
  );

  it(
    'agrees with the reference on which CIDRs are valid and which addresses they contain',
    () => {
      fc.assert(
        fc.property(
          cidr.chain((net) => fc.tuple(fc.constant(net), nearby(net))),
          ([net, addr]) => {
            const ref = refNet(net);
            expect(checkCidr(net.text) === undefined, net.text).toBe(ref !== undefined);
            if (!ref) return;
            const ip = parseIp(addr.text);
            expect(new CidrSet([net.text]).has(ip as NonNullable<typeof ip>), `${addr.text} in ${net.text}`).toBe(refContains(ref.net, ref.prefix, refOf(addr.v6)));
          },
        ),
        fuzzParams(),
      );
    },
    FUZZ_TIMEOUT,
  );

  it(
    'IpConstraint lets an address through exactly when no deny range and some allow range (if any) holds it',
    () => {
      const validNet = cidr.filter((n) => refNet(n) !== undefined);
      fc.assert(
        fc.property(
          fc.option(fc.array(validNet, { maxLength: 3 })),
          fc.option(fc.array(validNet, { maxLength: 3 })),
          fc.integer({ min: -1, max: 5 }),
          address,
          (allow, deny, pick, other) => {
            // Aim at a range of the rule half of the time, so both outcomes are common.
            const targets = [...(allow ?? []), ...(deny ?? [])];
            const target = pick >= 0 && targets.length ? (targets[pick % targets.length] as Net).addr : other;
            const inAny = (nets: Net[]) =>
              nets.some((n) => {
                const r = refNet(n) as NonNullable<ReturnType<typeof refNet>>;
                return refContains(r.net, r.prefix, refOf(target.v6));
              });
            const expected = (deny && inAny(deny)) || (allow && !inAny(allow)) ? 'ip.denied' : undefined;
            const rule = { ...(allow && { allow: allow.map((n) => n.text) }), ...(deny && { deny: deny.map((n) => n.text) }) };
            expect(new IpConstraint(rule).check(parseIp(target.text))).toBe(expected);
            expect(new IpConstraint(rule).check(null)).toBe('ip.unknown');
          },
        ),
        fuzzParams(),
      );
    },
    FUZZ_TIMEOUT,
  );
});

// Each case builds its own resolver (about 1 ms: a 2048-entry LRU), so the seeded subset runs a quarter of the cases.
const XFF_SCALE = 0.25;

describe('fuzz: the X-Forwarded-For walk', () => {
  const proxyNets = fc.array(
    cidr.filter((n) => refNet(n) !== undefined),
    { minLength: 1, maxLength: 3 },
  );
  const hop = (nets: Net[]) => fc.oneof(address, ...nets.map((n) => nearby(n)));
  const spacing = fc.constantFrom('', ' ', '  ', '\t');

  it(
    'never throws, whatever the peer and the header hold',
    () => {
      fc.assert(
        fc.property(
          proxyNets,
          fc.option(
            fc.oneof(
              address.map((a) => a.text),
              fc.string({ maxLength: 20 }),
            ),
          ),
          fc.oneof(fc.string({ unit: 'binary', maxLength: 60 }), fc.array(fc.string({ maxLength: 30 }), { maxLength: 3 }), fc.constant(undefined)),
          (nets, peer, xff) => {
            expect(() => new ClientIpResolver(nets.map((n) => n.text)).resolve(peer ?? undefined, xff)).not.toThrow();
          },
        ),
        fuzzParams(XFF_SCALE),
      );
    },
    FUZZ_TIMEOUT,
  );

  it(
    'resolves to the first untrusted hop from the right, never to a trusted proxy while an untrusted hop exists',
    () => {
      fc.assert(
        fc.property(
          proxyNets.chain((nets) =>
            fc.tuple(fc.constant(nets), hop(nets), fc.array(hop(nets), { maxLength: 6 }), fc.array(spacing, { minLength: 14, maxLength: 14 }), fc.nat(3)),
          ),
          ([nets, peer, hops, pads, split]) => {
            const trusted = (a: Addr) =>
              nets.some((n) => {
                const r = refNet(n) as NonNullable<ReturnType<typeof refNet>>;
                return refContains(r.net, r.prefix, refOf(a.v6));
              });
            const texts = hops.map((h, i) => `${pads[i] ?? ''}${h.text}${pads[i + 7] ?? ''}`);
            // Several headers are joined in order; how they were split must not matter.
            const xff =
              split === 0 || texts.length < 2
                ? texts.join(',')
                : [texts.slice(0, split % texts.length).join(','), texts.slice(split % texts.length).join(',')].filter((s) => s !== '');
            const resolved = new ClientIpResolver(nets.map((n) => n.text)).resolve(peer.text, hops.length ? xff : undefined);

            // Reference walk: right to left past trusted addresses; all trusted → the leftmost.
            const chain = [...hops, peer];
            let expected = peer;
            if (trusted(peer) && hops.length) {
              expected = chain[0] as Addr;
              for (let i = chain.length - 1; i >= 0; i--) {
                if (!trusted(chain[i] as Addr)) {
                  expected = chain[i] as Addr;
                  break;
                }
              }
            }
            expect(resolved, `peer ${peer.text}, XFF ${JSON.stringify(xff)}`).not.toBeNull();
            const value = (resolved as NonNullable<typeof resolved>).words.reduce((acc, w) => (acc << 32n) | BigInt(w), 0n);
            expect(value).toBe(refOf(expected.v6).value);
            if (chain.some((a) => !trusted(a))) expect(trusted(expected)).toBe(false);
          },
        ),
        fuzzParams(XFF_SCALE),
      );
    },
    FUZZ_TIMEOUT,
  );

  it(
    'makes the client unknown when an unreadable hop comes before any untrusted one',
    () => {
      fc.assert(
        fc.property(
          proxyNets.chain((nets) =>
            fc.tuple(
              fc.constant(nets),
              nearby(nets[0] as Net),
              fc.array(hop(nets), { maxLength: 3 }),
              fc.constantFrom('unknown', '010.0.0.1', '1.2.3.4:80', '[::1]', '127.1', '', 'a.b.c.d', '0x7f.0.0.1'),
            ),
          ),
          ([nets, peer, before, junk]) => {
            const r = refNet(nets[0] as Net) as NonNullable<ReturnType<typeof refNet>>;
            fc.pre(refContains(r.net, r.prefix, refOf(peer.v6)));
            // A lone empty header is read as no header (the peer is the client).
            fc.pre(junk !== '' || before.length > 0);
            const xff = [...before.map((h) => h.text), junk].join(', ');
            expect(new ClientIpResolver(nets.map((n) => n.text)).resolve(peer.text, xff)).toBeNull();
          },
        ),
        fuzzParams(XFF_SCALE),
      );
    },
    FUZZ_TIMEOUT,
  );
});
