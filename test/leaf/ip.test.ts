import { describe, expect, it } from 'vitest';
import { CidrSet, ClientIpResolver, checkCidr, parseIp } from '../../src/leaf/ip.js';

const ip = (s: string) => {
  const p = parseIp(s);
  if (!p) throw new Error(`test address ${s} did not parse`);
  return p;
};

describe('parseIp', () => {
  it.each(['203.0.113.7', '0.0.0.0', '255.255.255.255', '2001:db8::1', '::1', 'fe80::1%eth0', '::ffff:10.1.2.3', '::ffff:a01:203'])('parses %s', (s) => {
    expect(parseIp(s)).not.toBeNull();
  });

  it.each([
    ['010.0.0.1', 'a leading zero (octal to some parsers)'],
    ['0x7f.0.0.1', 'a hex part'],
    ['127.1', 'a short form'],
    ['2130706433', 'a bare integer'],
    ['256.0.0.1', 'an out-of-range part'],
    ['1.2.3.4:80', 'a port'],
    ['[::1]', 'brackets'],
    ['::ffff:010.0.0.1', 'an octal-looking embedded IPv4'],
    ['unknown', 'a word'],
    ['', 'nothing'],
    ['1.2.3.4 ', 'trailing space'],
    ['2001:db8::g', 'a non-hex IPv6 group'],
  ])('refuses %s (%s)', (s) => {
    expect(parseIp(s)).toBeNull();
  });

  it('treats IPv4-mapped IPv6 as the IPv4 address', () => {
    expect(ip('::ffff:10.1.2.3')).toMatchObject({ v4: true, text: '10.1.2.3' });
    expect(ip('::ffff:a01:203')).toMatchObject({ v4: true, text: '10.1.2.3' });
  });
});

describe('CIDR sets', () => {
  it('matches IPv4 and IPv6 ranges and single addresses', () => {
    const set = new CidrSet(['203.0.113.0/24', '2001:db8::/32', '198.51.100.7', '0.0.0.0/0']);
    expect(set.has(ip('203.0.113.200'))).toBe(true);
    expect(set.has(ip('2001:db8:ffff::1'))).toBe(true);
    expect(set.has(ip('2001:db9::1'))).toBe(false);
    const narrow = new CidrSet(['203.0.113.0/24', '198.51.100.7']);
    expect(narrow.has(ip('203.0.114.1'))).toBe(false);
    expect(narrow.has(ip('198.51.100.7'))).toBe(true);
    expect(narrow.has(ip('198.51.100.8'))).toBe(false);
  });

  it('matches a mapped address against an IPv4 range and a mapped range against IPv4', () => {
    expect(new CidrSet(['10.0.0.0/8']).has(ip('::ffff:10.9.9.9'))).toBe(true);
    expect(new CidrSet(['::ffff:10.0.0.0/104']).has(ip('10.9.9.9'))).toBe(true);
  });

  it('never lets an IPv4 range match an IPv6 address of the same bits', () => {
    expect(new CidrSet(['0.0.0.0/0']).has(ip('::1'))).toBe(false);
    expect(new CidrSet(['::/0']).has(ip('10.0.0.1'))).toBe(false);
  });

  it.each(['10.0.0.300/8', '10.0.0.0/33', '2001:db8::/129', '010.0.0.0/8', '10.0.0.0/08', '10.0.0.0/', 'fe80::1%eth0/64', 'x'])('rejects the CIDR %s', (c) => {
    expect(checkCidr(c)).toMatch(/not an IP or CIDR/);
    expect(() => new CidrSet([c])).toThrow(TypeError);
  });
});

describe('ClientIpResolver', () => {
  it('uses the socket address when no proxy is trusted, ignoring X-Forwarded-For', () => {
    const r = new ClientIpResolver(false);
    expect(r.resolve('198.51.100.1', '10.0.0.1')?.text).toBe('198.51.100.1');
  });

  it('answers each address for itself when one repeats and others come between (the last one is remembered)', () => {
    const r = new ClientIpResolver(false);
    const seq = ['198.51.100.1', '198.51.100.1', '2001:db8::1', 'not-an-ip', 'not-an-ip', '198.51.100.1', '203.0.113.9'];
    expect(seq.map((a) => r.resolve(a, undefined)?.text ?? null)).toEqual(['198.51.100.1', '198.51.100.1', '2001:db8::1', null, null, '198.51.100.1', '203.0.113.9']);
  });

  it('walks X-Forwarded-For right to left past trusted proxies', () => {
    const r = new ClientIpResolver(['10.0.0.0/8', '127.0.0.1']);
    expect(r.resolve('127.0.0.1', '203.0.113.9, 10.0.0.2')?.text).toBe('203.0.113.9');
    // A client-forged leftmost entry is not believed: the first untrusted hop from the right wins.
    expect(r.resolve('127.0.0.1', '10.1.1.1, 198.51.100.4, 10.0.0.2')?.text).toBe('198.51.100.4');
    expect(r.resolve('127.0.0.1', '1.1.1.1, 198.51.100.4')?.text).toBe('198.51.100.4');
  });

  it('joins several X-Forwarded-For headers in order', () => {
    const r = new ClientIpResolver(['127.0.0.1', '10.0.0.0/8']);
    expect(r.resolve('127.0.0.1', ['203.0.113.9', '10.0.0.5'])?.text).toBe('203.0.113.9');
  });

  it('ignores X-Forwarded-For from an untrusted peer', () => {
    const r = new ClientIpResolver(['10.0.0.0/8']);
    expect(r.resolve('198.51.100.1', '10.0.0.1')?.text).toBe('198.51.100.1');
  });

  it('makes the client unknown when the walk meets an unparsable or non-canonical entry', () => {
    const r = new ClientIpResolver(['127.0.0.1']);
    for (const xff of ['010.0.0.1', '0x7f.0.0.1', 'unknown', '203.0.113.9:4711', '203.0.113.9,,']) {
      expect(r.resolve('127.0.0.1', xff)).toBeNull();
    }
  });

  it('uses the leftmost hop when every hop is a trusted proxy', () => {
    const r = new ClientIpResolver(['10.0.0.0/8', '127.0.0.1']);
    expect(r.resolve('127.0.0.1', '10.0.0.9, 10.0.0.2')?.text).toBe('10.0.0.9');
  });

  it('makes the client unknown without a socket address', () => {
    expect(new ClientIpResolver(false).resolve(undefined, undefined)).toBeNull();
    expect(new ClientIpResolver(false).resolve('not-an-ip', undefined)).toBeNull();
  });

  it('resolves the hops of a long X-Forwarded-For without keeping them (each would keep the whole header alive)', () => {
    const r = new ClientIpResolver(['127.0.0.1']);
    const cache = (r as unknown as { cache: { size: number } }).cache;
    const padding = Array.from({ length: 400 }, (_, i) => `198.51.100.${i % 250}`).join(', ');
    expect(r.resolve('127.0.0.1', `${padding}, 203.0.113.9`)?.text).toBe('203.0.113.9');
    expect(cache.size).toBe(1); // the socket address only
    expect(r.resolve('127.0.0.1', '203.0.113.10')?.text).toBe('203.0.113.10');
    expect(cache.size).toBe(2);
  });

  it('treats the IPv4-mapped socket address of a dual-stack server as IPv4', () => {
    expect(new ClientIpResolver(['127.0.0.1']).resolve('::ffff:127.0.0.1', '203.0.113.9')?.text).toBe('203.0.113.9');
  });
});
