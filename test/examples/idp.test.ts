// Runs examples/idp as `npm run example:idp` would and replays the curl lines it prints.
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '../..');
let child: ChildProcess | undefined;

afterEach(() => {
  child?.kill();
  child = undefined;
});

interface Curl {
  method: string;
  url: string;
  authorization: string | undefined;
}

/** Starts the example and collects the curl lines it prints (the API's; the token line is the provider's). */
function start(lines: number): Promise<Curl[]> {
  child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'examples', 'idp', 'server.ts')], {
    cwd: root,
    env: { ...process.env, PORT: '0', IDP_PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    child?.on('exit', (code) => reject(new Error(`example idp exited (${code}): ${err}`)));
    child?.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const curls = [...out.matchAll(/^curl -i (?:-X (\w+) )?(http:\/\/127\.0\.0\.1:\d+\S*)(?: -H "Authorization: (Bearer \S+)")?/gm)];
      if (curls.length >= lines) resolve(curls.map((m) => ({ method: m[1] ?? 'GET', url: m[2] as string, authorization: m[3] })));
    });
  });
}

describe('the identity provider example', () => {
  it('accepts the provider’s tokens by discovery, refuses a missing scope, and serves its RFC 9728 metadata', async () => {
    const curls = await start(4);
    const call = (c: Curl) => fetch(c.url, { method: c.method, headers: c.authorization ? { authorization: c.authorization } : {} });
    const [read, noWrite, write, metadata] = await Promise.all(curls.map(call));
    expect([read?.status, noWrite?.status, write?.status, metadata?.status]).toEqual([200, 403, 201, 200]);
    expect(await read?.json()).toEqual({ id: '42', client: 'reporting' });
    expect(await metadata?.json()).toMatchObject({ resource: 'https://api.example.com', authorization_servers: [expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/)] });
    const anonymous = await fetch(curls[0]?.url as string);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer resource_metadata="http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource"$/);
  }, 60_000);
});
