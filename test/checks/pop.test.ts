import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { certificateThumbprint, popFailure } from '../../src/checks/pop.js';

const der = Buffer.from('certificate bytes');
const thumb = createHash('sha256').update(der).digest('base64url');
const fingerprint256 = createHash('sha256').update(der).digest('hex').toUpperCase().match(/../g)!.join(':');

describe('proof of possession', () => {
  it("turns Node's fingerprint256 into an RFC 8705 x5t#S256 thumbprint", () => {
    expect(certificateThumbprint(fingerprint256)).toBe(thumb);
    expect(certificateThumbprint('not-hex')).toBeUndefined();
  });

  it('passes an unbound bearer token', () => {
    expect(popFailure(undefined, 'bearer', undefined)).toBeUndefined();
  });

  it('passes a certificate-bound token only with the matching certificate', () => {
    const cnf = { 'x5t#S256': thumb };
    expect(popFailure(cnf, 'bearer', { fingerprint256 })).toBeUndefined();
    expect(popFailure(cnf, 'bearer', undefined)).toMatch(/without a client certificate/);
    expect(popFailure(cnf, 'bearer', { fingerprint256: fingerprint256.replace(/^../, '00') })).toMatch(/does not match/);
  });

  it('refuses DPoP-bound tokens and the DPoP scheme rather than treating them as bearer tokens', () => {
    expect(popFailure({ jkt: 'x' }, 'bearer', undefined)).toMatch(/DPoP/);
    expect(popFailure(undefined, 'dpop', undefined)).toMatch(/DPoP/);
  });
});
