// What the authorization server answers: reading it (size-capped), and turning a parsed answer into the token
// facts the checks use, refusing what is malformed. Apart from the Introspector, which only fetches and caches.
import { parseConfirmation } from '../leaf/confirmation.js';
import type { ReasonCode, TokenInfo } from '../leaf/types.js';
import type { IntrospectionConfig } from './introspection-policy.js';
import type { VerifiedJwt } from './jwt.js';
import { deepFreeze } from '../leaf/freeze.js';
import { illFormedClaim } from '../leaf/well-formed.js';

/** An active token as the server described it: the same facts a verified JWT gives the checks. */
export type IntrospectedToken = VerifiedJwt;

/** Why an introspection refuses the token (`token.*`) or could not be made (`idp.unavailable`, a 503). */
export interface IntrospectionFailure {
  reason: ReasonCode;
  detail: string;
}

/** An introspection's outcome: the active token, or why not. */
export type Answer = IntrospectedToken | IntrospectionFailure;

/** The reason used when the authorization server cannot answer (fail closed). */
export const INTROSPECTION_UNAVAILABLE: ReasonCode = 'idp.unavailable';

const MAX_CLAIM_TIME_S = 8.64e12;
const isClaimTime = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && Math.abs(v) <= MAX_CLAIM_TIME_S;

/** A failure that is the server's, not the token's: answered 503 and never cached. */
export const unavailable = (detail: string): IntrospectionFailure => ({ reason: INTROSPECTION_UNAVAILABLE, detail });

/** Reads a response body, refusing more than `max` bytes (a server's answer is not trusted to be small). */
export async function readCapped(res: Response, max: number): Promise<string | undefined> {
  const length = Number(res.headers.get('content-length'));
  if (Number.isFinite(length) && length > max) {
    await res.body?.cancel().catch(() => undefined);
    return undefined;
  }
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => undefined);
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

const TOKEN_TYPE_URN = 'urn:ietf:params:oauth:token-type:';

/**
 * What kind of non-access token a `token_type` (RFC 7662, or an RFC 8693 URN) or a `typ` (Keycloak: `Refresh`,
 * `Offline`, `ID`) names, if it names one: every spelling servers use (`refresh_token`, `refresh-token`, `Refresh`,
 * the URN) reads the same. Undefined for an access token's type or none.
 */
function notAnAccessToken(type: unknown): string | undefined {
  if (typeof type !== 'string') return undefined;
  let t = type.toLowerCase();
  if (t.startsWith(TOKEN_TYPE_URN)) t = t.slice(TOKEN_TYPE_URN.length);
  t = t.replace(/[\s_-]/g, '');
  if (t.includes('refresh') || t === 'offline') return 'a refresh token';
  if (t === 'id' || t === 'idtoken') return 'an ID token';
  return undefined;
}

/** The token an answer describes, or why it is refused: `hash` names a token without `jti`; `config` gives the accepted audience and issuer. */
export function toAnswer(body: unknown, hash: string, config: Pick<IntrospectionConfig, 'audience' | 'issuer'>): Answer {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return unavailable('introspection answer is not an object');
  const r = body as Record<string, unknown>;
  if (typeof r['active'] !== 'boolean') return unavailable('introspection answer has no boolean "active"');
  if (r['active'] !== true) return { reason: 'token.invalid', detail: 'token is not active' };
  const { exp, nbf, iat, sub, jti, scope, aud, iss } = r;
  const tokenType = r['token_type'];
  const authTime = r['auth_time'];
  for (const t of [exp, nbf, iat, authTime])
    if (t !== undefined && !isClaimTime(t)) return { reason: 'token.invalid', detail: 'a time in the introspection answer is out of range' };
  if (sub !== undefined && typeof sub !== 'string') return { reason: 'token.invalid', detail: 'sub is not a string' };
  if (jti !== undefined && (typeof jti !== 'string' || jti === '' || jti.length > 256)) return { reason: 'token.invalid', detail: 'jti is not a usable string' };
  // Store keys, as a JWT's are: a lone surrogate would reach PostgreSQL and Redis as U+FFFD, naming another token or user.
  const illFormed = illFormedClaim(jti, sub);
  if (illFormed !== undefined) return { reason: 'token.invalid', detail: illFormed };
  if (scope !== undefined && typeof scope !== 'string') return { reason: 'token.invalid', detail: 'scope is not a string' };
  // A refresh (or ID) token is active too; it is not an access token and must not pass for one.
  const notAccess = notAnAccessToken(tokenType) ?? notAnAccessToken(r['typ']);
  if (notAccess !== undefined) return { reason: 'token.invalid', detail: `token is ${notAccess}` };
  const audiences = config.audience;
  if (audiences) {
    const named = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : [];
    if (!named.some((a) => audiences.includes(a))) return { reason: 'token.invalid', detail: 'token is not for this audience' };
  }
  if (config.issuer !== undefined && iss !== config.issuer) return { reason: 'token.invalid', detail: 'token is from another issuer' };
  const scopes = typeof scope === 'string' ? scope.split(' ').filter((s) => s !== '') : [];
  const { active: _active, ...claims } = r;
  const info: TokenInfo = {
    id: typeof jti === 'string' ? jti : `sha256:${hash}`,
    kind: 'opaque',
    scopes: Object.freeze(scopes) as string[],
    claims: deepFreeze(claims),
  };
  if (typeof sub === 'string') info.subject = sub;
  if (exp !== undefined) info.expiresAt = new Date((exp as number) * 1000);
  if (iat !== undefined) info.issuedAt = new Date((iat as number) * 1000);
  const t: IntrospectedToken = { info: Object.freeze(info), scopeSet: new Set(scopes) };
  if (exp !== undefined) t.exp = exp as number;
  if (nbf !== undefined) t.nbf = nbf as number;
  if (iat !== undefined) t.iat = iat as number;
  if (authTime !== undefined) t.authTime = authTime as number;
  const amr = r['amr'];
  if (Array.isArray(amr) && amr.every((a) => typeof a === 'string')) t.amr = amr;
  if (typeof r['acr'] === 'string') t.acr = r['acr'];
  const cnf = parseConfirmation(r['cnf']);
  if (cnf !== undefined) t.cnf = cnf;
  return t;
}
