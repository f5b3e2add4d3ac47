import { describe, expect, it } from 'vitest';
import { compileStepUp, satisfiesStepUp } from '../../src/checks/step-up.js';

const NOW = 1_800_000_000;

describe('step-up', () => {
  const maxAge = compileStepUp({ maxAgeMs: 600_000 });

  it('builds the RFC 9470 challenge parameters once', () => {
    expect(maxAge.challenge).toBe('max_age="600"');
    expect(compileStepUp({ acr: ['gold', 'platinum'] }).challenge).toBe('acr_values="gold platinum"');
    expect(compileStepUp({ maxAgeMs: 60_000, acr: ['gold'] }).challenge).toBe('max_age="60", acr_values="gold"');
    expect(compileStepUp({ amr: ['mfa'] }).challenge).toBe('');
  });

  it('accepts an auth_time within maxAge (plus tolerance) and refuses an older or missing one', () => {
    expect(satisfiesStepUp(maxAge, { authTime: NOW - 600 }, NOW, 0)).toBe(true);
    expect(satisfiesStepUp(maxAge, { authTime: NOW - 601 }, NOW, 0)).toBe(false);
    expect(satisfiesStepUp(maxAge, { authTime: NOW - 604 }, NOW, 5)).toBe(true);
    expect(satisfiesStepUp(maxAge, {}, NOW, 5)).toBe(false);
  });

  it('refuses an auth_time in the future beyond tolerance', () => {
    expect(satisfiesStepUp(maxAge, { authTime: NOW + 6 }, NOW, 5)).toBe(false);
    expect(satisfiesStepUp(maxAge, { authTime: NOW + 5 }, NOW, 5)).toBe(true);
  });

  it('requires every listed amr value', () => {
    const req = compileStepUp({ amr: ['mfa', 'hwk'] });
    expect(satisfiesStepUp(req, { amr: ['pwd', 'mfa', 'hwk'] }, NOW, 0)).toBe(true);
    expect(satisfiesStepUp(req, { amr: ['mfa'] }, NOW, 0)).toBe(false);
    expect(satisfiesStepUp(req, {}, NOW, 0)).toBe(false);
  });

  it('requires acr to be one of the listed values, exactly', () => {
    const req = compileStepUp({ acr: ['urn:gold'] });
    expect(satisfiesStepUp(req, { acr: 'urn:gold' }, NOW, 0)).toBe(true);
    expect(satisfiesStepUp(req, { acr: 'urn:gold:plus' }, NOW, 0)).toBe(false);
    expect(satisfiesStepUp(req, {}, NOW, 0)).toBe(false);
  });
});
