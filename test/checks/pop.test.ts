import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { certificateThumbprint, popFailure } from '../../src/checks/pop.js';

const der = Buffer.from('certificate bytes');
const thumb = createHash('sha256').update(der).digest('base64url');
const none = {};
const OFF = { enabled: false, required: false };
const ON = { enabled: true, required: false };
const fingerprint256 = createHash('sha256').update(der).digest('hex').toUpperCase().match(/../g)!.join(':');

describe('proof of possession', () => {
  it("turns Node's fingerprint256 into an RFC 8705 x5t#S256 thumbprint", () => {
    expect(certificateThumbprint(fingerprint256)).toBe(thumb);
    expect(certificateThumbprint('not-hex')).toBeUndefined();
  });

  it('passes an unbound bearer token without reading the client certificate', () => {
    let read = 0;
    const connection = {
      get peerCertificate() {
        read++;
        return { fingerprint256 };
      },
    };
    expect(popFailure(undefined, 'bearer', connection, OFF)).toBeUndefined();
    expect(popFailure({ jkt: 'x' }, 'dpop', connection, ON)).toBeUndefined();
    expect(read).toBe(0);
    expect(popFailure({ 'x5t#S256': thumb }, 'bearer', connection, OFF)).toBeUndefined();
    expect(read).toBe(1);
  });

  it('passes a certificate-bound token only with the matching certificate', () => {
    const cnf = { 'x5t#S256': thumb };
    expect(popFailure(cnf, 'bearer', { peerCertificate: { fingerprint256 } }, OFF)).toBeUndefined();
    expect(popFailure(cnf, 'bearer', none, OFF)).toMatch(/without a client certificate/);
    expect(popFailure(cnf, 'bearer', { peerCertificate: { fingerprint256: fingerprint256.replace(/^../, '00') } }, OFF)).toMatch(/does not match/);
  });

  it('refuses a DPoP-bound token sent as a bearer token, with or without DPoP enabled', () => {
    expect(popFailure({ jkt: 'x' }, 'bearer', none, OFF)).toMatch(/presented as a bearer token/);
    expect(popFailure({ jkt: 'x' }, 'bearer', none, ON)).toMatch(/presented as a bearer token/);
  });

  it('refuses the DPoP scheme unless DPoP is enabled and the token is bound to a key', () => {
    expect(popFailure({ jkt: 'x' }, 'dpop', none, OFF)).toMatch(/not enabled/);
    expect(popFailure(undefined, 'dpop', none, ON)).toMatch(/not bound to a key/);
    expect(popFailure({ jkt: 'x' }, 'dpop', none, ON)).toBeUndefined();
  });

  it('refuses unbound bearer tokens when DPoP is required', () => {
    expect(popFailure(undefined, 'bearer', none, { enabled: true, required: true })).toMatch(/required/);
  });
});
