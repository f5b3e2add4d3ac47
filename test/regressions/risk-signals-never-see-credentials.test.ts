// Regression (security review): risk scoring (HEAD 03cf65e).
import { describe, expect, it } from 'vitest';
import { createGuard, MemoryStore, type GuardRequest } from '../../src/index.js';
import { basePolicy, signToken, NOW } from '../helpers/tokens.js';

const req = (token: string, over: Partial<GuardRequest> = {}): GuardRequest => ({
  method: 'GET',
  path: '/orders/1',
  headers: { authorization: `Bearer ${token}`, 'user-agent': 'app/1.0' },
  remoteAddress: '203.0.113.1',
  now: NOW,
  ...over,
});

describe('regression: risk', () => {
  it('custom signals do not receive the raw bearer token', async () => {
    const seen: unknown[] = [];
    const guard = createGuard(
      await basePolicy({
        risk: {
          custom: {
            vendor: (ctx) => {
              seen.push(ctx.headers['authorization']);
              return 0;
            },
          },
          denyAt: 100,
        },
      }),
    );
    const token = await signToken({ scope: 'orders:read' });
    await guard.evaluate(req(token));
    expect(seen).toEqual([undefined]);
  });

  it('newIp treats an unknown client address as new, not as familiar', async () => {
    const guard = createGuard(await basePolicy({ store: new MemoryStore(), risk: { newIp: 10, denyAt: 10 } }));
    const token = await signToken({ scope: 'orders:read' });
    expect((await guard.evaluate(req(token))).reason).toBe('ok'); // first use, from 203.0.113.1
    expect((await guard.evaluate(req(token, { remoteAddress: '198.51.100.7' }))).reason).toBe('risk.denied');
    // The same stolen token from a client whose address is unknown (fetch adapter without remoteAddress,
    // a unix socket, an unparsable X-Forwarded-For hop) scores nothing at all.
    expect((await guard.evaluate(req(token, { remoteAddress: undefined }))).reason).toBe('risk.denied');
  });
});
