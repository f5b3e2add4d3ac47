// Regression: names, metadata, subjects and actors are stored by whoever issued a key (often an app's users), and
// `keys list` / `keys show` printed them raw: an OSC title, a screen clear, a carriage return, a C1 CSI (which JSON
// leaves unescaped too) or a right-to-left override reached the operator's terminal. They are now shown as \uXXXX.
import { beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/index.js';
import { useCliRedis } from '../helpers/cli-redis.js';
import { REDIS_URL, redisUp } from '../helpers/redis.js';
import { cli } from './run.js';

// ESC, BEL, CR, C1 CSI, RLO, ZERO WIDTH SPACE, LINE SEPARATOR.
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this looks for
const RAW = /[\u001b\u0007\r\u009b\u202e\u200b\u2028]/;
const EVIL = 'evil\u001b]0;pwned\u0007\u001b[2J\r\u009b31m\u202eabc\u200b\u2028x';

describe.skipIf(!redisUp)('token-guard keys list and show print stored text escaped', () => {
  const redis = useCliRedis('cli-esc');
  const { prefix } = redis;
  let id: string;
  const env = { REDIS_URL };

  beforeAll(async () => {
    const made = await createApiKey(redis.store, { prefix: 'tg_', subject: `svc${EVIL}`, scopes: [], expiresIn: '1d', name: EVIL, metadata: { note: EVIL }, actor: EVIL });
    id = made.record.id;
  });
  it('in tables and lines, and in --json', async () => {
    for (const args of [
      ['keys', 'list', `svc${EVIL}`],
      ['keys', 'show', id],
      ['keys', 'show', id, '--json'],
      ['keys', 'list', `svc${EVIL}`, '--json'],
    ]) {
      const r = await cli([...args, '--prefix', prefix], { env });
      expect([args.join(' '), r.code]).toEqual([args.join(' '), 0]);
      expect(RAW.test(r.stdout), r.stdout).toBe(false);
      expect(r.stdout).toContain('\\u001b');
      expect(r.stdout).toContain('\\u202e');
    }
    // The JSON still reads back as the stored value.
    const shown = JSON.parse((await cli(['keys', 'show', id, '--json', '--prefix', prefix], { env })).stdout) as { key: { name: string } };
    expect(shown.key.name).toBe(EVIL);
  });
});
