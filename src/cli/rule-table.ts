// `policy check`'s analysis: the effective rule table of a compiled policy, and what a reader of the rules
// would miss: rules no request can reach (an earlier rule matches everything they would), and public routes
// carved out of a protected prefix. Only certain findings are reported: a glob comparison that cannot be
// decided simply (two different wildcard segments, say) counts as "may differ".
import type { CompiledPolicy } from '../core/policy.js';
import type { CompiledRule } from '../core/rule-match.js';

/** One row of the effective rule table. */
export interface RuleRow {
  /** 1-based position: rules are tried in this order. */
  index: number;
  name: string;
  /** Methods as matched (`GET,HEAD`), or `*`. */
  methods: string;
  path: string;
  /** `public`, `token` (any valid token) or the scope requirement (`orders:read`, `any(a, b)`). */
  access: string;
  /** The rule's own constraints besides scopes, one short phrase each. */
  constraints: string[];
  /** The mode this rule's requests are decided in. */
  mode: 'enforce' | 'report-only';
}

/** Something `policy check` flags. */
export interface Finding {
  kind: 'shadowed' | 'case-shadowed' | 'public-under-protected';
  /** 1-based index of the rule concerned. */
  rule: number;
  /** 1-based index of the rule that causes it. */
  by: number;
  message: string;
}

type RawRule = Record<string, unknown>;

/** Scopes in a rule as a person reads them: `a b` (all of), `any(a, b)`, or both. */
export function describeScopes(scopes: unknown): string | undefined {
  if (Array.isArray(scopes)) return scopes.join(' ');
  if (scopes && typeof scopes === 'object') {
    const { all, any } = scopes as { all?: string[]; any?: string[] };
    const parts = [...(all?.length ? [all.join(' ')] : []), ...(any?.length ? [`any(${any.join(', ')})`] : [])];
    return parts.join(' ') || undefined;
  }
  return undefined;
}

const compact = (v: unknown): string => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 59)}…` : s;
};

/** One constraint as a short phrase: `ip allow 10.0.0.0/8`, `rate 10/1m`, `rate 600/1m per subject`, `stepUp maxAge 10m amr mfa`. */
export function describeConstraint(key: string, value: unknown): string {
  const v = value as Record<string, unknown>;
  switch (key) {
    case 'ip': {
      const parts = [v['allow'] ? `allow ${(v['allow'] as string[]).join(' ')}` : '', v['deny'] ? `deny ${(v['deny'] as string[]).join(' ')}` : ''].filter(Boolean);
      return `ip ${parts.join('; ')}`;
    }
    case 'rateLimit':
      // Per token unless `by` says otherwise: a subject-wide limit is shared by every token of the subject.
      return `rate ${String(v['limit'])}/${String(v['window'])}${v['by'] === 'subject' ? ' per subject' : ''}`;
    case 'stepUp':
      return `stepUp${Object.entries(v)
        .map(([k, x]) => ` ${k} ${Array.isArray(x) ? x.join(',') : String(x)}`)
        .join('')}`;
    case 'hours': {
      const windows = (v['windows'] as { days?: string[]; from: string; to: string }[] | undefined) ?? [];
      const w = windows.map((x) => `${x.days ? `${x.days.join(',')} ` : ''}${x.from}-${x.to}`).join('; ');
      return `hours ${w}${v['timezone'] ? ` ${String(v['timezone'])}` : ''}`;
    }
    default:
      return `${key} ${compact(value)}`;
  }
}

const OWN_KEYS = new Set(['path', 'methods', 'public', 'name', 'mode', 'scopes']);

/** The effective rule table: every rule, in match order, with what it requires. */
export function ruleRows(p: CompiledPolicy, rawRules: readonly RawRule[]): RuleRow[] {
  return p.rules.map((r, i) => {
    const raw = rawRules[i] ?? {};
    const scopes = describeScopes(raw['scopes']);
    const constraints = Object.entries(raw)
      .filter(([k, v]) => !OWN_KEYS.has(k) && v !== undefined)
      .map(([k, v]) => describeConstraint(k, v));
    return {
      index: i + 1,
      name: r.name,
      methods: r.methods ? [...r.methods].join(',') : '*',
      path: r.path,
      access: r.public ? 'public' : (scopes ?? 'token'),
      constraints,
      mode: r.mode ?? p.mode,
    };
  });
}

// --- Glob containment: does every path one glob matches also match another?

/** A glob as segments: `**` or a segment pattern (`*`, `v*`, a literal). */
function segmentsOf(glob: string, fold: boolean): string[] {
  return glob
    .split('/')
    .filter((s) => s !== '')
    .map((s) => (fold ? s.toLowerCase() : s));
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Whether segment pattern `a` matches every segment pattern `b` matches (certain answers only). */
function segmentCovers(a: string, b: string): boolean {
  if (a === '*' || a === b) return true;
  if (!a.includes('*')) return false;
  if (!b.includes('*')) return new RegExp(`^${a.split('*').map(escapeRegExp).join('.*')}$`, 's').test(b);
  // Both have wildcards: decided only for `head*tail` against a pattern that starts with head and ends with tail.
  const parts = a.split('*');
  if (parts.length !== 2) return false;
  const [head, tail] = parts as [string, string];
  const bParts = b.split('*');
  return (bParts[0] as string).startsWith(head) && (bParts[bParts.length - 1] as string).endsWith(tail);
}

/** Whether glob `a` matches every path glob `b` matches (sound: true only when certain). */
export function globCovers(a: string, b: string, caseInsensitive: boolean): boolean {
  const A = segmentsOf(a, caseInsensitive);
  const B = segmentsOf(b, caseInsensitive);
  const memo = new Map<number, boolean>();
  const covers = (i: number, j: number): boolean => {
    const k = i * (B.length + 1) + j;
    const known = memo.get(k);
    if (known !== undefined) return known;
    let result: boolean;
    if (i === A.length) result = j === B.length;
    else if (A[i] === '**') result = covers(i + 1, j) || (j < B.length && covers(i, j + 1));
    else if (j === B.length || B[j] === '**') result = false;
    else result = segmentCovers(A[i] as string, B[j] as string) && covers(i + 1, j + 1);
    memo.set(k, result);
    return result;
  };
  return covers(0, 0);
}

/** Whether rule `a` matches every method rule `b` matches. */
function methodsCover(a: CompiledRule, b: CompiledRule): boolean {
  if (!a.methods) return true;
  if (!b.methods) return false;
  for (const m of b.methods) if (!a.methods.includes(m)) return false;
  return true;
}

/** Whether some method could match both rules. */
function methodsOverlap(a: CompiledRule, b: CompiledRule): boolean {
  if (!a.methods || !b.methods) return true;
  for (const m of b.methods) if (a.methods.includes(m)) return true;
  return false;
}

/**
 * Shadowed rules and public holes. Case is compared exactly unless the policy sets `caseSensitive: false`. With case
 * left to the router, a rule that an earlier one covers only when case is folded (`/admin/**` behind `/Admin/**`) is
 * `case-shadowed`: under a case-insensitive router, or routers that disagree, the earlier one decides its requests.
 */
export function findings(p: CompiledPolicy, rawRules: readonly RawRule[], caseSensitive: boolean | undefined): Finding[] {
  const fold = caseSensitive === false;
  const out: Finding[] = [];
  const rules = p.rules;
  const shadowed = new Set<number>();
  const label = (i: number) => `rule ${i + 1} "${(rules[i] as CompiledRule).name}"`;
  for (let j = 0; j < rules.length; j++) {
    const b = rules[j] as CompiledRule;
    for (let i = 0; i < j; i++) {
      const a = rules[i] as CompiledRule;
      if (!methodsCover(a, b)) continue;
      if (globCovers(a.path, b.path, fold)) {
        shadowed.add(j);
        out.push({
          kind: 'shadowed',
          rule: j + 1,
          by: i + 1,
          message: `${label(j)} is shadowed by ${label(i)}: every request it matches, ${label(i)} matches first, so it never applies`,
        });
        break;
      }
      if (caseSensitive === undefined && globCovers(a.path, b.path, true)) {
        out.push({
          kind: 'case-shadowed',
          rule: j + 1,
          by: i + 1,
          message: `${label(j)} differs from ${label(i)} only in letter case: where routes read case loosely (a case-insensitive router, or routers that disagree), ${label(i)} matches its requests first. Set the policy's caseSensitive to say how your routers read case`,
        });
        break;
      }
    }
  }
  for (let j = 0; j < rules.length; j++) {
    const pub = rules[j] as CompiledRule;
    if (!pub.public || shadowed.has(j)) continue;
    for (let i = 0; i < rules.length; i++) {
      const q = rules[i] as CompiledRule;
      if (i === j || q.public || !methodsOverlap(q, pub) || !globCovers(q.path, pub.path, fold)) continue;
      const needs = describeScopes(rawRules[i]?.['scopes']);
      out.push({
        kind: 'public-under-protected',
        rule: j + 1,
        by: i + 1,
        message: `${label(j)} is public inside the protected ${label(i)} (${needs ? `scopes ${needs}` : 'any valid token'})${i > j ? ', and comes first' : ''}: make sure this hole is meant`,
      });
      break;
    }
  }
  return out.sort((x, y) => x.rule - y.rule);
}
