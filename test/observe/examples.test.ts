// Runs the observability examples as a user would (tsx, PORT=0) and checks what each one promises.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const running: ChildProcess[] = [];

afterEach(() => {
  while (running.length) running.pop()?.kill();
});

/** Starts an example; resolves once its stdout matches `ready`, with the output so far and a getter for the rest. */
function start(file: string, ready: RegExp): Promise<{ out: () => string; match: RegExpMatchArray }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'examples', file)], {
    cwd: root,
    env: { ...process.env, PORT: '0', METRICS_PORT: '0', DASHBOARD_PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.push(child);
  let out = '';
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    child.on('exit', (code) => reject(new Error(`example ${file} exited (${code}): ${err}`)));
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const match = out.match(ready);
      if (match) resolve({ out: () => out, match });
    });
  });
}

const bearer = (out: string, n: number) => [...out.matchAll(/-H "Authorization: (Bearer \S+)"/g)][n]?.[1] as string;

describe('observability examples', () => {
  it('pino: logs each decision on the request logger with the request id', async () => {
    const { out, match } = await start('observability/pino.ts', /-X POST (http:\/\/127\.0\.0\.1:\d+)\/orders/);
    const url = match[1] as string;
    const res = await fetch(`${url}/orders/42`, { headers: { authorization: bearer(out(), 0), 'x-request-id': 'demo-1' } });
    expect(res.status).toBe(200);
    await expect.poll(() => out()).toMatch(/"reqId":"demo-1".*"msg":"token-guard allow ok"/);
    expect(
      out()
        .split('\n')
        .find((l) => l.includes('"msg":"token-guard allow ok"')),
    ).not.toContain(bearer(out(), 0).slice(7));
  }, 60_000);

  it('otel-prometheus: starts and /metrics shows the token_guard counters', async () => {
    const { out, match } = await start('observability/otel-prometheus.ts', /metrics on (http:\/\/127\.0\.0\.1:\d+)\/metrics[\s\S]*-X POST (http:\/\/127\.0\.0\.1:\d+)\/orders/);
    const [, scrape, api] = match as unknown as [string, string, string];
    expect((await fetch(`${api}/orders/42`, { headers: { authorization: bearer(out(), 0) } })).status).toBe(200);
    expect((await fetch(`${api}/orders`, { method: 'POST', headers: { authorization: bearer(out(), 1) } })).status).toBe(403);
    const text = await (await fetch(`${scrape}/metrics`)).text();
    expect(text).toMatch(/token_guard_decisions_total\{[^}]*token_guard_effect="allow"[^}]*\} 1/);
    expect(text).toMatch(/token_guard_decisions_total\{[^}]*token_guard_reason="scope\.insufficient"[^}]*\} 1/);
    expect(text).toContain('token_guard_decision_duration');
    expect(text).toContain('token_guard_token_cache_misses_total');
  }, 60_000);

  it('dashboard: starts on loopback and its data.json counts the traffic', async () => {
    const { out, match } = await start('dashboard/server.ts', /dashboard on (http:\/\/127\.0\.0\.1:\d+)\/[\s\S]*-X POST (http:\/\/127\.0\.0\.1:\d+)\/orders/);
    const [, dashboard, api] = match as unknown as [string, string, string];
    expect((await fetch(`${api}/orders`, { method: 'POST', headers: { authorization: bearer(out(), 1) } })).status).toBe(403);
    const page = await fetch(`${dashboard}/`);
    expect([page.status, page.headers.get('content-type')]).toEqual([200, 'text/html; charset=utf-8']);
    const data = (await (await fetch(`${dashboard}/data.json`)).json()) as { total: { deny: number }; deniedSubjects: { subject: string }[] };
    expect(data.total.deny).toBe(1);
    expect(data.deniedSubjects[0]?.subject).toBe('svc-reporting');
  }, 60_000);
});
