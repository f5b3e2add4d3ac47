// `trustProxy: ['0.0.0.0/0', '::/0']` (set where a hosting platform's load balancer address is unknown) made every
// client a trusted proxy: the X-Forwarded-For walk passed every hop and ended at the leftmost, which the client wrote,
// so any client chose its own address past IP rules, key IP bindings, preAuthLimit and risk's newIp. A proxy range
// that takes in public address space wholesale is now refused at start-up, in every spelling, pointing at
// `trustProxy: { hops: n }` (trust-proxy-hops.test.ts).
import { describe, expect, it } from 'vitest';
import express from 'express';
import { tokenGuard } from '../../src/adapters/express.js';
import { createGuard, MemoryStore, PolicyError, type TokenGuardPolicy } from '../../src/index.js';
import { basePolicy } from '../helpers/tokens.js';

async function issuesFor(trustProxy: TokenGuardPolicy['trustProxy']): Promise<{ path: string; message: string }[]> {
  try {
    createGuard(await basePolicy({ trustProxy }));
  } catch (err) {
    expect(err).toBeInstanceOf(PolicyError);
    return (err as PolicyError).issues;
  }
  return [];
}

describe('trustProxy that would trust every client', () => {
  it.each([
    ['0.0.0.0/0', 'an IPv4 range wider than /8'],
    ['128.0.0.0/1', 'an IPv4 range wider than /8'],
    ['0.0.0.0/7', 'an IPv4 range wider than /8'],
    ['::/0', 'an IPv6 range wider than /7'],
    ['0::0/0', 'an IPv6 range wider than /7'],
    ['0000:0000:0000:0000:0000:0000:0000:0000/0', 'an IPv6 range wider than /7'],
    ['2000::/3', 'an IPv6 range wider than /7'],
    ['::/6', 'an IPv6 range wider than /7'],
    ['::ffff:0:0/96', 'an IPv4-mapped range wider than ::ffff:0:0/104'],
    ['::FFFF:0:0/96', 'an IPv4-mapped range wider than ::ffff:0:0/104'],
    ['::ffff:0.0.0.0/96', 'an IPv4-mapped range wider than ::ffff:0:0/104'],
    ['0:0:0:0:0:ffff:0:0/96', 'an IPv4-mapped range wider than ::ffff:0:0/104'],
    ['::ffff:10.0.0.0/103', 'an IPv4-mapped range wider than ::ffff:0:0/104'],
  ])('refuses %s at start-up, saying why and what to give instead', async (cidr, why) => {
    const issues = await issuesFor([cidr]);
    expect(issues).toEqual([{ path: 'trustProxy[0]', message: expect.stringContaining(`"${cidr}" is ${why}`) }]);
    expect(issues[0]?.message).toMatch(/choose its own address through X-Forwarded-For.*trustProxy: \{ hops: n \}/);
  });

  it('names each catch-all entry of a list by its index', async () => {
    expect((await issuesFor(['10.0.0.0/8', '0.0.0.0/0', '::/0'])).map((i) => i.path)).toEqual(['trustProxy[1]', 'trustProxy[2]']);
  });

  it('refuses the catch-all list before an Express app can mount the guard', async () => {
    const policy = await basePolicy({ store: new MemoryStore(), trustProxy: ['0.0.0.0/0', '::/0'], rules: [{ path: '/internal/**', ip: { allow: ['10.0.0.0/8'] } }] });
    const app = express();
    expect(() => app.use(tokenGuard(policy))).toThrow(PolicyError);
  });

  it.each([['10.0.0.0/8'], ['100.64.0.0/10'], ['::ffff:10.0.0.0/104'], ['fc00::/7'], ['FC00::/7'], ['2001:db8::/32'], ['127.0.0.1'], ['::1']])(
    'still accepts the proxy range %s',
    async (cidr) => {
      expect(await issuesFor([cidr])).toEqual([]);
    },
  );

  it('leaves IP rules alone: denying every address is still written with catch-all ranges', async () => {
    expect(() => createGuard({ apiKeys: { prefix: 'tg_' }, ip: { deny: ['0.0.0.0/0', '::/0'] } })).not.toThrow();
  });
});
