// The example app: an orders API guarded by token-guard. Read this file as the usage documentation.
import express from 'express';
import type { JWK } from 'jose';
import { tokenGuard, requireScopes } from 'token-guard/express';
import type { DecisionEvent, TokenStore } from 'token-guard';

/** What the app needs from its environment: public keys to trust, a store, and (for demos) a clock. */
export interface AppOptions {
  /** Public JWKs of the identity provider (in production: `jwksUri` instead). */
  publicKeys: JWK[];
  store: TokenStore;
  clock?: () => Date;
  onDecision?: (event: DecisionEvent) => void;
}

export const ISSUER = 'https://id.example.com/';
export const AUDIENCE = 'api://orders';

/** Builds the orders API. */
export function createApp(options: AppOptions) {
  const guard = tokenGuard({
    jwt: { issuer: ISSUER, audience: AUDIENCE, algorithms: ['RS256', 'ES256'], keys: options.publicKeys, maxTokenAge: '1h' },
    apiKeys: { prefix: 'tg_' },
    store: options.store,
    // The demo sends X-Forwarded-For from loopback as if through a local proxy.
    trustProxy: ['127.0.0.1', '::1'],
    // Office hours in Berlin, Monday to Saturday.
    hours: { timezone: 'Europe/Berlin', windows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat'], from: '07:00', to: '20:00' }] },
    rules: [
      { path: '/health', public: true },
      { methods: ['GET'], path: '/orders/**', scopes: ['orders:read'] },
      { methods: ['POST', 'PUT', 'PATCH', 'DELETE'], path: '/orders/**', scopes: ['orders:write'], stepUp: { maxAge: '10m', amr: ['mfa'] } },
      { path: '/admin/**', scopes: ['admin'], ip: { allow: ['10.0.0.0/8'] } },
    ],
    rateLimit: { limit: 600, window: '1m' },
    ...(options.clock && { clock: options.clock }),
    ...(options.onDecision && { onDecision: options.onDecision }),
  });

  const app = express();
  app.use(guard);
  app.get('/health', (_req, res) => {
    res.json({ ok: true });
  });
  app.get('/orders/:id', (req, res) => {
    res.json({ id: req.params.id, for: req.auth?.token?.subject });
  });
  app.post('/orders', (req, res) => {
    res.status(201).json({ created: true, by: req.auth?.token?.subject });
  });
  app.get('/admin/audit', requireScopes('admin', 'audit:read'), (_req, res) => {
    res.json({ entries: [] });
  });
  return { app, guard: guard.guard };
}
