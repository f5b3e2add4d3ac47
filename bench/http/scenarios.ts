// The servers `npm run bench:http` compares, shared by the load generator (run.ts) and the server process (server.ts).
import type { JWK } from 'jose';

/** The framework a server runs on; each guarded or peer server is compared with its framework's bare one. */
export type Framework = 'express' | 'koa' | 'fastify' | 'fetch';

/** One server under test. */
export interface Scenario {
  /** Stable id, used on the command line (`ONLY=`) and in the JSON. */
  id: string;
  framework: Framework;
  /**
   * bare: no authentication at all; guard: token-guard; stub: token-guard's adapter around a stub guard whose
   * `decide` returns one fixed allow Decision (the adapter's own cost, apart from the guard's); peer: another
   * library doing the same job; layer: one empty middleware (hook) where the guard sits, which only passes the request
   * on (what the framework itself charges for a layer, the floor any middleware pays).
   */
  kind: 'bare' | 'layer' | 'guard' | 'stub' | 'peer';
  /** Which token the load generator sends (the guard caches verification, so the algorithm only matters to peers). */
  alg: 'RS256' | 'HS256';
  /** Row label in the table. */
  label: string;
}

export const ISSUER = 'https://id.example.com/';
export const AUDIENCE = 'api://orders';
export const SCOPE = 'orders:read';
/** The one route every server answers, with the same small JSON body. */
export const ROUTE = '/orders/42';
export const BODY = { ok: true } as const;

/** Key material the load generator makes and hands to every server process (through the environment). */
export interface BenchKeys {
  /** RS256 public key as a JWK with kid and alg (token-guard, express-oauth2-jwt-bearer). */
  rsPublicJwk: JWK;
  /** The same key as SPKI PEM (@fastify/jwt). */
  rsPublicPem: string;
  /** HS256 shared secret (@fastify/jwt HS256), at least 32 bytes. */
  hsSecret: string;
}

/** Interleaving order within a round: each framework's bare server, then what is compared with it. */
export const SCENARIOS: readonly Scenario[] = [
  { id: 'express', framework: 'express', kind: 'bare', alg: 'RS256', label: 'Express (bare)' },
  { id: 'express-layer', framework: 'express', kind: 'layer', alg: 'RS256', label: 'Express + empty app.use layer' },
  { id: 'express-guard', framework: 'express', kind: 'guard', alg: 'RS256', label: 'Express + token-guard (app.use)' },
  { id: 'express-guard-route', framework: 'express', kind: 'guard', alg: 'RS256', label: 'Express + token-guard (on the route)' },
  { id: 'express-guard-fast', framework: 'express', kind: 'guard', alg: 'RS256', label: 'Express + token-guard (app.use, trackUsage: false)' },
  // Another build of token-guard (BASELINE_DIST=<its dist/>): paired with express-guard in one process, an A/B of two
  // commits that the machine's drift cannot tell apart between two runs.
  { id: 'express-guard-baseline', framework: 'express', kind: 'guard', alg: 'RS256', label: 'Express + token-guard of BASELINE_DIST (app.use)' },
  { id: 'express-stub', framework: 'express', kind: 'stub', alg: 'RS256', label: 'Express + adapter only (app.use, stub guard)' },
  { id: 'express-auth0', framework: 'express', kind: 'peer', alg: 'RS256', label: 'Express + express-oauth2-jwt-bearer RS256' },
  { id: 'koa', framework: 'koa', kind: 'bare', alg: 'RS256', label: 'Koa (bare)' },
  { id: 'koa-layer', framework: 'koa', kind: 'layer', alg: 'RS256', label: 'Koa + empty middleware' },
  { id: 'koa-guard', framework: 'koa', kind: 'guard', alg: 'RS256', label: 'Koa + token-guard' },
  { id: 'koa-guard-fast', framework: 'koa', kind: 'guard', alg: 'RS256', label: 'Koa + token-guard (trackUsage: false)' },
  { id: 'koa-stub', framework: 'koa', kind: 'stub', alg: 'RS256', label: 'Koa + adapter only (stub guard)' },
  { id: 'fastify', framework: 'fastify', kind: 'bare', alg: 'RS256', label: 'Fastify (bare)' },
  { id: 'fastify-layer', framework: 'fastify', kind: 'layer', alg: 'RS256', label: 'Fastify + empty onRequest hook' },
  { id: 'fastify-guard', framework: 'fastify', kind: 'guard', alg: 'RS256', label: 'Fastify + token-guard' },
  { id: 'fastify-guard-fast', framework: 'fastify', kind: 'guard', alg: 'RS256', label: 'Fastify + token-guard (trackUsage: false)' },
  { id: 'fastify-stub', framework: 'fastify', kind: 'stub', alg: 'RS256', label: 'Fastify + adapter only (stub guard)' },
  { id: 'fastify-jwt-hs256', framework: 'fastify', kind: 'peer', alg: 'HS256', label: 'Fastify + @fastify/jwt HS256' },
  { id: 'fastify-jwt-rs256', framework: 'fastify', kind: 'peer', alg: 'RS256', label: 'Fastify + @fastify/jwt RS256' },
  { id: 'fetch', framework: 'fetch', kind: 'bare', alg: 'RS256', label: 'fetch on node:http (bare)' },
  { id: 'fetch-guard', framework: 'fetch', kind: 'guard', alg: 'RS256', label: 'fetch on node:http + token-guard/fetch' },
  { id: 'fetch-guard-fast', framework: 'fetch', kind: 'guard', alg: 'RS256', label: 'fetch on node:http + token-guard/fetch (trackUsage: false)' },
  { id: 'fetch-stub', framework: 'fetch', kind: 'stub', alg: 'RS256', label: 'fetch on node:http + adapter only (stub guard)' },
];

/** Messages from the load generator to a server process. */
export type ToServer = { type: 'cpu'; seq: number } | { type: 'arm'; seq: number; index: number };
/** Messages from a server process to the load generator. */
export type FromServer =
  | { type: 'ready'; port: number }
  | { type: 'cpu'; seq: number; userUs: number; systemUs: number; rssBytes: number }
  | { type: 'armed'; seq: number }
  | { type: 'error'; message: string };
