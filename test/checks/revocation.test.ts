import { describe, expect, it } from 'vitest';
import { isRevoked } from '../../src/checks/revocation.js';

describe('revocation', () => {
  it('is revoked when the token id is revoked, whenever it was issued', () => {
    expect(isRevoked({ revokedAt: 1 }, 5)).toBe(true);
    expect(isRevoked({ revokedAt: 1 }, undefined)).toBe(true);
  });

  it('revokes by subject only tokens issued strictly before the cut-off', () => {
    expect(isRevoked({ subjectRevokedBefore: 1000 }, 999)).toBe(true);
    expect(isRevoked({ subjectRevokedBefore: 1000 }, 1000)).toBe(false);
  });

  it('treats a token without an issue time as caught by a subject revocation', () => {
    expect(isRevoked({ subjectRevokedBefore: 1000 }, undefined)).toBe(true);
  });

  it('is not revoked without state', () => {
    expect(isRevoked(undefined, 1)).toBe(false);
    expect(isRevoked({}, 1)).toBe(false);
  });
});
