// For bench:instructions with FUNCTIONS=1: callgrind names no JIT-compiled function (it sees anonymous code addresses),
// so V8's own map of its code (`--perf-basic-prof` writes /tmp/perf-<pid>.map: start, size and name of every piece of
// code it made) is read back to name them. What it gives: per request, the instructions and first-level cache misses
// of each of token-guard's compiled functions (those from dist/), and what they call outside it (builtins, V8's
// runtime, Node), inclusive. That is how the cost of the guard on Express was found to be its code and data arriving
// from beyond the caches rather than more work than on Fastify.
import { readFileSync } from 'node:fs';

/** token-guard's built code, as V8 names its scripts (the bench servers run the built package). */
const DIST = new URL('../../dist/', import.meta.url).href;

/** One piece of code in V8's perf map. */
interface CodeRange {
  start: number;
  size: number;
  name: string;
}

/** Costs by event, in the dump's `events:` order. */
type Costs = number[];

/** A function's own costs and its calls' inclusive costs by callee, from one callgrind dump. */
interface DumpFunctions {
  events: string[];
  self: Map<string, Costs>;
  calls: Map<string, Map<string, Costs>>;
}

/** Adds `values` to the costs kept under `key`, starting them when new. */
function addTo<K>(map: Map<K, Costs>, key: K, values: readonly number[]): void {
  let into = map.get(key);
  if (into === undefined) {
    into = [];
    map.set(key, into);
  }
  for (let i = 0; i < values.length; i++) into[i] = (into[i] ?? 0) + (values[i] ?? 0);
}

/** Reads a dump written with `--compress-strings=no`: `fn=`/`cfn=` give names, the line after `calls=` a call's cost. */
function readDump(file: string): DumpFunctions {
  const text = readFileSync(file, 'utf8');
  const events = /^events: (.+)$/m.exec(text)?.[1]?.split(' ') ?? [];
  const self = new Map<string, Costs>();
  const calls = new Map<string, Map<string, Costs>>();
  let fn = '';
  let callee = '';
  let callCost = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('fn=')) fn = line.slice(3);
    else if (line.startsWith('cfn=')) callee = line.slice(4);
    else if (line.startsWith('calls=')) callCost = true;
    else if (/^[\d+*-]/.test(line)) {
      // The first column is the position; the rest are the events' counts.
      const values = line.split(' ').slice(1).map(Number);
      if (callCost) {
        let byCallee = calls.get(fn);
        if (byCallee === undefined) {
          byCallee = new Map();
          calls.set(fn, byCallee);
        }
        addTo(byCallee, callee, values);
        callCost = false;
      } else addTo(self, fn, values);
    }
  }
  return { events, self, calls };
}

function readPerfMap(pid: string): CodeRange[] {
  const ranges: CodeRange[] = [];
  for (const line of readFileSync(`/tmp/perf-${pid}.map`, 'utf8').split('\n')) {
    const [start, size, ...name] = line.split(' ');
    if (start && size && name.length) ranges.push({ start: Number.parseInt(start, 16), size: Number.parseInt(size, 16), name: name.join(' ') });
  }
  return ranges;
}

/**
 * Names callgrind's anonymous code (`0x…` function names, with an optional `'2` recursion suffix) from the perf map.
 * V8 reuses code space, so an address can lie in several ranges: the last one written is the code that ran.
 */
function namer(ranges: readonly CodeRange[]): (fn: string) => string {
  const names = new Map<string, string>();
  return (fn) => {
    const known = names.get(fn);
    if (known !== undefined) return known;
    let name = fn;
    if (/^0x[0-9a-f]+/.test(fn)) {
      const at = Number.parseInt(fn.slice(2), 16);
      for (const r of ranges) if (at >= r.start && at < r.start + r.size) name = r.name;
      // token-guard's own: the built file (dist/) and line, without the path.
      if (name.includes(DIST)) name = name.replace(DIST, 'token-guard:');
    }
    names.set(fn, name);
    return name;
  };
}

const OURS = /token-guard:/;

/** The markdown tables for one dump: token-guard's compiled functions, and what they call outside token-guard. */
export function jitFunctionTables(dumpFile: string, pid: string, requests: number, top = 20): string {
  const { events, self, calls } = readDump(dumpFile);
  const name = namer(readPerfMap(pid));
  const at = (e: string) => events.indexOf(e);
  const [ir, i1, d1r, d1w] = [at('Ir'), at('I1mr'), at('D1mr'), at('D1mw')];
  const per = (c: Costs, i: number) => (i < 0 ? 0 : (c[i] ?? 0) / requests);
  const own = new Map<string, Costs>();
  for (const [fn, c] of self) {
    const n = name(fn);
    if (OURS.test(n)) addTo(own, n, c);
  }
  const out = new Map<string, Costs>();
  for (const [fn, byCallee] of calls) {
    const n = name(fn);
    if (!OURS.test(n)) continue;
    for (const [callee, c] of byCallee) {
      const cn = name(callee);
      if (!OURS.test(cn)) addTo(out, `${n.replace(/^JS:/, '')} → ${cn}`, c);
    }
  }
  const rows = (m: Map<string, Costs>) =>
    [...m]
      .sort((a, b) => per(b[1], ir) - per(a[1], ir))
      .slice(0, top)
      .map(
        ([n, c]) => `| ${n.replace(/^JS:/, '').replaceAll('|', '\\|')} | ${Math.round(per(c, ir))} | ${per(c, i1).toFixed(1)} | ${(per(c, d1r) + per(c, d1w)).toFixed(1)} |`,
      );
  const total = (m: Map<string, Costs>, i: number) => [...m.values()].reduce((s, c) => s + per(c, i), 0);
  return [
    `token-guard's compiled functions, own cost per request (* optimised, ^ baseline): ${Math.round(total(own, ir))} instructions, ${total(own, i1).toFixed(0)} I1 and ${(total(own, d1r) + total(own, d1w)).toFixed(0)} D1 misses in all`,
    '',
    '| function | instructions | I1 misses | D1 misses |',
    '| --- | ---: | ---: | ---: |',
    ...rows(own),
    '',
    `What they call outside token-guard, inclusive, per request: ${Math.round(total(out, ir))} instructions (the framework's own next() included)`,
    '',
    '| caller → callee | instructions | I1 misses | D1 misses |',
    '| --- | ---: | ---: | ---: |',
    ...rows(out),
  ].join('\n');
}
