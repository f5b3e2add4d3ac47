// Turns zod's issues into PolicyIssues a person can act on: `jwt.audience: required` instead of
// "Invalid input", unions described by their branches, and for an unknown key where it belongs
// (another object of the policy, an adapter option) or what it is probably a typo of.
import type { z } from 'zod';
import type { PolicyIssue } from '../leaf/errors.js';
import { closest } from '../leaf/suggest.js';

/**
 * Options adapters read from the policy object that `createGuard` does not, with where they belong.
 * Keep in step with `AdapterOptions` in adapter-kit.ts.
 */
export const ADAPTER_OPTION_HINTS: Readonly<Record<string, string>> = {
  errors:
    "is an adapter option, not a policy key: createGuard() does not read it. Give it to the adapter: tokenGuard(policy, { errors: 'throw' }) " +
    "(Express, Koa), guardFetch(policy, { errors: 'throw' }), or next to the policy in Fastify's plugin options",
  // Fastify passes its register options (a route `prefix` among them) to the plugin with the policy.
  prefix:
    "is not a policy key: an API key prefix goes in apiKeys.prefix. A router's prefix (Fastify's register({ prefix }), " +
    "a mount path) does not scope the guard: it guards every route from the root, so leave paths open with public rules ({ path: '/health', public: true })",
};

type Key = string | number;
type Issue = z.core.$ZodIssue;

/** Unwraps optional, nullable, default and pipe wrappers down to the schema that parses the value. */
function unwrap(schema: z.core.$ZodType): z.core.$ZodType {
  let s = schema;
  for (;;) {
    const def = s._zod.def as { type: string; innerType?: z.core.$ZodType; in?: z.core.$ZodType };
    if ((def.type === 'optional' || def.type === 'nullable' || def.type === 'default' || def.type === 'readonly') && def.innerType) s = def.innerType;
    else if (def.type === 'pipe' && def.in) s = def.in;
    else return s;
  }
}

/** The object schemas reachable at `path` (a union may offer several). */
function objectsAt(schema: z.core.$ZodType, path: readonly Key[]): z.core.$ZodObject[] {
  const s = unwrap(schema);
  const def = s._zod.def as { type: string; shape?: Record<string, z.core.$ZodType>; element?: z.core.$ZodType; options?: z.core.$ZodType[] };
  if (def.type === 'union' && def.options) return def.options.flatMap((o) => objectsAt(o, path));
  if (path.length === 0) return def.type === 'object' ? [s as z.core.$ZodObject] : [];
  const [head, ...rest] = path;
  if (def.type === 'object' && def.shape && typeof head === 'string' && def.shape[head]) return objectsAt(def.shape[head], rest);
  if (def.type === 'array' && def.element && typeof head === 'number') return objectsAt(def.element, rest);
  return [];
}

function keysOf(objects: readonly z.core.$ZodObject[]): string[] {
  return [...new Set(objects.flatMap((o) => Object.keys((o._zod.def as { shape: Record<string, unknown> }).shape)))];
}

/** Every place in the schema where a key is valid, as display paths (`jwt`, `rules[].ip`). Built once per schema. */
const placesCache = new WeakMap<object, Map<string, string[]>>();
function placesOf(root: z.core.$ZodType): Map<string, string[]> {
  let places = placesCache.get(root);
  if (places) return places;
  const found = new Map<string, string[]>();
  const seen = new Set<unknown>();
  const walk = (schema: z.core.$ZodType, at: string): void => {
    const s = unwrap(schema);
    if (seen.has(s)) return;
    seen.add(s);
    const def = s._zod.def as { type: string; shape?: Record<string, z.core.$ZodType>; element?: z.core.$ZodType; options?: z.core.$ZodType[] };
    if (def.type === 'union' && def.options) for (const o of def.options) walk(o, at);
    else if (def.type === 'array' && def.element) walk(def.element, `${at}[]`);
    else if (def.type === 'object' && def.shape) {
      for (const [k, v] of Object.entries(def.shape)) {
        const list = found.get(k) ?? [];
        if (!list.includes(at)) list.push(at);
        found.set(k, list);
        walk(v, at ? `${at}.${k}` : k);
      }
    }
    seen.delete(s);
  };
  walk(root, '');
  places = found;
  placesCache.set(root, places);
  return places;
}

/** `a.b[0].c` from a zod path. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out ? `.${String(seg)}` : String(seg);
  }
  return out;
}

function valueAt(input: unknown, path: readonly PropertyKey[]): { parent: unknown; present: boolean; value: unknown } {
  let parent: unknown;
  let value: unknown = input;
  for (const seg of path) {
    parent = value;
    if (!parent || typeof parent !== 'object') return { parent, present: false, value: undefined };
    value = (parent as Record<PropertyKey, unknown>)[seg];
  }
  return { parent, present: value !== undefined, value };
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  const t = typeof v;
  return t === 'object' ? 'an object' : t === 'undefined' ? 'nothing' : `a ${t}`;
}

const EXPECTED: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  boolean: 'true or false',
  array: 'an array',
  object: 'an object',
  function: 'a function',
};

/** What one union branch wanted, from its first issue at the branch root. */
function branchExpectation(issues: readonly Issue[]): string | undefined {
  const first = issues[0];
  if (!first) return undefined;
  if (first.path.length > 0) return undefined;
  if (first.code === 'invalid_type') return EXPECTED[first.expected] ?? first.expected;
  if (first.code === 'invalid_value') return first.values.map((v) => JSON.stringify(v)).join(' or ');
  if (first.code === 'custom' && first.message.startsWith('expected ')) return first.message.slice('expected '.length);
  return undefined;
}

function describe(issue: Issue, value: unknown): string {
  const generic =
    issue.message.startsWith('Invalid input') || issue.message.startsWith('Too small') || issue.message.startsWith('Too big') || issue.message.startsWith('Invalid option');
  if (!generic) return issue.message;
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${EXPECTED[issue.expected] ?? issue.expected} (got ${typeName(value)})`;
    case 'invalid_union': {
      const wanted = issue.errors.map(branchExpectation);
      if (wanted.every((w): w is string => w !== undefined)) return `expected ${[...new Set(wanted)].join(' or ')} (got ${typeName(value)})`;
      return `expected one of ${issue.errors.length} accepted forms; see the policy reference`;
    }
    case 'invalid_value': {
      const options = issue.values.map((v) => JSON.stringify(v));
      const near =
        typeof value === 'string'
          ? closest(
              value,
              issue.values.filter((v): v is string => typeof v === 'string'),
            )
          : undefined;
      return `expected ${options.join(' or ')}${near ? ` (did you mean "${near}"?)` : ''}`;
    }
    case 'too_small':
      if (issue.origin === 'array') return `expected at least ${String(issue.minimum)} item${issue.minimum === 1 ? '' : 's'}`;
      if (issue.origin === 'string') return issue.minimum === 1 ? 'expected a non-empty string' : `expected at least ${String(issue.minimum)} characters`;
      return `expected a number ${issue.inclusive ? '≥' : '>'} ${String(issue.minimum)}`;
    case 'too_big':
      if (issue.origin === 'array') return `expected at most ${String(issue.maximum)} items`;
      if (issue.origin === 'string') return `expected at most ${String(issue.maximum)} characters`;
      return `expected a number ${issue.inclusive ? '≤' : '<'} ${String(issue.maximum)}`;
    default:
      return issue.message;
  }
}

function unknownKey(schema: z.core.$ZodType, path: readonly Key[], key: string): string {
  if (path.length === 0 && ADAPTER_OPTION_HINTS[key]) return `\`${key}\` ${ADAPTER_OPTION_HINTS[key]}`;
  const known = keysOf(objectsAt(schema, path));
  const near = closest(key, known);
  if (near) return `unknown key (did you mean "${near}"?)`;
  const here = formatPath(path).replace(/\[\d+\]/g, '[]');
  // Places under this object first, with this object's own indices (`rules[2].ip.allow`, then `ip.allow`).
  const concrete = formatPath(path);
  const elsewhere = (placesOf(schema).get(key) ?? [])
    .filter((p) => p !== here)
    .map((p) => (here && p.startsWith(`${here}.`) ? { at: concrete + p.slice(here.length), near: 0 } : { at: p, near: 1 }))
    .sort((a, b) => a.near - b.near);
  if (elsewhere.length) {
    const where = elsewhere
      .slice(0, 3)
      .map(({ at }) => (at ? `${at}.${key}` : `${key} (at the top level of the policy)`))
      .join(', ');
    return `unknown key here: "${key}" belongs in ${where}`;
  }
  if (ADAPTER_OPTION_HINTS[key]) return `\`${key}\` ${ADAPTER_OPTION_HINTS[key]}`;
  return known.length && known.length <= 12 ? `unknown key (expected one of: ${known.join(', ')})` : 'unknown key';
}

/**
 * Readable PolicyIssues for zod's issues over `input`: a missing required key reads `required`, a
 * generic type or union error says what was expected and what was given (its type, never its value:
 * policies hold secrets), an unknown key says where it belongs or what it is close to.
 */
export function policyIssues(schema: z.core.$ZodType, input: unknown, issues: readonly Issue[]): PolicyIssue[] {
  const out: PolicyIssue[] = [];
  for (const issue of issues) {
    const path = issue.path.filter((k): k is Key => typeof k === 'string' || typeof k === 'number');
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push({ path: formatPath([...path, key]), message: unknownKey(schema, path, key) });
      continue;
    }
    const at = valueAt(input, path);
    const missing = path.length > 0 && !at.present && !!at.parent && typeof at.parent === 'object' && (issue.code === 'invalid_type' || issue.code === 'invalid_union');
    out.push({ path: formatPath(path), message: missing ? 'required' : describe(issue, at.value) });
  }
  return out;
}
