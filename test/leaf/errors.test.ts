import { describe, expect, it } from 'vitest';
import {
  AccessDeniedError,
  ApiKeyError,
  PolicyError,
  StoreError,
  TokenGuardError,
  decisionError,
  denialResponse,
  passHeaders,
  problemDetails,
  REASONS,
  REASON_CODES,
  type Decision,
} from '../../src/index.js';

describe('errors', () => {
  it('gives every error a stable code, status, statusCode, headers, expose and its class name', () => {
    const cause = new Error('root');
    expect(new AccessDeniedError('token.expired', 'Access token expired', { status: 401, headers: { 'WWW-Authenticate': 'Bearer' } })).toMatchObject({
      name: 'AccessDeniedError',
      code: 'token.expired',
      reason: 'token.expired',
      status: 401,
      statusCode: 401,
      expose: true,
      headers: { 'WWW-Authenticate': 'Bearer' },
      message: 'Access token expired',
    });
    expect(new PolicyError([{ path: 'rules[0].path', message: 'bad' }])).toMatchObject({
      name: 'PolicyError',
      code: 'policy.invalid',
      status: 500,
      statusCode: 500,
      expose: false,
      issues: [{ path: 'rules[0].path', message: 'bad' }],
    });
    expect(new StoreError('down', { cause })).toMatchObject({ name: 'StoreError', code: 'store.unavailable', status: 503, expose: false, cause });
    expect(new ApiKeyError('bad prefix')).toMatchObject({ name: 'ApiKeyError', code: 'api_key.invalid', status: 400, expose: false });
    for (const E of [AccessDeniedError, PolicyError, StoreError, ApiKeyError]) expect(E.prototype).toBeInstanceOf(TokenGuardError);
  });

  it('exposes a message only when the status is below 500 unless told otherwise', () => {
    expect(new TokenGuardError('x', 'm', { status: 404 }).expose).toBe(true);
    expect(new TokenGuardError('x', 'm').expose).toBe(false);
  });
});

describe('decision → HTTP', () => {
  const decision = (over: Partial<Decision>): Decision => ({
    effect: 'deny',
    status: 401,
    reason: 'token.expired',
    reasons: ['token.expired'],
    mode: 'enforce',
    headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
    ...over,
  });

  it('answers every reason with a problem body that says only type, title, status and reason', () => {
    for (const reason of REASON_CODES.filter((r) => r !== 'ok')) {
      const res = denialResponse(decision({ reason, status: REASONS[reason].status }));
      expect(res?.status).toBe(REASONS[reason].status);
      expect(JSON.parse(res?.body ?? '')).toEqual({ type: `urn:token-guard:problem:${reason}`, title: REASONS[reason].title, status: REASONS[reason].status, reason });
      expect(res?.headers).toMatchObject({ 'Content-Type': 'application/problem+json', 'Cache-Control': 'no-store' });
      expect(problemDetails(reason).reason).toBe(reason);
    }
  });

  it('lets allowed and report-only decisions through', () => {
    expect(denialResponse(decision({ effect: 'allow', status: 200, reason: 'ok', reasons: [] }))).toBeUndefined();
    expect(denialResponse(decision({ mode: 'report-only' }))).toBeUndefined();
  });

  it('sends no challenge or Retry-After on a report-only refusal that goes through, but keeps RateLimit-*', () => {
    const d = decision({
      mode: 'report-only',
      headers: { 'WWW-Authenticate': 'Bearer', 'Retry-After': '3', 'RateLimit-Limit': '5', 'RateLimit-Remaining': '0', 'RateLimit-Reset': '3' },
    });
    expect(passHeaders(d)).toEqual({ 'RateLimit-Limit': '5', 'RateLimit-Remaining': '0', 'RateLimit-Reset': '3' });
  });

  it('turns a refusal into an AccessDeniedError carrying its headers', () => {
    expect(decisionError(decision({}))).toMatchObject({ code: 'token.expired', status: 401, headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' } });
  });
});
