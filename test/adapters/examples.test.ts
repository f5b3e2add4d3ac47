// Runs the Koa, Fastify and fetch examples as `npm run example:*` would and replays the curl lines they print.
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '../..');
const running: ChildProcess[] = [];

afterEach(() => {
  while (running.length) running.pop()?.kill();
});

interface Curl {
  method: string;
  url: string;
  authorization: string;
}

/** Starts an example on a free port and collects the curl commands it prints. */
async function start(example: string, lines: number): Promise<Curl[]> {
  // tsx as a loader of this very node: one process to stop, no npx wrapper in between.
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'examples', example, 'server.ts')], {
    cwd: root,
    env: { ...process.env, PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.push(child);
  let out = '';
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    child.on('exit', (code) => reject(new Error(`example ${example} exited (${code}): ${err}`)));
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const curls = [...out.matchAll(/^curl -i (?:-X (\w+) )?(http:\/\/127\.0\.0\.1:\d+\S*) -H "Authorization: (Bearer \S+)"/gm)];
      if (curls.length >= lines) resolve(curls.map((m) => ({ method: m[1] ?? 'GET', url: m[2] as string, authorization: m[3] as string })));
    });
  });
}

const call = (c: Curl) => fetch(c.url, { method: c.method, headers: { authorization: c.authorization } });

describe('the examples', () => {
  it.each(['koa', 'fastify', 'fetch'])(
    '%s: listens on 127.0.0.1 and answers its printed curl lines as their comments say',
    async (example) => {
      const curls = await start(example, example === 'fastify' ? 5 : 4);
      expect(curls[0]?.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\//);
      const [jwt, key, write, admin] = await Promise.all(curls.slice(0, 4).map(call));
      expect([jwt?.status, key?.status, write?.status, admin?.status]).toEqual([200, 200, 403, 200]);
      expect(await key?.json()).toEqual({ id: '42', for: 'svc-reporting' });
      expect(await write?.json()).toMatchObject({ reason: 'scope.insufficient' });
      const anonymous = await fetch(curls[0]?.url as string);
      expect([anonymous.status, anonymous.headers.get('www-authenticate')]).toEqual([401, 'Bearer']);
      if (example === 'fastify') {
        // The revocation line, then the key is refused on its very next use.
        expect((await call(curls[4] as Curl)).status).toBe(200);
        const after = await call(curls[1] as Curl);
        expect([after.status, ((await after.json()) as { reason: string }).reason]).toEqual([401, 'token.revoked']);
      }
    },
    60_000,
  );
});
