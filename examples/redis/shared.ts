// What the demo and every instance agree on: the token issuer and the demo's signing secret.
export const ISSUER = 'https://id.example.com/';
export const AUDIENCE = 'api://orders';
/** HS256 keeps the demo self-contained. In production: `jwksUri` of your identity provider. */
export const DEMO_SECRET = process.env.DEMO_SECRET ?? 'token-guard-redis-demo-secret-0123456789abcdef';
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
