// `token-guard policy check FILE`: the policy compiled by the library itself (the same PolicyError an app
// would get at start-up), its effective rule table, and the rules a reader would misjudge.
import { compilePolicy } from '../../core/policy.js';
import type { Command, Group } from '../command.js';
import { EXIT } from '../exit.js';
import { loadPolicy } from '../policy-module.js';
import { findings, ruleRows } from '../rule-table.js';

const check: Command = {
  summary: 'validate a policy module and print its effective rule table',
  description:
    'Loads FILE (ESM or CommonJS: .js, .mjs, .cjs; .ts where this Node can load TypeScript), compiles its policy with the\n' +
    "library's own validation (an invalid policy prints every PolicyError issue with its path and exits 5), then prints\n" +
    'the rules in match order and flags rules no request can reach and public routes inside protected prefixes.\n' +
    'The module exports the policy as its default export (module.exports for CommonJS) or as `policy`, or a function returning it.',
  positionals: [{ name: 'FILE', description: 'the policy module' }],
  options: {
    strict: { type: 'boolean', description: 'exit 6 when there are findings (shadowed rules, public holes)' },
  },
  examples: ['token-guard policy check ./policy.mjs', 'token-guard policy check ./dist/policy.js --strict --json'],
  async run(ctx) {
    const name = 'token-guard policy check';
    const { policy, file } = await loadPolicy(ctx.positionals[0] as string, ctx.cwd, name);
    // Throws PolicyError (exit 5) exactly as createGuard would.
    const compiled = compilePolicy(policy);
    const raw = (policy.rules ?? []) as unknown as Record<string, unknown>[];
    const rows = ruleRows(compiled, raw);
    const found = findings(compiled, raw, policy.caseSensitive);
    const accepts = [
      ...(policy.jwt
        ? [
            `JWT (issuer ${[policy.jwt]
              .flat()
              .flatMap((j) => [j.issuer].flat())
              .join(', ')})`,
          ]
        : []),
      ...(policy.introspection ? ['opaque tokens (introspection)'] : []),
      ...(policy.apiKeys ? [`API keys (${[policy.apiKeys.prefix].flat().join(', ')})`] : []),
    ];
    const policyWide = Object.entries(policy)
      .filter(([k, v]) => ['ip', 'hours', 'rateLimit', 'claims'].includes(k) && v !== undefined)
      .map(([k]) => k);
    const code = ctx.options['strict'] === true && found.length > 0 ? EXIT.findings : EXIT.ok;
    if (ctx.out.json) {
      ctx.out.result({ file, valid: true, accepts, mode: compiled.mode, unmatched: compiled.unmatched, policyWide, rules: rows, findings: found });
      return code;
    }
    ctx.out.line(`${file}: valid policy`);
    ctx.out.line(`  accepts: ${accepts.join('; ')}`);
    ctx.out.line(
      `  mode: ${compiled.mode}; unmatched requests: ${compiled.unmatched === 'deny' ? 'denied (403 rule.unmatched)' : 'any valid token'}; case: ${
        policy.caseSensitive === undefined ? "as the app's router reads it" : policy.caseSensitive ? 'sensitive' : 'insensitive'
      }`,
    );
    if (policyWide.length) ctx.out.line(`  every request also checks the policy's own: ${policyWide.join(', ')}`);
    ctx.out.line();
    if (rows.length === 0) ctx.out.line(`No rules: every request needs a valid token${compiled.unmatched === 'deny' ? ', and is then denied (403 rule.unmatched)' : ''}.`);
    else {
      // Names only when some rule has its own: otherwise a name is just METHODS and PATH again.
      const named = raw.some((r) => r['name'] !== undefined);
      const header = ['#', 'METHODS', 'PATH', 'ACCESS', 'CONSTRAINTS', 'MODE', ...(named ? ['NAME'] : [])];
      ctx.out.table(
        header,
        rows.map((r) => [String(r.index), r.methods, r.path, r.access, r.constraints.join('; ') || '-', r.mode, ...(named ? [r.name] : [])]),
      );
    }
    ctx.out.line();
    if (found.length === 0) ctx.out.line('No findings.');
    else {
      ctx.out.line(`${found.length} finding${found.length === 1 ? '' : 's'}:`);
      const kinds: Record<(typeof found)[number]['kind'], string> = { shadowed: 'shadowed', 'case-shadowed': 'shadowed by case', 'public-under-protected': 'public hole' };
      for (const f of found) ctx.out.line(`  ${kinds[f.kind]}: ${f.message}`);
    }
    return code;
  },
};

/** `token-guard policy`. */
export const policy: Group = {
  summary: 'check policy modules',
  commands: { check },
};
