// Type-level tests for `Jwk`, the key type the public declarations use instead of jose's (ESM-only) `JWK`: keys that
// users hold as jose or node:crypto objects keep fitting every place a policy takes a JWK.
import type { JsonWebKey as NodeJsonWebKey } from 'node:crypto';
import type { JWK as JoseJwk } from 'jose';
import { describe, expectTypeOf, it } from 'vitest';
import type { JwtPolicy, Jwk, TokenGuardPolicy } from '../../src/index.js';
import type { SetReceiverOptions } from '../../src/receivers/set.js';

type JwtKey = NonNullable<JwtPolicy['keys']>[number];
type Introspection = NonNullable<TokenGuardPolicy['introspection']>;
type IntrospectionKey = NonNullable<Introspection['privateKeyJwt']>['key'];
type AnswerKey = NonNullable<NonNullable<Introspection['jwtResponse']>['keys']>[number];
type SetKey = NonNullable<SetReceiverOptions['keys']>[number];

describe('Jwk', () => {
  it("takes jose's JWK (exportJWK) and gives one back", () => {
    expectTypeOf<JoseJwk>().toExtend<Jwk>();
    expectTypeOf<Jwk>().toExtend<JoseJwk>();
  });

  it("takes node:crypto's JsonWebKey (keyObject.export({ format: 'jwk' }))", () => {
    expectTypeOf<NodeJsonWebKey>().toExtend<Jwk>();
  });

  it('is what jwt.keys, the introspection keys and the SET receiver keys take', () => {
    expectTypeOf<JoseJwk>().toExtend<JwtKey>();
    expectTypeOf<Jwk>().toEqualTypeOf<Exclude<JwtKey, string>>();
    expectTypeOf<Jwk>().toEqualTypeOf<Exclude<IntrospectionKey, string>>();
    expectTypeOf<Jwk>().toEqualTypeOf<AnswerKey>();
    expectTypeOf<JoseJwk>().toExtend<SetKey>();
  });
});
