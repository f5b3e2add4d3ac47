// Loading a policy module for `policy check` and `explain`: ESM or CommonJS JavaScript by Node's own import(),
// TypeScript only where this Node can load it itself (type stripping, or a loader the user registered with
// NODE_OPTIONS='--import tsx'): the CLI ships no compiler.
import { stat } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { TokenGuardPolicy } from '../core/policy.js';
import { CliError, usage } from './exit.js';

const JS = new Set(['.js', '.mjs', '.cjs']);
const TS = new Set(['.ts', '.mts', '.cts']);

const EXPORT_HELP = 'export the policy object as the default export (export default { … } or module.exports = { … }), or as `export const policy = { … }`';

/** A policy module, loaded: its policy (not yet validated) and its absolute path. */
export interface LoadedPolicy {
  policy: TokenGuardPolicy;
  file: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Imports `file` and finds its policy: the `policy` export, else the default export (a CommonJS module's
 * `module.exports`), or a function of either that returns (a promise of) the policy. Throws CliError:
 * not found, usage (an extension it cannot load), policy invalid (the module throws or exports no policy).
 */
export async function loadPolicy(file: string, cwd: string, name: string): Promise<LoadedPolicy> {
  const abs = resolve(cwd, file);
  const info = await stat(abs).catch(() => undefined);
  if (!info) throw new CliError('cli.not_found', `${name}: no such file: ${file}`);
  if (!info.isFile()) throw usage(`${name}: not a file: ${file}`);
  const ext = extname(abs).toLowerCase();
  if (!JS.has(ext) && !TS.has(ext)) throw usage(`${name}: cannot load ${file}: expected a .js, .mjs or .cjs module (or .ts where Node can load it)`);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(abs).href)) as Record<string, unknown>;
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if (TS.has(ext) && e.code === 'ERR_UNKNOWN_FILE_EXTENSION') {
      throw usage(
        `${name}: this Node (${process.version}) cannot load TypeScript (${file})`,
        "use Node 22.18+ or 23.6+ (built-in type stripping), or NODE_OPTIONS='--import tsx' npx token-guard …, or point at the compiled .js",
      );
    }
    throw new CliError('cli.policy_invalid', `${name}: ${file} failed to load: ${firstLine(e.message ?? String(err))}`, { cause: err });
  }
  let candidate: unknown = 'policy' in mod ? mod['policy'] : mod['default'];
  // A CommonJS `module.exports = { policy }` arrives as the default export.
  if (!('policy' in mod) && isObject(candidate) && 'policy' in candidate && Object.keys(candidate).length === 1) candidate = candidate['policy'];
  if (typeof candidate === 'function') {
    try {
      candidate = await (candidate as () => unknown)();
    } catch (err) {
      throw new CliError('cli.policy_invalid', `${name}: the policy function of ${file} threw: ${firstLine((err as Error)?.message ?? String(err))}`, { cause: err });
    }
  }
  if (!isObject(candidate)) throw new CliError('cli.policy_invalid', `${name}: ${file} exports no policy object`, { help: EXPORT_HELP });
  return { policy: candidate as TokenGuardPolicy, file: abs };
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}
