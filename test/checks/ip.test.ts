import { describe, expect, it } from 'vitest';
import { parseIp } from '../../src/leaf/ip.js';
import { IpConstraint } from '../../src/checks/ip.js';
import { createGuard, MemoryStore } from '../../src/index.js';
import { basePolicy, signToken, NOW } from '../helpers/tokens.js';

const ip = (s: string) => {
  const p = parseIp(s);
  if (!p) throw new Error(`test address ${s} did not parse`);
  return p;
};

describe('IpConstraint', () => {
  it('lets deny win over allow', () => {
    const c = new IpConstraint({ allow: ['203.0.113.0/24'], deny: ['203.0.113.7'] });
    expect(c.check(ip('203.0.113.8'))).toBeUndefined();
    expect(c.check(ip('203.0.113.7'))).toBe('ip.denied');
    expect(c.check(ip('192.0.2.1'))).toBe('ip.denied');
    expect(c.check(null)).toBe('ip.unknown');
  });
});

describe('IP checks through the guard', () => {
  async function evaluate(remoteAddress: string | undefined, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
    const guard = createGuard(await basePolicy({ store: new MemoryStore(), ...extra }));
    const token = await signToken({ scope: 'admin orders:read' });
    return guard.evaluate({ method: 'GET', path: '/admin/users', headers: { authorization: `Bearer ${token}`, ...headers }, remoteAddress, now: NOW });
  }

  it('allows a rule-level allowed address and refuses another with 403 ip.denied', async () => {
    expect((await evaluate('10.2.3.4')).reason).toBe('ok');
    const d = await evaluate('203.0.113.9');
    expect([d.status, d.reason, d.headers['WWW-Authenticate']]).toEqual([403, 'ip.denied', undefined]);
  });

  it('refuses with ip.unknown when the socket address is missing and an allow list applies', async () => {
    const d = await evaluate(undefined);
    expect([d.status, d.reason]).toEqual([403, 'ip.unknown']);
  });

  it('stacks policy and rule lists: both must pass', async () => {
    const d = await evaluate('10.2.3.4', { ip: { deny: ['10.2.0.0/16'] } });
    expect(d.reason).toBe('ip.denied');
  });

  it('believes X-Forwarded-For only from trusted proxies', async () => {
    const trusted = await evaluate('127.0.0.1', { trustProxy: ['127.0.0.1'] }, { 'x-forwarded-for': '10.2.3.4' });
    expect(trusted.reason).toBe('ok');
    const untrusted = await evaluate('127.0.0.1', {}, { 'x-forwarded-for': '10.2.3.4' });
    expect(untrusted.reason).toBe('ip.denied');
    const forged = await evaluate('127.0.0.1', { trustProxy: ['127.0.0.1'] }, { 'x-forwarded-for': '010.2.3.4' });
    expect(forged.reason).toBe('ip.unknown');
  });
});
