// Global setup of the `cli` test project: builds dist/cli.js (only the bin: TOKEN_GUARD_BUILD=cli) so the tests run
// the command exactly as npm installs it.
import { spawnSync } from 'node:child_process';
import path from 'node:path';

export default function buildCli(): void {
  const root = path.resolve(import.meta.dirname, '../..');
  const started = Date.now();
  const r = spawnSync(process.execPath, [path.join(root, 'node_modules/tsup/dist/cli-default.js')], {
    cwd: root,
    env: { ...process.env, TOKEN_GUARD_BUILD: 'cli' },
    encoding: 'utf8',
  });
  if (r.status !== 0) {
    throw new Error(`CLI tests: building dist/cli.js failed (TOKEN_GUARD_BUILD=cli npx tsup), so the CLI tests cannot run:\n${r.stdout}\n${r.stderr}`);
  }
  console.log(`CLI tests: built dist/cli.js in ${Date.now() - started} ms`);
}
