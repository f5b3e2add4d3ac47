// The live dashboard, published as `token-guard/dashboard`: a Node (req, res) handler serving a small static
// page over a decision recorder (and, given a store, each refused token's usage). Loopback only by default;
// it never serves a token (the events it reads carry none).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TokenStore } from '../leaf/store.js';
import { UsageError } from '../leaf/errors.js';
import { DASHBOARD_CSS, DASHBOARD_HTML, DASHBOARD_JS } from './dashboard-page.js';
import type { DecisionRecorder, DecisionSnapshot } from './recorder.js';

export { decisionRecorder } from './recorder.js';
export type { DecisionRecorder, DecisionRecorderOptions, DecisionSnapshot, EffectCounts, RecordedDenial } from './recorder.js';

/** Options of `dashboardHandler()`. */
export interface DashboardOptions {
  /** Where the numbers come from: `decisionRecorder()`, whose `onDecision` the guard calls. Required. */
  recorder: DecisionRecorder;
  /** Adds each most-refused token's usage (uses, last use) from the store. Default: none. */
  store?: TokenStore;
  /** Serve clients other than direct loopback ones (any Host, through proxies). Default: `false`: 403 for them. */
  allowRemote?: boolean;
  /** Entries per top list. Default: 10. */
  top?: number;
  /** Recent refusals shown. Default: 50. */
  recent?: number;
  /** How often the page polls, in ms. Default: 2000. */
  refreshMs?: number;
}

/** The data.json answer: the recorder's snapshot, with store usage for the most-refused tokens when a store is given. */
export type DashboardData = DecisionSnapshot & { deniedTokens: (DecisionSnapshot['deniedTokens'][number] & { uses?: number; lastUsedAt?: number })[] };

/** A Node request handler; also works as Express or Connect middleware (`app.use('/guard', handler)`). */
export type DashboardHandler = (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => void;

const SECURITY_HEADERS: Record<string, string> = {
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  // Everything from the handler itself: no inline script, no CDN, nothing else to connect to.
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
};

function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  return a === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a);
}

/** A Host header as RFC 9110 spells it: a name, an IPv4 address or a bracketed IPv6 one, and an optional port; nothing after. */
const HOST = /^(\[[0-9A-Fa-f:.]+\]|[^:[\]]+)(?::\d{1,5})?$/;

// A loopback Host only: a page on another site that rebinds its DNS name to 127.0.0.1 sends its own name here.
function isLoopbackHost(host: string | undefined): boolean {
  const m = host === undefined ? null : HOST.exec(host);
  if (!m) return false;
  const name = (m[1] as string).toLowerCase();
  return name === 'localhost' || name.endsWith('.localhost') || name === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

// A request a proxy forwarded: its socket is the proxy's, so a proxy on this host makes any client look like loopback
// (and nginx's default `Host: $proxy_host` passes the Host check too). Proxies that say so are refused.
const PROXY_HEADERS = ['forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-real-ip', 'via'] as const;

function isProxied(headers: IncomingMessage['headers']): boolean {
  for (const h of PROXY_HEADERS) if (headers[h] !== undefined) return true;
  return false;
}

function send(res: ServerResponse, status: number, type: string, body: string, extra: Record<string, string> = {}): void {
  res.statusCode = status;
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
  for (const [k, v] of Object.entries(extra)) res.setHeader(k, v);
  res.setHeader('Content-Type', type);
  res.end(body);
}

function checkCount(name: string, v: unknown, fallback: number, max: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) throw new UsageError(`dashboardHandler: ${name} must be an integer from 1 to ${max}`);
  return v;
}

/** Each token's usage from the store, bounded in time: a slow store must not hang the page. */
async function withUsage(store: TokenStore, snapshot: DecisionSnapshot): Promise<DashboardData> {
  const deniedTokens = await Promise.all(
    snapshot.deniedTokens.map(async (t) => {
      try {
        const usage = await Promise.race([
          Promise.resolve(store.getUsage(t.tokenId)),
          new Promise<undefined>((r) => (setTimeout(r, 500) as unknown as { unref(): void }).unref()),
        ]);
        return usage && typeof usage.count === 'number' ? { ...t, uses: usage.count, lastUsedAt: usage.lastUsedAt } : t;
      } catch {
        return t;
      }
    }),
  );
  return { ...snapshot, deniedTokens };
}

/**
 * A Node `(req, res)` handler serving the live dashboard: `GET /` the page, `/app.js` and `/app.css` its
 * script and styles, `/data.json` the numbers. Mount it on its own loopback server or under a prefix of your
 * app (`app.use('/guard', dashboardHandler({ recorder }))`). Refuses non-loopback clients unless `allowRemote`.
 *
 * Exported from `token-guard/dashboard`.
 * @example
 * const recorder = decisionRecorder();
 * app.use(tokenGuard({ ...policy, onDecision: recorder.onDecision }));
 * http.createServer(dashboardHandler({ recorder })).listen(9464, '127.0.0.1');
 */
export function dashboardHandler(options: DashboardOptions): DashboardHandler {
  if (!options || typeof options !== 'object') throw new UsageError('dashboardHandler: expected { recorder }');
  const { recorder, store } = options;
  if (!recorder || typeof recorder.snapshot !== 'function') throw new UsageError('dashboardHandler: options.recorder must be a decisionRecorder()');
  if (store !== undefined && (!store || typeof store.getUsage !== 'function')) throw new UsageError('dashboardHandler: options.store must be a token store');
  const top = checkCount('top', options.top, 10, 1000);
  const recent = checkCount('recent', options.recent, 50, 10_000);
  const refreshMs = checkCount('refreshMs', options.refreshMs, 2000, 3_600_000);
  const allowRemote = options.allowRemote === true;
  const html = DASHBOARD_HTML.replace('<html lang="en">', `<html lang="en" data-interval="${refreshMs}">`);

  return (req, res) => {
    if (!allowRemote && (!isLoopback(req.socket?.remoteAddress) || !isLoopbackHost(req.headers.host) || isProxied(req.headers))) {
      send(res, 403, 'text/plain; charset=utf-8', 'token-guard dashboard: direct loopback clients only (allowRemote: true to serve others)\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { Allow: 'GET, HEAD' });
      return;
    }
    const url = req.url ?? '/';
    const path = url.split('?')[0] ?? '/';
    if (path === '/' || path === '' || path === '/index.html') {
      // Mounted under a prefix and asked without its trailing slash: relative URLs would miss the prefix.
      const original = (req as { originalUrl?: unknown }).originalUrl;
      const asked = typeof original === 'string' ? (original.split('?')[0] ?? '') : path;
      if (asked !== '' && !asked.endsWith('/') && path !== '/index.html') {
        // `//host/…` or `/\host/…` in Location would send the browser to another site.
        if (/^[/\\]{2}/.test(asked)) return send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
        send(res, 308, 'text/plain; charset=utf-8', '', { Location: `${asked}/` });
        return;
      }
      send(res, 200, 'text/html; charset=utf-8', html);
      return;
    }
    if (path === '/app.js') return send(res, 200, 'text/javascript; charset=utf-8', DASHBOARD_JS);
    if (path === '/app.css') return send(res, 200, 'text/css; charset=utf-8', DASHBOARD_CSS);
    // Browsers ask for it unprompted: answered empty rather than as a 404 in the console.
    if (path === '/favicon.ico') return send(res, 204, 'image/x-icon', '');
    if (path === '/data.json') {
      const snapshot = recorder.snapshot({ top, recent });
      if (!store) return send(res, 200, 'application/json', JSON.stringify(snapshot));
      withUsage(store, snapshot).then(
        (data) => send(res, 200, 'application/json', JSON.stringify(data)),
        () => send(res, 200, 'application/json', JSON.stringify(snapshot)),
      );
      return;
    }
    send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
  };
}
