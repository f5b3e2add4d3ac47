// A headless Chromium for browser tests: Debian's `chromium` (or CHROMIUM_PATH) driven by playwright-core.
// Missing locally: the browser suites are skipped with one warning line; missing on CI (`CI=true`): they fail.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

function find(): string | undefined {
  const fromEnv = process.env.CHROMIUM_PATH;
  if (fromEnv) return existsSync(fromEnv) ? fromEnv : undefined;
  for (const name of ['chromium', 'chromium-browser']) {
    const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
    const path = r.stdout.trim();
    if (r.status === 0 && path) return path;
  }
  return undefined;
}

/** The Chromium executable, or undefined (after one warning) when there is none and this is not CI. */
export const chromiumPath: string | undefined = (() => {
  const path = find();
  if (path) return path;
  if (process.env.CI === 'true')
    throw new Error('chromium is not installed and CI=true: the browser suites must run on CI. Install it: apt-get install -y chromium (or set CHROMIUM_PATH)');
  console.warn('⚠️  BROWSER SUITES SKIPPED: no chromium on PATH. Install it with: apt-get install -y chromium  (or set CHROMIUM_PATH)');
  return undefined;
})();
