// `token-guard policy check`: the library's own validation, the effective rule table, shadowed rules and public holes.
import { describe, expect, it } from 'vitest';
import { cli, json } from './run.js';

interface Report {
  valid: boolean;
  rules: { index: number; methods: string; path: string; access: string; constraints: string[]; mode: string }[];
  findings: { kind: string; rule: number; by: number; message: string }[];
}

describe('token-guard policy check', () => {
  it('prints the effective rule table of a valid policy and flags its shadowed rule and public hole', async () => {
    const r = await cli(['policy', 'check', 'good.mjs']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('valid policy');
    expect(r.stdout).toMatch(/#\s+METHODS\s+PATH\s+ACCESS\s+CONSTRAINTS\s+MODE/);
    expect(r.stdout).toMatch(/4\s+POST,DELETE\s+\/orders\/\*\*\s+any\(orders:write, admin\)\s+ip allow 10\.0\.0\.0\/8; rate 10\/1m\s+enforce/);
    expect(r.stdout).toMatch(/5\s+\*\s+\/admin\/\*\*\s+admin\s+-\s+report-only/);
    expect(r.stdout).toContain('shadowed: rule 3 "GET,HEAD /orders/*" is shadowed by rule 2 "GET,HEAD /orders/**"');
    expect(r.stdout).toContain('public hole: rule 1 "* /admin/status" is public inside the protected rule 5 "* /admin/**"');
  });

  it('gives the same table and findings as JSON', async () => {
    const r = await cli(['policy', 'check', 'good.mjs', '--json']);
    expect(r.code).toBe(0);
    const report = json<Report>(r);
    expect(report.valid).toBe(true);
    expect(report.rules.map((x) => [x.index, x.methods, x.path, x.access, x.mode])).toEqual([
      [1, '*', '/admin/status', 'public', 'enforce'],
      [2, 'GET,HEAD', '/orders/**', 'orders:read', 'enforce'],
      [3, 'GET,HEAD', '/orders/*', 'orders:admin', 'enforce'],
      [4, 'POST,DELETE', '/orders/**', 'any(orders:write, admin)', 'enforce'],
      [5, '*', '/admin/**', 'admin', 'report-only'],
    ]);
    expect(report.findings.map((f) => [f.kind, f.rule, f.by])).toEqual([
      ['public-under-protected', 1, 5],
      ['shadowed', 3, 2],
    ]);
  });

  it('exits 6 under --strict when there are findings, 0 when there are none', async () => {
    expect((await cli(['policy', 'check', 'good.mjs', '--strict'])).code).toBe(6);
    const clean = await cli(['policy', 'check', 'clean.cjs', '--strict']);
    expect(clean.code).toBe(0);
    expect(clean.stdout).toContain('No findings.');
    expect(clean.stdout).toMatch(/hours 08:00-18:00 UTC/);
  });

  it('loads a policy returned by an async default export, and flags a public rule behind a catch-all', async () => {
    const r = await cli(['policy', 'check', 'factory.js', '--json']);
    expect(r.code).toBe(0);
    expect(json<Report>(r).findings).toEqual([expect.objectContaining({ kind: 'shadowed', rule: 2, by: 1 })]);
  });

  it("reports an invalid policy with the library's PolicyError issues, exit 5, no stack", async () => {
    const r = await cli(['policy', 'check', 'invalid.mjs']);
    expect(r.code).toBe(5);
    expect(r.stderr).toContain('Invalid token-guard policy');
    expect(r.stderr).toContain('jwt.algorithms[0]: "none" is never accepted');
    expect(r.stderr).toContain('rules[0].path: ":id" is a route parameter');
    expect(r.stderr).toContain('rules[1].scopes: a public rule cannot also require a token constraint');
    expect(r.stderr).not.toMatch(/\n\s+at .+:\d+:\d+/);
    const asJson = await cli(['policy', 'check', 'invalid.mjs', '--json']);
    expect(json(asJson)).toEqual({
      error: expect.objectContaining({ code: 'policy.invalid', exit: 5, issues: expect.arrayContaining([{ path: 'jwt.algorithms[0]', message: '"none" is never accepted' }]) }),
    });
  });

  it('exits 5 for a module that throws or exports no policy, 3 for a missing file', async () => {
    const throws = await cli(['policy', 'check', 'throws.mjs']);
    expect(throws.code).toBe(5);
    expect(throws.stderr).toContain('failed to load: policy module exploded at line 3');
    expect(throws.stderr).not.toMatch(/\n\s+at .+:\d+:\d+/);
    const none = await cli(['policy', 'check', 'no-policy.mjs']);
    expect(none.code).toBe(5);
    expect(none.stderr).toContain('exports no policy object');
    const missing = await cli(['policy', 'check', 'nowhere.mjs']);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('no such file: nowhere.mjs');
  });

  it('says how to load TypeScript where this Node cannot, and loads it where a loader is registered', async () => {
    const canStrip = (process as { features?: { typescript?: unknown } }).features?.typescript;
    const plain = await cli(['policy', 'check', 'policy.ts']);
    if (canStrip) expect(plain.code).toBe(0);
    else {
      expect(plain.code).toBe(2);
      expect(plain.stderr).toContain('cannot load TypeScript');
      expect(plain.stderr).toContain("NODE_OPTIONS='--import tsx'");
    }
    const withTsx = await cli(['policy', 'check', 'policy.ts'], { env: { NODE_OPTIONS: '--import tsx' } });
    expect(withTsx.code).toBe(0);
    expect(withTsx.stdout).toContain('valid policy');
  });
});
