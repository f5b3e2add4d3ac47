// Runs the key-rotation walkthrough as `npm run example:key-rotation` would and checks every step got its answer.
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

describe('npm run example:key-rotation', () => {
  it('walks a key through issue, rotation with grace, refusal after it and revocation, with the audit trail', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'examples/key-rotation/walkthrough.ts'], { timeout: 60_000 });
    expect(stdout).toMatch(/All 6 requests got the expected answer\./);
    expect(stdout).toMatch(/the old key, during the grace +→ 200 Deprecation: @\d+, Sunset: \w{3}, /);
    expect(stdout).toMatch(/the old key, after the grace +→ 401 token\.revoked — API key rotated to key_/);
    expect(stdout).toContain('API key revoked (reason: compromised)');
    expect(stdout.match(/key\.(issued|rotated|revoked)/g)).toEqual(['key.issued', 'key.issued', 'key.rotated', 'key.revoked']);
    expect(stdout).not.toContain('✗');
  }, 90_000);
});
