// `token-guard explain`: one request against a policy module, decided and traced by the library itself
// (`guard.explain`), printed for a human.
import { createGuard, type Explanation } from '../../core/guard.js';
import type { Decision, GuardRequest } from '../../leaf/types.js';
import { type Command, many, optional, required } from '../command.js';
import { EXIT, usage } from '../exit.js';
import { loadPolicy } from '../policy-module.js';
import { parseTime } from '../values.js';

/**
 * What a usage error shows of a malformed `--header`: its first word when it reads as a header name and more follows
 * (`Authorization Bearer eyJ…` → `"Authorization …"`), else only its length. The rest is likely a credential.
 */
function shownHeader(v: string): string {
  const text = v.trim();
  const space = text.search(/\s/);
  const first = space === -1 ? '' : text.slice(0, space);
  return /^[A-Za-z0-9-]{1,40}$/.test(first) ? `${JSON.stringify(`${first} …`)}, the rest not shown` : `${text.length} characters, not shown`;
}

/** `--header 'x-forwarded-for: 203.0.113.9'` → lower-cased name and value; a repeated header becomes an array. */
function headersOf(values: readonly string[]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const v of values) {
    const colon = v.indexOf(':');
    if (colon <= 0) throw usage(`--header: expected NAME:VALUE (got ${shownHeader(v)})`, "e.g. --header 'authorization: Bearer …'");
    const key = v.slice(0, colon).trim().toLowerCase();
    const value = v.slice(colon + 1).trim();
    const prior = out[key];
    out[key] = prior === undefined ? value : [...[prior].flat(), value];
  }
  return out;
}

/** The token: `--token`, or `--token-env VAR` (kept out of shell history and `ps`). Never printed. */
function tokenOf(token: string | undefined, tokenEnv: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  if (token !== undefined && tokenEnv !== undefined) throw usage('give --token or --token-env, not both');
  if (tokenEnv !== undefined) {
    const t = env[tokenEnv];
    if (!t) throw usage(`--token-env: the environment variable ${tokenEnv} is not set`);
    return t;
  }
  return token;
}

/** The Decision as lines of text. */
function decisionLines(d: Decision): string[] {
  const lines = [`decision: ${d.effect} (${d.status} ${d.reason})${d.mode === 'report-only' ? ' [report-only: the request would go through]' : ''}`];
  lines.push(`rule: ${d.rule ?? '(no rule matched)'}`);
  if (d.reasons.length) lines.push(`reasons: ${d.reasons.join(', ')}`);
  if (d.detail) lines.push(`detail: ${d.detail}`);
  if (d.token) {
    const t = d.token;
    lines.push(
      `token: ${t.kind} ${t.id}${t.subject ? ` subject ${t.subject}` : ''}; scopes ${t.scopes.join(' ') || '-'}${t.expiresAt ? `; expires ${t.expiresAt.toISOString()}` : ''}`,
    );
  } else lines.push('token: none verified');
  if (d.risk) lines.push(`risk: ${d.risk.score} (${d.risk.signals.map((s) => `${s.name} ${s.score}`).join(', ') || 'no signals'})`);
  for (const [k, v] of Object.entries(d.headers)) lines.push(`header: ${k}: ${v}`);
  return lines;
}

/** `token-guard explain`. */
export const explain: Command = {
  summary: 'decide one request against a policy module and trace how the decision was reached',
  description:
    'Builds a request from the arguments and runs it through guard.explain of createGuard(policy): the decision, the rules\n' +
    'tried, and every step with pass / fail / reported / skipped and why. The token goes in an `Authorization: Bearer` header\n' +
    "unless --header sets Authorization itself; it is never printed. The policy's own store is used, and nothing is spent:\n" +
    "a limited key's use and a DPoP proof are read, not taken, and rate limits are peeked at (shown as not checked on a\n" +
    'store that cannot read a counter without spending it). --spend runs it as a real request instead, spending what one would.\n' +
    'Exit code 0 when the decision is allow, 7 when it is deny or step_up.',
  positionals: [
    { name: 'METHOD', description: 'HTTP method, e.g. GET' },
    { name: 'PATH', description: 'request path, e.g. /orders/1' },
  ],
  options: {
    policy: { type: 'string', value: 'FILE', description: 'the policy module (required)' },
    token: { type: 'string', value: 'TOKEN', description: 'the bearer token (JWT or API key)' },
    'token-env': { type: 'string', value: 'VAR', description: 'read the token from this environment variable instead' },
    ip: { type: 'string', value: 'ADDR', description: 'client address. Default: 127.0.0.1' },
    at: { type: 'string', value: 'TIME', description: 'evaluate at this time (ISO 8601 or epoch ms). Default: now' },
    header: { type: 'string', multiple: true, value: 'NAME:VALUE', description: 'a request header' },
    spend: { type: 'boolean', description: 'spend what a real request would (a rate-limit unit, a key use, a DPoP proof), and check rate limits' },
  },
  examples: [
    'token-guard explain --policy ./policy.mjs --token-env TOKEN GET /orders/1',
    'token-guard explain --policy ./policy.mjs --token "$KEY" --ip 203.0.113.9 --at 2026-12-01T22:00:00Z --header \'user-agent: curl/8\' DELETE /orders/1',
  ],
  async run(ctx) {
    const name = 'token-guard explain';
    const file = required(ctx, 'policy', name);
    const [method, path] = ctx.positionals as [string, string];
    if (!/^[A-Za-z]+$/.test(method)) throw usage(`${name}: METHOD must be an HTTP method like GET (got ${JSON.stringify(method)})`);
    if (!path.startsWith('/')) throw usage(`${name}: PATH must start with / (got ${JSON.stringify(path)})`);
    const token = tokenOf(optional(ctx, 'token'), optional(ctx, 'token-env'), ctx.env);
    const headers: GuardRequest['headers'] = headersOf(many(ctx, 'header'));
    if (token !== undefined && headers['authorization'] === undefined) headers['authorization'] = `Bearer ${token}`;
    const at = optional(ctx, 'at');
    const request: GuardRequest = { method: method.toUpperCase(), path, headers, remoteAddress: optional(ctx, 'ip') ?? '127.0.0.1' };
    if (at !== undefined) request.now = new Date(parseTime('--at', at, Date.now()));

    const { policy } = await loadPolicy(file, ctx.cwd, name);
    const guard = createGuard(policy);
    // Whether the dry run could read rate limits: a store without the optional peek shows them as not checked.
    const peeks = typeof guard.store.peekRateLimit === 'function';
    let explained: Explanation;
    try {
      explained = await guard.explain(request, { spend: ctx.options['spend'] === true });
    } finally {
      // The policy's store: release its timers so the process can end (never the app's clients: stores never close those).
      await guard.store.close?.();
    }
    const { decision, rules, steps } = explained;
    const code = decision.effect === 'allow' ? EXIT.ok : EXIT.refused;
    if (ctx.out.json) {
      ctx.out.result({ request: { method: request.method, path, ip: request.remoteAddress, at: request.now ?? null }, spent: explained.spent, decision, rules, steps });
      return code;
    }
    ctx.out.line(`${request.method} ${path} from ${request.remoteAddress}${request.now ? ` at ${request.now.toISOString()}` : ''}`);
    if (!explained.spent) ctx.out.line(`  dry run: nothing spent${peeks ? '' : ', rate limits not checked'} (--spend to run it as a real request)`);
    for (const l of decisionLines(decision)) ctx.out.line(`  ${l}`);
    ctx.out.line();
    if (rules.length === 0) ctx.out.line('Rules: none (the policy has no rules)');
    else
      ctx.out.table(
        ['#', 'RULE', 'MATCH', 'WHY NOT'],
        rules.map((r, i) => [String(i + 1), r.name, r.matched ? 'yes' : 'no', r.why ?? '-']),
      );
    ctx.out.line();
    ctx.out.table(
      ['PHASE', 'STEP', 'LEVEL', 'OUTCOME', 'REASON', 'DETAIL'],
      steps.map((t) => [t.phase, t.step, t.level ?? '-', t.outcome, t.reason ?? '-', t.detail ?? '-']),
    );
    return code;
  },
};
