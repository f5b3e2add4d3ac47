import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

describe('npm run demo', () => {
  it('walks every scripted request through the Express example and gets the expected answers', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'examples/demo.ts'], { timeout: 60_000 });
    expect(stdout).toMatch(/All 18 requests got the expected answer\./);
    for (const reason of [
      'token.missing',
      'scope.insufficient',
      'step_up.required',
      'token.expired',
      'token.revoked',
      'token.invalid',
      'hours.outside',
      'ip.denied',
      'token.malformed',
      'request.malformed',
    ]) {
      expect(stdout).toContain(reason);
    }
    expect(stdout).not.toContain('MISMATCH');
  }, 90_000);
});
