// Regression: text lines (not tables) printed the values they quote with their line breaks raw: `keys revoke` printed
// the key's stored subject, `explain` the token's `sub`, an error message a stored value or an argument, so a subject
// or name holding "\nstate: active" forged a line of output of its own (terminal escapes were already shown escaped).
// Every line now shows a line feed, like any control character, as \u000a: one `line` is one line of output.
import { SignJWT } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/index.js';
import { useCliRedis } from '../helpers/cli-redis.js';
import { randomPrefix, REDIS_URL, redisUp } from '../helpers/redis.js';
import { cli } from './run.js';

const FORGED = 'x\nstate: active';
const CLEAR = '\u001b[2J';
const EVIL = `${FORGED}${CLEAR}\r\n\u2028tail`;
// ESC, CR, LF and LINE SEPARATOR anywhere but at the end of a line.
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this looks for
const RAW = /[\u001b\r\u2028]/;

/** The output's lines; none may start with what the stored value tried to forge. */
function linesOf(stdout: string): string[] {
  expect(stdout.endsWith('\n')).toBe(true);
  const lines = stdout.slice(0, -1).split('\n');
  expect(lines.filter((l) => l.trimStart().startsWith('state: active'))).toEqual([]);
  expect(RAW.test(stdout), stdout).toBe(false);
  return lines;
}

describe('token-guard text lines show a stored line break escaped', () => {
  it('explain: a token whose sub holds a line break and a screen clear prints it in its one token line', async () => {
    const token = await new SignJWT({ sub: `alice${EVIL}`, scope: 'orders:read' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('https://id.example.com/')
      .setAudience('api://orders')
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode('cli-test-secret-cli-test-secret-0123'));
    const r = await cli(['explain', '--policy', 'good.mjs', '--token-env', 'TOKEN', 'GET', '/orders/1'], { env: { TOKEN: token } });
    expect(r.code).toBe(0);
    const lines = linesOf(r.stdout);
    expect(lines.filter((l) => l.startsWith('  token: '))).toEqual([expect.stringContaining('subject alicex\\u000astate: active\\u001b[2J\\u000d\\u000a\\u2028tail;')]);
  });

  it('an error message quoting an argument keeps to one line', async () => {
    const r = await cli(['keys', 'show', `key_${EVIL}`, '--prefix', randomPrefix('cli-lf-none')], { env: { REDIS_URL } });
    // Not found (3) with Redis up; unreachable (4) without: either way one message line and one help line.
    expect(r.stdout).toBe('');
    const lines = r.stderr.slice(0, -1).split('\n');
    expect(lines[0]).toContain('key_x\\u000astate: active\\u001b[2J');
    expect(lines.length).toBeLessThanOrEqual(2);
    expect(RAW.test(r.stderr)).toBe(false);
  });
});

describe.skipIf(!redisUp)('token-guard keys: a stored subject and name with line breaks', () => {
  const redis = useCliRedis('cli-lf');
  const { prefix } = redis;
  const env = { REDIS_URL };
  let id: string;

  beforeAll(async () => {
    id = (await createApiKey(redis.store, { prefix: 'tg_', subject: `svc${EVIL}`, scopes: [], expiresIn: '1d', name: EVIL, metadata: { note: EVIL } })).record.id;
  });
  it('keys list and show print one table row per field, keys revoke one line naming the subject escaped', async () => {
    const listed = linesOf((await cli(['keys', 'list', `svc${EVIL}`, '--prefix', prefix], { env })).stdout);
    // Header, rule, the one key.
    expect(listed).toHaveLength(3);
    expect(listed[2]).toContain('x\\u000astate: active\\u001b[2J');

    const shown = linesOf((await cli(['keys', 'show', id, '--prefix', prefix], { env })).stdout);
    expect(shown.filter((l) => l.startsWith('name ') || l.startsWith('subject '))).toHaveLength(2);

    const revoked = await cli(['keys', 'revoke', id, '--reason', 'compromised', '--prefix', prefix], { env });
    expect(revoked.code).toBe(0);
    expect(linesOf(revoked.stdout)).toEqual([`Revoked ${id} (svcx\\u000astate: active\\u001b[2J\\u000d\\u000a\\u2028tail) in ${REDIS_URL}: compromised.`]);
  });
});
