// Demo credentials, made fresh at start-up: an "identity provider" key pair and a token minter.
import { SignJWT, exportJWK, exportSPKI, generateKeyPair, type JWTPayload } from 'jose';
import { AUDIENCE, ISSUER } from './app.js';

/** A local stand-in for an identity provider: signs access tokens with its private key. */
export async function createIdentityProvider() {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const publicJwk = { ...(await exportJWK(publicKey)), kid: 'demo-1', alg: 'RS256', use: 'sig' };
  const publicPem = await exportSPKI(publicKey);
  /** Signs an access token issued at `now`, for this API, lasting 15 minutes; `claims` override any of that. */
  const mint = (claims: JWTPayload, now: Date) => {
    const iat = Math.floor(now.getTime() / 1000);
    return new SignJWT({ iss: ISSUER, aud: AUDIENCE, iat, exp: iat + 900, ...claims }).setProtectedHeader({ alg: 'RS256', kid: 'demo-1', typ: 'at+jwt' }).sign(privateKey);
  };
  return { publicJwk, publicPem, mint };
}
