// Error classes: one base with a stable `code`, `status`, `headers` and `expose`, a subclass per failure.
import type { ReasonCode } from './types.js';

/** Options every token-guard error accepts. */
export interface TokenGuardErrorOptions {
  status?: number;
  headers?: Record<string, string>;
  expose?: boolean;
  cause?: unknown;
}

/**
 * Base class of every error token-guard throws or hands to a framework.
 * `code` is stable: a reason code (`token.expired`) for request failures, `policy.invalid` and
 * friends for developer mistakes. `expose` says whether the message is safe to show a client.
 *
 * Exported from `token-guard`.
 */
export class TokenGuardError extends Error {
  /** Stable machine-readable code; switch on it. */
  readonly code: string;
  /** HTTP status that answers this error. */
  readonly status: number;
  /** Response headers that belong to the answer (WWW-Authenticate, Retry-After, RateLimit-*). */
  readonly headers: Record<string, string>;
  /** Whether `message` may be shown to the client (http-errors convention). */
  readonly expose: boolean;

  /** Same as `status`, for error handlers that read `statusCode` (Fastify, http-errors). */
  get statusCode(): number {
    return this.status;
  }

  constructor(code: string, message: string, options: TokenGuardErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = options.status ?? 500;
    this.headers = options.headers ?? {};
    this.expose = options.expose ?? this.status < 500;
  }
}

/** A request refused by the guard, handed to the framework's error path with `errors: 'throw'`. */
export class AccessDeniedError extends TokenGuardError {
  /** The reason code; same value as `code`. */
  readonly reason: ReasonCode;

  constructor(reason: ReasonCode, message: string, options: TokenGuardErrorOptions = {}) {
    super(reason, message, { ...options, expose: true });
    this.reason = reason;
  }
}

/** One problem found in a policy: where and what. */
export interface PolicyIssue {
  /** Path into the policy object, e.g. `rules[1].ip.allow[0]`. */
  path: string;
  message: string;
}

/** The policy given to `createGuard` (or an adapter) is invalid. Thrown at start-up, never per request. */
export class PolicyError extends TokenGuardError {
  /** Every problem found, each with its path. */
  readonly issues: PolicyIssue[];

  constructor(issues: PolicyIssue[]) {
    const lines = issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message));
    super('policy.invalid', `Invalid token-guard policy:\n  ${lines.join('\n  ')}`, { status: 500, expose: false });
    this.issues = issues;
  }
}

/** A store call failed or timed out. The guard turns it into 503 `store.unavailable` (fail closed). */
export class StoreError extends TokenGuardError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('store.unavailable', message, { status: 503, expose: false, cause: options.cause });
  }
}

/**
 * A change was made (a key issued or rotated, a token or subject revoked) but its lifecycle event could not be kept
 * in the store. `result` is what the call would have returned, where it returns something: for `createApiKey` and
 * `rotateApiKey`, the new key's plaintext, which nothing can show again. Not enumerable, so logging the error does
 * not print the key.
 */
export class LifecycleEventError extends StoreError {
  /** What the call would have returned (the issued key), or undefined. */
  declare readonly result: unknown;

  /** This error, holding what the call made (not enumerable: kept out of logs and JSON). */
  withResult(result: unknown): this {
    Object.defineProperty(this, 'result', { value: result, enumerable: false, configurable: true });
    return this;
  }
}

/** An API key or key record input is malformed (bad prefix, bad options to `issueApiKey`). */
export class ApiKeyError extends TokenGuardError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('api_key.invalid', message, { status: 400, expose: false, cause: options.cause });
  }
}

/** Stable codes of ApiKeyStateError: the key a lifecycle call names cannot take that change. */
export type ApiKeyStateErrorCode = 'api_key.not_found' | 'api_key.revoked' | 'api_key.rotated' | 'api_key.expired';

/**
 * A lifecycle call (`rotateApiKey`, `revokeApiKey`) named a key that cannot take the change: unknown, already
 * revoked, already rotated, or expired. `code` says which; `keyId` is the id the caller gave.
 *
 * Exported from `token-guard`.
 */
export class ApiKeyStateError extends TokenGuardError {
  declare readonly code: ApiKeyStateErrorCode;
  /** The key id the call named. */
  readonly keyId: string;

  constructor(code: ApiKeyStateErrorCode, keyId: string, message: string) {
    super(code, message, { status: code === 'api_key.not_found' ? 404 : 409, expose: false });
    this.keyId = keyId;
  }
}

/** Stable codes of UsageError: a developer mistake in a call, not a bad request. */
export type UsageErrorCode =
  | 'usage.invalid_argument'
  | 'usage.invalid_check'
  | 'store.invalid_argument'
  | 'store.unsupported'
  | 'adapter.options_invalid'
  | 'adapter.scopes_invalid';

/**
 * A function of token-guard was called wrongly (a missing subject, a date that is no date): a developer
 * mistake, thrown at once, never turned into an HTTP answer. Extends TypeError, so `instanceof TypeError`
 * holds as it did before it had a code. `code` is stable; `help` says how to fix the call.
 *
 * Exported from `token-guard`.
 */
export class UsageError extends TypeError {
  /** Stable machine-readable code; switch on it. */
  readonly code: UsageErrorCode;
  /** One line on how to fix the call. */
  readonly help: string;
  /** Always 500: a usage error is the app's bug, not the client's. */
  readonly status = 500;
  /** Never shown to a client. */
  readonly expose = false;

  constructor(message: string, options: { code?: UsageErrorCode; help?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code ?? 'usage.invalid_argument';
    this.help = options.help ?? 'See the README section "Errors" for this code.';
  }
}

/**
 * A value as a message quotes it: a string quoted and cut at 40 characters, a number, boolean, null or undefined as
 * it is, anything else by its type (JSON.stringify would throw on a BigInt or a cycle, and could print a secret).
 */
export function shownValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) return String(value);
  return typeof value;
}
