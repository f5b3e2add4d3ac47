// `token-guard explain`: one request through createGuard(policy), the decision printed, the token never.
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { cli, json } from './run.js';

const SECRET = new TextEncoder().encode('cli-test-secret-cli-test-secret-0123');
const NOW = new Date('2026-06-01T10:00:00Z');

function jwt(claims: Record<string, unknown>, expiresAt = new Date(NOW.getTime() + 3_600_000)): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer('https://id.example.com/')
    .setAudience('api://orders')
    .setSubject('alice')
    .setIssuedAt(Math.floor(NOW.getTime() / 1000) - 60)
    .setExpirationTime(expiresAt)
    .sign(SECRET);
}

interface Explained {
  request: { method: string; path: string; ip: string; at: string | null };
  decision: { effect: string; status: number; reason: string; reasons: string[]; rule?: string; token?: { subject?: string } };
  rules: { name: string; matched: boolean; why?: string }[];
  steps: { phase: string; step: string; level?: string; outcome: string; reason?: string; detail?: string }[];
}

describe('token-guard explain', () => {
  it('explains an allow (exit 0) without printing the token', async () => {
    const token = await jwt({ scope: 'orders:read' });
    const r = await cli(['explain', '--policy', 'good.mjs', '--token', token, '--at', NOW.toISOString(), 'GET', '/orders/1']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('GET /orders/1 from 127.0.0.1 at 2026-06-01T10:00:00.000Z');
    expect(r.stdout).toContain('decision: allow (200 ok)');
    expect(r.stdout).toContain('rule: GET,HEAD /orders/**');
    expect(r.stdout).toContain('subject alice');
    // The trace: the rules tried in order, then every step.
    expect(r.stdout).toMatch(/1\s+\* \/admin\/status\s+no\s+path \/orders\/1 does not match \/admin\/status/);
    expect(r.stdout).toMatch(/2\s+GET,HEAD \/orders\/\*\*\s+yes/);
    expect(r.stdout).toMatch(/constraints\s+scopes\s+rule\s+pass/);
    expect(r.stdout).toMatch(/decide\s+decision\s+-\s+pass\s+ok/);
    expect(r.stdout + r.stderr).not.toContain(token);
  });

  it('is a dry run unless --spend: rate limits peeked at and nothing spent; with --spend, checked as a request', async () => {
    const token = await jwt({ scope: 'orders:write' });
    const args = ['explain', '--policy', 'good.mjs', '--token', token, '--ip', '10.1.2.3', '--at', NOW.toISOString(), 'POST', '/orders/1'];
    const dry = await cli(args);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('dry run: nothing spent (--spend to run it as a real request)');
    expect(dry.stdout).toMatch(/quota\s+rateLimit\s+rule\s+pass/);
    const dryJson = json<Explained & { spent: boolean }>(await cli([...args, '--json']));
    expect(dryJson.spent).toBe(false);
    const spent = json<Explained & { spent: boolean }>(await cli([...args, '--spend', '--json']));
    expect(spent.spent).toBe(true);
    expect(spent.steps.find((x) => x.step === 'rateLimit')).toMatchObject({ outcome: 'pass', level: 'rule' });
    expect((await cli([...args, '--spend'])).stdout).not.toContain('dry run');
  });

  it('explains a deny with every failing check (exit 7), from the token in an environment variable', async () => {
    const token = await jwt({ scope: 'orders:read' });
    const r = await cli(['explain', '--policy', 'good.mjs', '--token-env', 'TG_TOKEN', '--ip', '203.0.113.9', '--at', NOW.toISOString(), 'DELETE', '/orders/1', '--json'], {
      env: { TG_TOKEN: token },
    });
    expect(r.code).toBe(7);
    const out = json<Explained>(r);
    expect(out.request).toEqual({ method: 'DELETE', path: '/orders/1', ip: '203.0.113.9', at: NOW.toISOString() });
    expect(out.decision).toMatchObject({ effect: 'deny', status: 403, reason: 'ip.denied', reasons: ['ip.denied', 'scope.insufficient'], rule: 'POST,DELETE /orders/**' });
    expect(out.rules.map((x) => [x.name, x.matched])).toEqual([
      ['* /admin/status', false],
      ['GET,HEAD /orders/**', false],
      ['GET,HEAD /orders/*', false],
      ['POST,DELETE /orders/**', true],
    ]);
    expect(out.rules[1]?.why).toBe('method DELETE is not one of GET, HEAD');
    expect(out.steps).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ phase: 'constraints', step: 'ip', level: 'rule', outcome: 'fail', reason: 'ip.denied' }),
        expect.objectContaining({ phase: 'constraints', step: 'scopes', level: 'rule', outcome: 'fail', reason: 'scope.insufficient' }),
      ]),
    );
    expect(r.stdout).not.toContain(token);
  });

  it('explains an expired token and a missing one as 401s', async () => {
    const expired = await jwt({ scope: 'orders:read' }, new Date(NOW.getTime() - 60_000));
    const r = await cli(['explain', '--policy', 'good.mjs', '--token', expired, '--at', NOW.toISOString(), 'GET', '/orders/1']);
    expect(r.code).toBe(7);
    expect(r.stdout).toContain('decision: deny (401 token.expired)');
    const none = await cli(['explain', '--policy', 'good.mjs', '--at', NOW.toISOString(), 'GET', '/orders/1']);
    expect(none.code).toBe(7);
    expect(none.stdout).toContain('decision: deny (401 token.missing)');
    expect(none.stdout).toContain('header: WWW-Authenticate: Bearer');
  });

  it('passes --header through, an Authorization header included', async () => {
    const token = await jwt({ scope: 'orders:read' });
    const r = await cli([
      'explain',
      '--policy',
      'good.mjs',
      '--header',
      `Authorization: Bearer ${token}`,
      '--header',
      'Authorization: Bearer x',
      '--at',
      NOW.toISOString(),
      'GET',
      '/orders/1',
    ]);
    expect(r.code).toBe(7);
    expect(r.stdout).toContain('deny (400 request.malformed)');
  });

  it('refuses a --header without a colon without printing the credential in it', async () => {
    const token = await jwt({ scope: 'orders:read' });
    for (const header of [`Authorization Bearer ${token}`, token, `Bearer ${token}`]) {
      const r = await cli(['explain', '--policy', 'good.mjs', '--header', header, 'GET', '/orders/1']);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('--header: expected NAME:VALUE');
      expect(r.stdout + r.stderr).not.toContain(token.slice(20));
    }
    const named = await cli(['explain', '--policy', 'good.mjs', '--header', `Authorization Bearer ${token}`, 'GET', '/orders/1']);
    expect(named.stderr).toContain('"Authorization …"');
  });

  it('refuses --token with --token-env, a bad --at, and an invalid policy (exit 5)', async () => {
    const both = await cli(['explain', '--policy', 'good.mjs', '--token', 'a', '--token-env', 'B', 'GET', '/x']);
    expect(both.code).toBe(2);
    const at = await cli(['explain', '--policy', 'good.mjs', '--at', 'tomorrow', 'GET', '/x']);
    expect(at.code).toBe(2);
    expect(at.stderr).toContain('--at: expected an ISO 8601 time');
    const invalid = await cli(['explain', '--policy', 'invalid.mjs', 'GET', '/x']);
    expect(invalid.code).toBe(5);
    expect(invalid.stderr).toContain('Invalid token-guard policy');
  });
});
