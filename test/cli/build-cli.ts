// Global setup of the `cli` test project: builds dist/cli.js so the tests run the command exactly as npm installs it,
// and the library's ESM bundles (TOKEN_GUARD_BUILD=cli+esm), which the tests' `--policy` modules import as
// `token-guard/*`: without them those tests would run against whatever an earlier build left in dist/.
import { spawnSync } from 'node:child_process';
import path from 'node:path';

export default function buildCli(): void {
  const root = path.resolve(import.meta.dirname, '../..');
  const started = Date.now();
  const r = spawnSync(process.execPath, [path.join(root, 'node_modules/tsup/dist/cli-default.js')], {
    cwd: root,
    env: { ...process.env, TOKEN_GUARD_BUILD: 'cli+esm' },
    encoding: 'utf8',
  });
  if (r.status !== 0) {
    throw new Error(`CLI tests: building dist/cli.js failed (TOKEN_GUARD_BUILD=cli+esm npx tsup), so the CLI tests cannot run:\n${r.stdout}\n${r.stderr}`);
  }
  console.log(`CLI tests: built dist/cli.js and the ESM library in ${Date.now() - started} ms`);
}
