// The registered checks: one line each. The engine (core/registry.ts) runs them by phase, then by `order`;
// a check's file owns everything else about it (policy slice, schema, compile step, reason codes).
export { preAuthLimitCheck } from './pre-auth-limit.js';
export { popCheck } from './pop.js';
export { dpopReplayCheck } from './dpop-replay.js';
export { ipCheck } from './ip.js';
export { hoursCheck } from './hours.js';
export { scopesCheck } from './scopes.js';
export { stepUpCheck } from './step-up.js';
export { claimsCheck } from './claims.js';
export { riskCheck } from './risk.js';
export { rateLimitCheck } from './rate-limit.js';
export { keyUsesCheck } from './key-uses.js';
export { maxTokenAgeCheck } from './max-token-age.js';
