// The verified-JWT cache read by the whole Authorization header (JwtVerifier.lookupHeader, used on the memoised path):
// a header equal to the `Bearer <token>` header a token was verified in finds that verification; any other header
// (another spelling, a token that only shares the cache index, a DPoP proof beside it) goes the usual way.
import { describe, expect, it } from 'vitest';
import { createGuard, type GuardRequest } from '../../src/index.js';
import { compilePolicy } from '../../src/core/policy.js';
import { JwtVerifier } from '../../src/tokens/jwt.js';
import { isBearerHeaderOf } from '../../src/tokens/extract.js';
import { basePolicy, jwtPolicy, NOW, NOW_S, sameTail, signToken } from '../helpers/tokens.js';

/** A fresh copy of a string, as each request's header is (never the same string object as the one cached). */
const copy = (s: string): string => JSON.parse(JSON.stringify(s)) as string;

async function verifier(): Promise<JwtVerifier> {
  const p = compilePolicy({ jwt: await jwtPolicy(), rules: [{ path: '/**' }] });
  return new JwtVerifier(p.jwt as NonNullable<typeof p.jwt>);
}

describe('JwtVerifier.lookupHeader', () => {
  it('finds a token by an equal copy of the Bearer header it was verified in, and only by one', async () => {
    const v = await verifier();
    const token = await signToken({ scope: 'orders:read' });
    const header = `Bearer ${token}`;
    expect(await v.verify(token, NOW.getTime(), header)).toMatchObject({ info: { subject: 'alice' } });
    expect(v.lookupHeader(copy(header), NOW.getTime())).toMatchObject({ info: { subject: 'alice' } });
    // The scheme in another letter case reads as the same token, but is not this header: the caller reads the token.
    expect(v.lookupHeader(`bearer ${token}`, NOW.getTime())).toBeUndefined();
    expect(v.lookup(token, NOW.getTime())).toMatchObject({ info: { subject: 'alice' } });
    expect(v.lookupHeader(`Bearer ${sameTail(token)}`, NOW.getTime())).toBeUndefined();
  });

  it('keeps no header that is not exactly Bearer, one SP and the token', async () => {
    const v = await verifier();
    const kept = async (header: (token: string) => string): Promise<unknown> => {
      const token = await signToken({ scope: 'orders:read', jti: Math.random().toString(36) });
      await v.verify(token, NOW.getTime(), header(token));
      return v.lookupHeader(header(token), NOW.getTime());
    };
    expect(await kept((t) => `BEARER ${t}`)).toMatchObject({ info: { subject: 'alice' } });
    for (const header of [
      (t: string) => `Bearer  ${t}`,
      (t: string) => `Bearer\t${t}`,
      (t: string) => `DPoP ${t}`,
      (t: string) => `Bearer ${t}x`,
      (t: string) => `Bearer x${t}`,
      (t: string) => `Bearex ${t}`,
    ]) {
      expect(await kept(header)).toBeUndefined();
    }
  });

  it('re-checks the cached verification against the time, as lookup does', async () => {
    const v = await verifier();
    const token = await signToken({ scope: 'orders:read' }, { exp: NOW_S + 60 });
    await v.verify(token, NOW.getTime(), `Bearer ${token}`);
    expect(v.lookupHeader(`Bearer ${token}`, NOW.getTime() + 120_000)).toMatchObject({ reason: 'token.expired' });
  });

  it('isBearerHeaderOf holds only for Bearer (any case), one SP, then exactly the token', () => {
    expect(isBearerHeaderOf('Bearer abc', 'abc')).toBe(true);
    expect(isBearerHeaderOf('bEaReR abc', 'abc')).toBe(true);
    for (const header of ['Bearer  abc', 'Bearer abcd', 'Bearer xbc', 'DPoP abc', 'Bearer\u00a0abc', 'Bearerabc ']) expect(isBearerHeaderOf(header, 'abc')).toBe(false);
  });
});

describe('the guard, with a token cached by its header', () => {
  const req = (authorization: string, headers: Record<string, string> = {}): GuardRequest => ({
    method: 'GET',
    path: '/orders/1',
    headers: { authorization: copy(authorization), ...headers },
    remoteAddress: '203.0.113.9',
  });

  it('refuses a forged token that shares the cached token signature (and so its cache index)', async () => {
    const guard = createGuard(await basePolicy());
    const token = await signToken({ scope: 'orders:read' });
    for (let i = 0; i < 2; i++) expect((await guard.evaluate(req(`Bearer ${token}`))).reason).toBe('ok');
    const forged = await guard.evaluate(req(`Bearer ${sameTail(token)}`));
    expect([forged.status, forged.reason]).toEqual([401, 'token.invalid']);
    expect((await guard.evaluate(req(`Bearer ${token}`))).reason).toBe('ok');
  });

  it('refuses the cached header beside a DPoP proof, and two Authorization headers', async () => {
    const guard = createGuard(await basePolicy());
    const token = await signToken({ scope: 'orders:read' });
    for (let i = 0; i < 2; i++) expect((await guard.evaluate(req(`Bearer ${token}`))).reason).toBe('ok');
    expect((await guard.evaluate(req(`Bearer ${token}`, { dpop: 'a.b.c' }))).reason).toBe('request.malformed');
    const twice = await guard.evaluate({ ...req(''), headers: { authorization: [`Bearer ${token}`, `Bearer ${token}`] } });
    expect(twice.reason).toBe('request.malformed');
  });

  it('refuses the cached header once its token is revoked, and once it has expired', async () => {
    const guard = createGuard(await basePolicy());
    const token = await signToken({ scope: 'orders:read', jti: 'by-header' }, { exp: NOW_S + 60 });
    for (let i = 0; i < 2; i++) expect((await guard.evaluate(req(`Bearer ${token}`))).reason).toBe('ok');
    const late = await guard.evaluate({ ...req(`Bearer ${token}`), now: new Date(NOW.getTime() + 120_000) });
    expect(late.reason).toBe('token.expired');
    await guard.revoke('by-header', { now: NOW });
    const revoked = await guard.evaluate(req(`Bearer ${token}`));
    expect([revoked.status, revoked.reason]).toEqual([401, 'token.revoked']);
  });
});

describe('the memoised path by header, against what the full evaluation answers', () => {
  const req = (headers: Record<string, string | string[]>): GuardRequest => ({ method: 'GET', path: '/orders/1', headers: { ...headers }, remoteAddress: '203.0.113.9' });

  it('a token first sent as "DPoP <token>" without a proof, then as Bearer: "DPoP <token>" is still refused', async () => {
    const guard = createGuard(await basePolicy());
    const token = await signToken({ scope: 'orders:read' });
    const first = await guard.evaluate(req({ authorization: copy(`DPoP ${token}`) }));
    for (let i = 0; i < 3; i++) expect((await guard.evaluate(req({ authorization: copy(`Bearer ${token}`) }))).reason).toBe('ok');
    const again = await guard.evaluate(req({ authorization: copy(`DPoP ${token}`) }));
    expect([again.effect, again.reason]).toEqual([first.effect, first.reason]);
    expect(again.effect).toBe('deny');
  });

  it('every other spelling of a cached header answers as it would the first time', async () => {
    const guard = createGuard(await basePolicy());
    const token = await signToken({ scope: 'orders:read' });
    for (let i = 0; i < 3; i++) expect((await guard.evaluate(req({ authorization: copy(`Bearer ${token}`) }))).reason).toBe('ok');
    const cases: [Record<string, string | string[]>, string][] = [
      [{ authorization: `Bearer ${token}`, dpop: '' }, 'request.malformed'],
      [{ authorization: `Bearer  ${token}` }, 'request.malformed'],
      [{ authorization: `Bearer ${token} ` }, 'request.malformed'],
      [{ authorization: ` Bearer ${token}` }, 'request.malformed'],
      [{ authorization: `Bearer\t${token}` }, 'request.malformed'],
      [{ authorization: `Bearer ${token}, Bearer ${token}` }, 'request.malformed'],
      [{ authorization: [`Bearer ${token}`, `Bearer ${token}`] }, 'request.malformed'],
      [{ authorization: [`Bearer ${token}`] }, 'ok'],
      [{ authorization: `bEaReR ${token}` }, 'ok'],
      [{ authorization: `Bearer ${sameTail(token)}` }, 'token.invalid'],
      [{ authorization: `Bearer ${token}` }, 'ok'],
    ];
    const answers = [];
    for (const [headers] of cases) answers.push((await guard.evaluate(req(headers))).reason);
    expect(answers).toEqual(cases.map(([, reason]) => reason));
  });
});
