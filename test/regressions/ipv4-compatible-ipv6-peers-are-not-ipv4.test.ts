// Regression (security review): Node prints an IPv6 peer `::a00:1` as `::10.0.0.1`, and ipaddr.js reads that
// IPv4-compatible spelling as the IPv4-mapped `::ffff:10.0.0.1`. The guard then took the IPv6 client for 10.0.0.1: it
// passed `ip.allow: ['10.0.0.0/8']`, and a trustProxy of 10.0.0.0/8 let it forge X-Forwarded-For.
import { describe, expect, it } from 'vitest';
import { createGuard, MemoryStore, type GuardRequest } from '../../src/index.js';
import { CidrSet, parseIp } from '../../src/leaf/ip.js';
import { basePolicy, signToken, NOW } from '../helpers/tokens.js';

const req = (token: string, remoteAddress: string, path: string, forwardedFor?: string): GuardRequest => ({
  method: 'GET',
  path,
  headers: { authorization: `Bearer ${token}`, ...(forwardedFor !== undefined && { 'x-forwarded-for': forwardedFor }) },
  remoteAddress,
  now: NOW,
});

describe('regression: an IPv4-compatible IPv6 address is not IPv4', () => {
  it('parses `::a.b.c.d` as the IPv6 address it is, in either spelling, and `::ffff:a.b.c.d` still as IPv4', () => {
    expect(parseIp('::10.0.0.1')).toMatchObject({ v4: false, text: '::a00:1' });
    expect(parseIp('::a00:1')).toMatchObject({ v4: false, text: '::a00:1' });
    expect(parseIp('::ffff:10.0.0.1')).toMatchObject({ v4: true, text: '10.0.0.1' });
    expect(parseIp('64:ff9b::10.0.0.1')).toMatchObject({ v4: false });
    expect(new CidrSet(['10.0.0.0/8']).has(parseIp('::10.0.0.1')!)).toBe(false);
    // A policy entry in that spelling is an IPv6 prefix, not 10.0.0.0/8.
    expect(new CidrSet(['::10.0.0.0/104']).has(parseIp('10.0.0.1')!)).toBe(false);
    expect(new CidrSet(['::10.0.0.0/104']).has(parseIp('::a00:1')!)).toBe(true);
  });

  it('an IPv6 peer spelled ::10.0.0.1 neither passes an IPv4 allow list nor counts as a trusted proxy', async () => {
    const guard = createGuard(
      await basePolicy({
        store: new MemoryStore(),
        trustProxy: ['10.0.0.0/8'],
        rules: [
          { path: '/admin/**', scopes: ['orders:read'], ip: { allow: ['10.0.0.0/8'] } },
          { path: '/internal/**', scopes: ['orders:read'], ip: { allow: ['192.168.7.0/24'] } },
        ],
      }),
    );
    const token = await signToken({ scope: 'orders:read' });
    expect((await guard.evaluate(req(token, '10.0.0.1', '/admin/users'))).reason).toBe('ok');
    expect((await guard.evaluate(req(token, '::10.0.0.1', '/admin/users'))).reason).toBe('ip.denied');
    expect((await guard.evaluate(req(token, '10.0.0.1', '/internal/x', '192.168.7.5'))).reason).toBe('ok');
    expect((await guard.evaluate(req(token, '::10.0.0.1', '/internal/x', '192.168.7.5'))).reason).toBe('ip.denied');
  });
});
