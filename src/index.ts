// token-guard: the framework-neutral core. Adapters live in token-guard/express (koa, fastify, fetch).
export { createGuard, type Guard, type Explanation, type ExplainOptions, type GuardRevokeOptions, type GuardRevokeSubjectOptions } from './core/guard.js';
export type { TraceStep } from './core/pipeline.js';
export type { RuleTried } from './core/rule-match.js';
export type { TokenGuardPolicy, JwtPolicy, ApiKeysPolicy, RulePolicy, RateLimitPolicy } from './core/policy.js';
export type {
  AuthResult,
  Awaitable,
  Decision,
  DecisionEvent,
  DecisionStatus,
  GuardRequest,
  Jwk,
  ReasonCode,
  RiskSignalScore,
  TokenInfo,
} from './leaf/types.js';
export type { GuardTelemetry, DecisionTiming } from './leaf/telemetry.js';
export { REASONS, type ReasonInfo } from './leaf/reasons.js';
export { REASON_CODES } from './core/registry.js';
export {
  protectedResourceMetadata,
  protectedResourceMetadataHandler,
  protectedResourceMetadataPath,
  type ProtectedResourceMetadata,
  type ProtectedResourceMetadataOptions,
  type ProtectedResourceMetadataHandler,
  type MetadataResponse,
} from './core/resource-metadata.js';
export type { AuthorizationServerMetadata } from './tokens/jwks.js';
export type { TokenGuardWarningCode } from './leaf/warnings.js';
export {
  TokenGuardError,
  AccessDeniedError,
  PolicyError,
  StoreError,
  LifecycleEventError,
  ApiKeyError,
  ApiKeyStateError,
  type ApiKeyStateErrorCode,
  UsageError,
  type UsageErrorCode,
  type PolicyIssue,
  type TokenGuardErrorOptions,
} from './leaf/errors.js';
export {
  PROBLEM_CONTENT_TYPE,
  denialResponse,
  decisionError,
  passes,
  passHeaders,
  problemDetails,
  problemType,
  type DenialResponse,
  type ProblemDetails,
} from './leaf/http.js';
export type { Duration } from './leaf/duration.js';
export type { IpRule } from './checks/ip.js';
export type { HoursRule, HoursWindow, Day } from './checks/hours.js';
export type { ScopesPolicy } from './checks/scopes.js';
export type { RiskPolicy, RiskContext, RiskSignal, RiskScore } from './checks/risk.js';
// Types the policy's own types name (so users can name them, and the API reference documents them).
export type { ClaimsRule, ClaimMatcher, ClaimsPredicate, ClaimsRequest, ClaimValue } from './checks/claims.js';
export type { StepUpPolicy } from './checks/step-up.js';
export type { DpopPolicy, DpopNoncePolicy } from './checks/dpop.js';
export type { IntrospectionPolicy, IntrospectionJwtPolicy, PrivateKeyJwtPolicy } from './tokens/introspection.js';
export type { PreAuthLimitPolicy } from './checks/pre-auth-limit.js';
export type { JwtAlgorithm } from './tokens/jwt.js';
export { hashApiKey, parseApiKey, type ParsedApiKey, type ParseApiKeyOptions } from './tokens/api-key.js';
export { issueApiKey, type IssueApiKeyOptions, type IssuedApiKey } from './core/issue-api-key.js';
export {
  createApiKey,
  listApiKeys,
  findApiKey,
  rotateApiKey,
  revokeApiKey,
  listLifecycleEvents,
  MAX_ROTATION_GRACE_MS,
  type ApiKeySummary,
  type CreateApiKeyOptions,
  type LifecycleOptions,
  type ListApiKeysOptions,
  type RevokeApiKeyOptions,
  type RotateApiKeyOptions,
  type RotatedApiKey,
} from './core/key-lifecycle.js';
export {
  LIFECYCLE_EVENT_TYPES,
  isRevocationReason,
  type LifecycleEvent,
  type LifecycleEventType,
  type LifecycleQuery,
  type RevocationReason,
} from './leaf/lifecycle.js';
export { MemoryStore, type MemoryStoreOptions } from './stores/memory.js';
export { StoreArgumentError } from './stores/validate.js';
export { composeStores, type ComposeStoresOptions } from './stores/compose.js';
export type {
  ClaimStore,
  CounterStore,
  KeyInventoryStore,
  KeyRecordStore,
  LifecycleEventStore,
  PartialTokenStore,
  RevocationEntries,
  RevocationEntry,
  RevocationListStore,
  RevocationSource,
  StoreCache,
  UsageStore,
} from './leaf/store-parts.js';
export type {
  TokenStore,
  ApiKeyRecord,
  ApiKeyPatch,
  ApiKeyUpdateCondition,
  RevocationState,
  RevokeOptions,
  RevokeSubjectOptions,
  ClaimOptions,
  ClaimQuery,
  RateLimitRule,
  RateLimitCheck,
  RateLimitState,
  RateLimitResult,
  TokenUsage,
  UsageEvent,
} from './leaf/store.js';
export { RECENT_IPS_KEPT } from './leaf/store.js';
