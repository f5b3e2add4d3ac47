// The built declarations as a CommonJS TypeScript user compiles them: jose is ESM-only, so a .d.cts that imports its
// types fails under `module: node16` with `skipLibCheck: false` (TS1479). Public types declare what they need in
// src/leaf/ instead (`Jwk`), and these tests keep it so.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { entryPoints } from '../../scripts/entry-points.js';

const root = path.resolve(import.meta.dirname, '../..');
const dist = path.join(root, 'dist');
let scratch: string;

beforeAll(() => {
  if (!existsSync(path.join(dist, 'index.d.cts'))) execFileSync('npx', ['tsup'], { cwd: root, stdio: 'ignore' });
  mkdirSync(path.join(root, 'node_modules/.cache'), { recursive: true });
  scratch = mkdtempSync(path.join(root, 'node_modules/.cache/cjs-types-'));
}, 120_000);

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

/** `import … from 'jose'`, `import 'jose'`, `import('jose')`, `export … from 'jose'`, in any quotes. */
const JOSE_IMPORT = /(?:\bfrom\s*|\bimport\s*\(?\s*)['"]jose(?:\/[^'"]*)?['"]/;

describe('the built declarations', () => {
  it('import nothing from jose (ESM-only), in .d.ts and .d.cts alike', () => {
    const files = readdirSync(dist).filter((f) => f.endsWith('.d.ts') || f.endsWith('.d.cts'));
    expect(files).toEqual(expect.arrayContaining(['index.d.ts', 'index.d.cts', 'set.d.cts']));
    const importing = files.filter((f) => JOSE_IMPORT.test(readFileSync(path.join(dist, f), 'utf8')));
    expect(importing).toEqual([]);
  });

  it('compile for a CommonJS consumer on module node16 with skipLibCheck off (no TS1479)', () => {
    // The consumer is its own CommonJS package that has token-guard installed (a link to this repository), so that
    // `require` resolves through the exports map to the .d.cts files, as after `npm install token-guard`.
    writeFileSync(path.join(scratch, 'package.json'), '{ "type": "commonjs" }\n');
    mkdirSync(path.join(scratch, 'node_modules'));
    symlinkSync(root, path.join(scratch, 'node_modules/token-guard'), 'dir');
    const entries = entryPoints();
    const consumer = [
      ...entries.map((e, i) => `import * as entry${i} from '${e.specifier}';`),
      "import type { Jwk, TokenGuardPolicy } from 'token-guard';",
      "const jwk: Jwk = { kty: 'EC', crv: 'P-256', x: 'x', y: 'y', kid: 'k1' };",
      "export const policy: TokenGuardPolicy = { jwt: { issuer: 'https://id.example.com/', audience: 'api', algorithms: ['ES256'], keys: [jwk] } };",
      `export const loaded = [${entries.map((_, i) => `entry${i}`).join(', ')}];`,
    ].join('\n');
    writeFileSync(path.join(scratch, 'consumer.ts'), `${consumer}\n`);
    const compilerOptions = { module: 'node16', moduleResolution: 'node16', target: 'es2022', strict: true, skipLibCheck: false, noEmit: true, types: ['node'] };
    writeFileSync(path.join(scratch, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['consumer.ts'] }));
    let output = '';
    try {
      execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json', '--pretty', 'false'], { cwd: scratch, encoding: 'utf8' });
    } catch (err) {
      output = String((err as { stdout?: string }).stdout ?? err);
    }
    // Errors in other packages' own declarations (ioredis imports untyped redis-errors) are theirs: only ours count.
    const ownDirs = [dist, path.join(scratch, 'node_modules/token-guard/dist')].map((d) => d + path.sep);
    const ours = output
      .split('\n')
      .filter((line) => /error TS\d+/.test(line))
      .filter((line) => {
        const file = /^(.*?)\(\d+,\d+\): error/.exec(line)?.[1];
        if (file === undefined) return true;
        const full = path.resolve(scratch, file);
        return ownDirs.some((d) => full.startsWith(d)) || full === path.join(scratch, 'consumer.ts');
      });
    expect(ours).toEqual([]);
  }, 120_000);
});
