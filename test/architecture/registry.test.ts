// One check, one file: every check a file in src/checks defines is registered by exactly one line in
// src/checks/registered.ts, and the engine runs them by phase, then order, each name once.
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHECKS, RULE_CONSTRAINT_KEYS } from '../../src/core/registry.js';
import { CHECK_PHASES } from '../../src/checks/check.js';

const dir = path.resolve(__dirname, '../../src/checks');

describe('the check registry', () => {
  it('registers each defined check by one line, and nothing else', () => {
    const registered = readFileSync(path.join(dir, 'registered.ts'), 'utf8');
    const lines = registered.split('\n').filter((l) => !l.startsWith('//') && l.trim() !== '');
    for (const l of lines) expect(l).toMatch(/^export \{ \w+Check \} from '\.\/[\w-]+\.js';$/);
    const defined = readdirSync(dir)
      .filter((f) => f.endsWith('.ts'))
      .flatMap((f) => [...readFileSync(path.join(dir, f), 'utf8').matchAll(/export const (\w+Check) = defineCheck/g)].map((m) => `${m[1]}:${f.replace(/\.ts$/, '')}`));
    const listed = lines.map((l) => {
      const m = /\{ (\w+) \} from '\.\/([\w-]+)\.js'/.exec(l) as RegExpExecArray;
      return `${m[1]}:${m[2]}`;
    });
    expect(listed.sort()).toEqual(defined.sort());
    expect(CHECKS).toHaveLength(lines.length);
  });

  it('orders checks by phase, then order, with unique names and no order shared within a phase', () => {
    const keys = CHECKS.map((c) => [CHECK_PHASES.indexOf(c.phase), c.order] as const);
    const sorted = [...keys].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    expect(keys).toEqual(sorted);
    expect(new Set(CHECKS.map((c) => c.name)).size).toBe(CHECKS.length);
    expect(new Set(CHECKS.map((c) => `${c.phase}:${c.order}`)).size).toBe(CHECKS.length);
  });

  it('derives the rule keys a public rule may not carry from the checks, rate limits included', () => {
    expect([...RULE_CONSTRAINT_KEYS].sort()).toEqual(['claims', 'hours', 'ip', 'maxTokenAge', 'rateLimit', 'scopes', 'stepUp']);
  });
});
