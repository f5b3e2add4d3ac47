// Rules as the engine matches them: the compiled rule, first-match lookup, rule names, and the explanation of
// a `rule.unmatched` (which runs only when no rule matched, so the hot path never pays for it).
import type { GuardRequest, ReasonCode } from '../leaf/types.js';
import { pathSegments, type PathMatcher } from '../leaf/path.js';
import type { CompiledRuleChecks } from './registry.js';

/** A rule, compiled. */
export interface CompiledRule {
  /** `rules[].name`, or its methods and path: what decisions and audit events call it. */
  name: string;
  /** The path glob as written. */
  path: string;
  /** Upper case, each once (ruleMethods). A list, not a Set: a rule has a handful, which `===` finds before a Set lookup starts. */
  methods: readonly string[] | undefined;
  match: PathMatcher;
  /** The case-sensitive matcher for requests whose router reads case, when the policy leaves case to the router. */
  matchCased: PathMatcher | undefined;
  /** Under `caseSensitive`, the same glob matched case-insensitively: only to explain a `rule.unmatched`. */
  matchAnyCase: PathMatcher | undefined;
  /** The glob's leading literal segments as prefixes (`/api`, `/api/orders` for `/api/orders/**`): only to explain a `rule.unmatched`. */
  literalPrefixes: readonly string[];
  public: boolean;
  /**
   * How the glob ends, for routers that keep `/x/` apart from `/x`: `any` (`/**`, or the root), `slash` (written
   * with one: `/files/`), `none`. A public rule matches a path with a trailing slash only when `any` or `slash`.
   */
  trailingSlash: 'any' | 'slash' | 'none';
  /**
   * A restricting rule whose last segment, trailing `/**` aside, is a bare `*` (`/files/*`): a router that keeps `/x/`
   * apart may hand `/files/` to a `/files/*` route (an empty wildcard), so the rule also covers the path read with its
   * trailing slash.
   */
  emptyTail: boolean;
  /** The rule's own values for the registered checks. */
  checks: CompiledRuleChecks;
  /** Full WWW-Authenticate values (realm included) for refusals by the rule's own checks, by reason; built once. */
  challenges: ReadonlyMap<ReasonCode, string>;
  mode: 'enforce' | 'report-only' | undefined;
}

/** How a request's routers read letter case: GuardRequest.caseSensitive, anything but `true` or `'mixed'` read as `false`. */
export type CaseReading = boolean | 'mixed';

/** GuardRequest.caseSensitive as rules read it. */
export function caseReading(req: GuardRequest): CaseReading {
  const cs = req.caseSensitive;
  return cs === true || cs === 'mixed' ? cs : false;
}

/** The raw target, when the request's router may keep `/x/` apart from `/x` (trailing slashes then count), else undefined. */
export function strictSlashTarget(req: GuardRequest, target: string): string | undefined {
  return req.ignoreTrailingSlash === true ? undefined : target;
}

/** `CompiledRule.trailingSlash` of a glob. */
export function trailingSlashForm(glob: string): CompiledRule['trailingSlash'] {
  if (glob === '/' || glob === '/**' || glob.endsWith('/**')) return 'any';
  return glob.endsWith('/') ? 'slash' : 'none';
}

/** `CompiledRule.emptyTail` of a restricting rule's glob: its last segment, `/**` aside, is a bare `*`. */
export function emptyTail(glob: string): boolean {
  let g = glob;
  while (g.endsWith('/**')) g = g.slice(0, -3);
  return g.endsWith('/*');
}

/**
 * The rule's matcher for a request whose routers read case as `cs`. Under `'mixed'` each rule takes the strict reading
 * for its kind: a restricting rule matches every spelling a router could route to it, a public rule only its own.
 */
function matcherFor(r: CompiledRule, cs: CaseReading): PathMatcher {
  if (cs === false || (cs === 'mixed' && !r.public)) return r.match;
  return r.matchCased ?? r.match;
}

/** Whether the path part of a raw request target ends in `/`. Read only when a rule depends on it. */
function endsWithSlash(target: string): boolean {
  let end = target.length;
  for (let i = 0; i < end; i++) {
    const c = target.charCodeAt(i);
    if (c === 0x3f || c === 0x23) end = i;
  }
  return end > 1 && target.charCodeAt(end - 1) === 0x2f;
}

/** A restricting `emptyTail` rule read on the path with its trailing slash (`/files/` as `files` and an empty segment). */
function fitsWithSlash(r: CompiledRule, path: string, cs: CaseReading): boolean {
  const slashed = `${path}/`;
  return matcherFor(r, cs)(slashed, () => pathSegments(slashed));
}

/** matchRule's test of one rule's path, with the trailing slash read up front (diagnostics). */
function fitsPath(r: CompiledRule, path: string, segments: () => readonly string[], cs: CaseReading, strict: boolean, slashed: boolean): boolean {
  if (matcherFor(r, cs)(path, segments)) return !strict || !r.public || r.trailingSlash === 'any' || slashed === (r.trailingSlash === 'slash');
  return strict && slashed && r.emptyTail && fitsWithSlash(r, path, cs);
}

/** A rule's methods as matched: upper case, each once, and HEAD right after GET (routers answer HEAD with the GET handler, so a GET rule must guard HEAD too, or HEAD walks past it). */
export function ruleMethods(methods: readonly string[]): string[] {
  const out: string[] = [];
  const upper = methods.map((m) => m.toUpperCase());
  for (const m of upper) {
    if (out.includes(m)) continue;
    out.push(m);
    if (m === 'GET' && !upper.includes('HEAD')) out.push('HEAD');
  }
  return out;
}

/**
 * A rule's name: its own `name`, else its methods and path (`GET,HEAD /orders/**`, `* /health`). One function
 * names a rule everywhere: decisions, audit events, details and its rate-limit counter.
 */
export function ruleName(r: { name?: string | undefined; methods?: readonly string[] | undefined; path: string }): string {
  return r.name ?? `${r.methods ? ruleMethods(r.methods).join(',') : '*'} ${r.path}`;
}

/** `/api/v1/orders/**` → `['/api', '/api/v1']`: the literal prefixes a mount could have put in front of a path. */
export function literalPrefixes(glob: string): string[] {
  const segments = glob.split('/').filter(Boolean);
  const literal = segments.findIndex((seg) => seg.includes('*'));
  // The last literal segment is left out: it must match the path itself, or `/orders/**` would "match" any path
  // under the prefix `/orders`.
  const run = literal === -1 ? segments : segments.slice(0, literal);
  return run.slice(0, -1).map((_, i) => `/${run.slice(0, i + 1).join('/')}`);
}

/** The longest path shown in a detail: paths come from clients, details go to logs. */
const SHOWN_PATH = 200;
const shown = (path: string) => (path.length > SHOWN_PATH ? `${path.slice(0, SHOWN_PATH)}…` : path);

/**
 * The detail of `rule.unmatched`: the method and normalised path the rules were tried on, and, when a rule
 * would have matched under another letter case, without or with a mount prefix, or for another method, which
 * one. Runs only when no rule matched, so the hot path never pays for it.
 */
export function explainUnmatched(rules: readonly CompiledRule[], method: string, path: string, caseSensitive: CaseReading = false): string {
  const tried = `no rule matches ${method} ${shown(path)}`;
  if (rules.length === 0) return `${tried} (the policy has no rules)`;
  const hint = unmatchedHint(rules, method, path, caseSensitive);
  return hint ? `${tried}; ${hint}` : tried;
}

function unmatchedHint(rules: readonly CompiledRule[], method: string, path: string, caseSensitive: CaseReading): string | undefined {
  const methodFits = (r: CompiledRule) => !r.methods || listed(r.methods, method);
  const segmentsOf = (p: string) => {
    let segs: string[] | undefined;
    return () => (segs ??= pathSegments(p));
  };
  const segments = segmentsOf(path);
  for (const r of rules) {
    if (r.matchAnyCase && methodFits(r) && r.matchAnyCase(path, segments)) {
      // With case left to the router, `matchAnyCase` is `match`: a hint only when this request's router reads case.
      const leftToRouter = r.matchAnyCase === r.match;
      if (leftToRouter && !caseSensitive) continue;
      return `rule "${r.name}" would match in another letter case (${leftToRouter ? "the app's router reads case" : 'caseSensitive is on'})`;
    }
  }
  // Rules written relative to a mount point (`app.use('/api', guard)` with a rule `/orders/**`): the guard sees
  // the full path, `/api/orders/1`. A few leading segments are enough to catch a mount prefix.
  for (let cut = path.indexOf('/', 1), n = 0; cut > 0 && n < 4; cut = path.indexOf('/', cut + 1), n++) {
    const rest = path.slice(cut);
    const r = matchRule(rules, method, rest, caseSensitive);
    if (r)
      return `rule "${r.name}" would match ${shown(rest)}: rules match the full path, mount prefix (${shown(path.slice(0, cut))}) included, so write the rule's path with it`;
  }
  // The reverse: a rule with the prefix, and a path that arrived without it (a GuardRequest built from a mount-relative path).
  for (const r of rules) {
    if (!methodFits(r)) continue;
    for (const prefix of r.literalPrefixes) {
      const full = path === '/' ? prefix : prefix + path;
      if (r.match(full, segmentsOf(full)))
        return `rule "${r.name}" would match ${shown(full)}: the guard was given the path without the mount prefix ${prefix} (pass the full request path)`;
    }
  }
  for (const r of rules) {
    if (!methodFits(r) && r.match(path, segments)) return `rule "${r.name}" matches the path, but not the method ${method}`;
  }
  return undefined;
}

/**
 * Finds the first rule matching a method and normalised path, read as the request's routers read it: letter case per
 * `caseSensitive`, and, given `strictTarget` (the raw target, when the router may keep `/x/` apart from `/x`), a
 * trailing slash that a public rule written without one does not cover.
 */
export function matchRule(rules: readonly CompiledRule[], method: string, path: string, caseSensitive: CaseReading = false, strictTarget?: string): CompiledRule | undefined {
  let segments: string[] | undefined;
  const lazySegments = () => (segments ??= pathSegments(path));
  // Whether the target ends in a slash: read once, and only when a rule's answer depends on it (most requests never).
  let slashed: boolean | undefined = strictTarget === undefined || path === '/' ? false : undefined;
  for (const r of rules) {
    if (r.methods !== undefined && !listed(r.methods, method)) continue;
    if (matcherFor(r, caseSensitive)(path, lazySegments)) {
      if (strictTarget === undefined || !r.public || r.trailingSlash === 'any') return r;
      slashed ??= endsWithSlash(strictTarget);
      if (slashed === (r.trailingSlash === 'slash')) return r;
    } else if (r.emptyTail && strictTarget !== undefined) {
      slashed ??= endsWithSlash(strictTarget);
      if (slashed && fitsWithSlash(r, path, caseSensitive)) return r;
    }
  }
  return undefined;
}

/** Whether `method` is in a rule's method list. */
function listed(list: readonly string[], method: string): boolean {
  for (let i = 0; i < list.length; i++) if (list[i] === method) return true;
  return false;
}

/** One rule as `guard.explain` reports it: tried in order until one matches. */
export interface RuleTried {
  name: string;
  matched: boolean;
  /** Why it did not match. */
  why?: string;
}

/** The rule a request matches, its path read as the request's routers read it (`target`: its raw path, before normalising). */
export function ruleForRequest(rules: readonly CompiledRule[], method: string, path: string, req: GuardRequest, target: string): CompiledRule | undefined {
  return matchRule(rules, method, path, caseReading(req), strictSlashTarget(req, target));
}

/** The rules tried for a request, in order, up to and including the one that matched (as matchRule finds it). Diagnostics only. */
export function rulesTried(rules: readonly CompiledRule[], method: string, path: string, caseSensitive: CaseReading = false, strictTarget?: string): RuleTried[] {
  const out: RuleTried[] = [];
  const slashed = strictTarget !== undefined && path !== '/' && endsWithSlash(strictTarget);
  const segments = () => pathSegments(path);
  for (const r of rules) {
    const pathFits = fitsPath(r, path, segments, caseSensitive, strictTarget !== undefined, slashed);
    const methodFits = !r.methods || listed(r.methods, method);
    if (pathFits && methodFits) {
      out.push({ name: r.name, matched: true });
      break;
    }
    const slashNote = !pathFits && r.public && matcherFor(r, caseSensitive)(path, segments) ? ' (a trailing slash makes another route here)' : '';
    out.push({
      name: r.name,
      matched: false,
      why: !pathFits ? `path ${shown(path)} does not match ${r.path}${slashNote}` : `method ${method} is not one of ${[...(r.methods ?? [])].join(', ')}`,
    });
  }
  return out;
}
