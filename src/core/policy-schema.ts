// The policy's zod schema (strict: unknown keys are errors) and its validation. The keys each check owns come
// from the check registry; what is left here is the engine's own: jwt, apiKeys, store, rules, modes.
import { createPublicKey, X509Certificate, type JsonWebKey } from 'node:crypto';
import { z } from 'zod';
import type { JWK } from 'jose';
import { PolicyError, type PolicyIssue } from '../leaf/errors.js';
import { durationSchema, positiveDurationSchema, timerDurationSchema } from '../leaf/duration.js';
import { checkGlob } from '../leaf/path.js';
import { isAsyncFunction } from '../leaf/callbacks.js';
import { checkMethod, METHOD_TOKEN_RE } from '../leaf/methods.js';
import type { TokenStore } from '../leaf/store.js';
import { checkProxyCidr, checkProxyHops } from '../leaf/ip.js';
import { checksumSecretProblem, isValidPrefix, PREFIX_RULE } from '../tokens/api-key.js';
import { JWT_ALGORITHMS, MIN_SECRET_BYTES } from '../tokens/jwt.js';
import { isLoopbackOrHttps } from '../leaf/urls.js';
import { clockToleranceSchema } from '../tokens/clock-tolerance.js';
import { introspectionSchema } from '../tokens/introspection.js';
import { formatPath, policyIssues } from './policy-issues.js';
import { crossIssues, policyShape, ruleShape, RULE_CONSTRAINT_KEYS } from './registry.js';
import type { TokenGuardPolicy } from './policy-types.js';
import { ruleName } from './rule-match.js';

/** `RS256 needs`, `RS256 and ES256 need`: the algorithms a key source is missing for. */
const needs = (algs: readonly string[]): string => (algs.length === 1 ? `${algs[0]} needs` : `${algs.slice(0, -1).join(', ')} and ${algs[algs.length - 1]} need`);

const modeSchema = z.enum(['enforce', 'report-only']);
// Registered or declared: checked in validatePolicy, which sees the policy's extensionMethods.
const methodSchema = z.string();

const ruleSchema = z
  .strictObject({
    path: z.string().superRefine((v, ctx) => {
      const m = checkGlob(v);
      if (m) ctx.addIssue({ code: 'custom', message: m });
    }),
    methods: z.array(methodSchema).min(1, 'an empty list matches no request, so the rule would never apply: list methods, or remove methods to cover all').optional(),
    public: z.boolean().optional(),
    ...ruleShape(),
    mode: modeSchema.optional(),
    name: z
      .string()
      .regex(/^[^\p{Cc}]{1,128}$/u, 'expected 1 to 128 characters without control characters')
      .optional(),
  })
  .superRefine((r, ctx) => {
    if (r.public) {
      for (const k of RULE_CONSTRAINT_KEYS) {
        if ((r as Record<string, unknown>)[k] !== undefined) ctx.addIssue({ code: 'custom', path: [k], message: 'a public rule cannot also require a token constraint' });
      }
    }
  });

// A proxy range must not take in public addresses wholesale; `hops` is for proxies whose addresses are not known. It is
// checked in a refinement, not by z.number().int(): zod reports those as a mismatch of the whole union, not of `hops`.
const issueOf =
  <T>(check: (v: T) => string | undefined) =>
  (v: T, ctx: z.RefinementCtx) => {
    const message = check(v);
    if (message) ctx.addIssue({ code: 'custom', message });
  };
const trustProxySchema = z.union(
  [z.literal(false), z.array(z.string().superRefine(issueOf(checkProxyCidr))), z.strictObject({ hops: z.unknown().superRefine(issueOf(checkProxyHops)) })],
  { error: 'expected false, a list of proxy CIDRs, or { hops: n } (the number of proxies in front of the app)' },
);

const jwkSchema = z.custom<JWK>((v) => !!v && typeof v === 'object' && typeof (v as { kty?: unknown }).kty === 'string', 'expected a JWK object');

const jwtSchema = z
  .strictObject({
    issuer: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    algorithms: z
      .array(z.string())
      .min(1, 'expected at least one algorithm')
      .superRefine((algs, ctx) => {
        algs.forEach((a, i) => {
          if (!(JWT_ALGORITHMS as readonly string[]).includes(a)) {
            ctx.addIssue({
              code: 'custom',
              path: [i],
              message: a.toLowerCase() === 'none' ? '"none" is never accepted' : `unsupported algorithm "${a}" (expected one of ${JWT_ALGORITHMS.join(', ')})`,
            });
          }
        });
      }),
    jwksUri: z.string().url().optional(),
    discovery: z.boolean().optional(),
    // A zero cooldown would refetch the key set for every token naming an unknown kid: anyone could make
    // the guard hammer the issuer. timeout reaches AbortSignal.timeout, a timer.
    jwks: z
      .strictObject({
        cooldown: positiveDurationSchema.optional(),
        cacheMaxAge: durationSchema.optional(),
        maxStale: durationSchema.optional(),
        timeout: timerDurationSchema.optional(),
        maxBytes: z.number().int().min(1024).max(16_777_216).optional(),
        maxKeys: z.number().int().min(1).max(10_000).optional(),
      })
      .optional(),
    keys: z
      .array(z.union([z.string(), jwkSchema]))
      .min(1)
      .optional(),
    secret: z
      .union([z.string(), z.instanceof(Uint8Array)])
      .superRefine((v, ctx) => {
        const problem = checkSecret(v);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      })
      .optional(),
    clockTolerance: clockToleranceSchema.optional(),
    maxTokenAge: durationSchema.optional(),
    requireExp: z.boolean().optional(),
    typ: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)], { error: 'expected a typ value or a non-empty array of them' }).optional(),
    cacheSize: z.number().int().positive().optional(),
    name: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/, 'expected 1 to 64 letters, digits, ".", "_" or "-"')
      .optional(),
  })
  .superRefine((j, ctx) => {
    // Only algorithms the list accepts: an unsupported one ("none") has its own message already.
    const known = j.algorithms.filter((a) => (JWT_ALGORITHMS as readonly string[]).includes(a));
    const hmac = known.filter((a) => a.startsWith('HS'));
    const asym = known.filter((a) => !a.startsWith('HS'));
    const sources = [j.jwksUri && 'jwksUri', j.keys && 'keys', j.discovery && 'discovery'].filter(Boolean);
    if (sources.length > 1) ctx.addIssue({ code: 'custom', path: [sources[1] as string], message: `give one of jwksUri, keys or discovery, not ${sources.join(' and ')}` });
    if (asym.length && !j.jwksUri && !j.keys && !j.discovery)
      ctx.addIssue({ code: 'custom', path: ['algorithms'], message: `${needs(asym)} a public key: give jwt.jwksUri, jwt.keys or jwt.discovery` });
    if (j.discovery) {
      if (typeof j.issuer !== 'string')
        ctx.addIssue({ code: 'custom', path: ['issuer'], message: "discovery reads one issuer's metadata: give one issuer (or one configuration per issuer)" });
      else if (!isLoopbackOrHttps(j.issuer) || /[?#]/.test(j.issuer)) {
        ctx.addIssue({
          code: 'custom',
          path: ['issuer'],
          message:
            'discovery needs an https issuer URL without query or fragment (plain http only for loopback addresses): metadata fetched over http can be swapped in transit',
        });
      }
    }
    if (hmac.length && j.secret === undefined) ctx.addIssue({ code: 'custom', path: ['algorithms'], message: `${needs(hmac)} jwt.secret` });
    if (j.secret !== undefined) {
      if (!hmac.length) ctx.addIssue({ code: 'custom', path: ['secret'], message: 'a secret is only used with HS256/HS384/HS512 in algorithms' });
      const bytes = typeof j.secret === 'string' ? Buffer.byteLength(j.secret) : j.secret.length;
      for (const a of hmac) {
        const min = MIN_SECRET_BYTES[a] as number;
        if (bytes < min) ctx.addIssue({ code: 'custom', path: ['secret'], message: `${a} needs a secret of at least ${min} bytes (got ${bytes})` });
      }
    }
    j.keys?.forEach((k, i) => {
      const problem = checkPublicKey(k);
      if (problem) ctx.addIssue({ code: 'custom', path: ['keys', i], message: problem });
    });
    if (j.jwksUri && !isLoopbackOrHttps(j.jwksUri)) {
      ctx.addIssue({
        code: 'custom',
        path: ['jwksUri'],
        message: 'must be https (plain http is allowed only for loopback addresses): signing keys fetched over http can be swapped in transit',
      });
    }
  });

/**
 * Why a shared secret is key material rather than a secret, or undefined. An RSA or EC public key (PEM,
 * JWK, JWKS or DER) used as the HMAC secret lets anyone holding the public key sign HS256 tokens: the
 * RS256→HS256 key confusion, set up by configuration.
 */
function checkSecret(secret: string | Uint8Array): string | undefined {
  const bytes = typeof secret === 'string' ? Buffer.from(secret) : Buffer.from(secret.buffer, secret.byteOffset, secret.byteLength);
  const text = typeof secret === 'string' ? secret : bytes.toString('utf8');
  const confusion = 'an HMAC secret must be random bytes known only to the issuer and this guard, never key material';
  if (text.includes('-----BEGIN')) return `is PEM text (a key or certificate): ${confusion}`;
  const trimmed = text.trim();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    let json: unknown;
    try {
      json = JSON.parse(trimmed);
    } catch {
      json = undefined;
    }
    const isJwk = (v: unknown) => !!v && typeof v === 'object' && 'kty' in v;
    if (isJwk(json) || (Array.isArray(json) && json.some(isJwk)) || (!!json && typeof json === 'object' && 'keys' in json)) {
      return `is JWK or JWK Set text: ${confusion}`;
    }
  }
  // A bare DER public key or certificate, as bytes or base64 ("MIIBIjANBg…").
  const candidates = [bytes];
  if (/^[A-Za-z0-9+/=_\s-]+$/.test(trimmed)) candidates.push(Buffer.from(trimmed, 'base64'));
  for (const der of candidates) if (der.length > 0 && der[0] === 0x30 && isDerKey(der)) return `is a DER public key or certificate: ${confusion}`;
  return undefined;
}

function isDerKey(der: Buffer): boolean {
  for (const type of ['spki', 'pkcs1'] as const) {
    try {
      createPublicKey({ key: der, format: 'der', type });
      return true;
    } catch {
      // not this encoding
    }
  }
  try {
    new X509Certificate(der);
    return true;
  } catch {
    return false;
  }
}

/** Why a configured public key is unusable, or undefined. Parsed here so a bad key fails at start-up, not as 401s. */
function checkPublicKey(k: JWK | string): string | undefined {
  if (typeof k === 'string') {
    if (!k.includes('-----BEGIN')) return 'expected a PEM public key or certificate';
    if (/PRIVATE KEY/.test(k)) return 'a private key was given: give the public key';
  } else if ('d' in k || 'k' in k) {
    return 'only public JWKs belong in keys (symmetric secrets go in secret)';
  }
  try {
    const key = typeof k === 'string' ? createPublicKey(k) : createPublicKey({ key: k as JsonWebKey, format: 'jwk' });
    if (key.type !== 'public') return 'expected a public key';
    const bits = key.asymmetricKeyDetails?.modulusLength;
    // RFC 7518 §3.3: RSA signing keys are at least 2048 bits.
    if (bits !== undefined && bits < 2048) return `RSA key of ${bits} bits: at least 2048 are required`;
  } catch (err) {
    return `not a usable public key (${err instanceof Error ? err.message : String(err)})`;
  }
  return undefined;
}

const jwtListSchema = z
  .array(jwtSchema)
  .min(1, 'expected at least one issuer configuration')
  .max(100)
  .superRefine((list, ctx) => {
    // The token's iss picks one configuration: an issuer in two would make the choice ambiguous.
    const issuers = new Map<string, number>();
    const names = new Map<string, number>();
    list.forEach((j, i) => {
      for (const iss of typeof j.issuer === 'string' ? [j.issuer] : j.issuer) {
        const at = issuers.get(iss);
        if (at !== undefined && at !== i) ctx.addIssue({ code: 'custom', path: [i, 'issuer'], message: `issuer ${JSON.stringify(iss)} is already configured in jwt[${at}]` });
        else issuers.set(iss, i);
      }
      if (j.name !== undefined) {
        const at = names.get(j.name);
        if (at !== undefined)
          ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `name ${JSON.stringify(j.name)} is already taken by jwt[${at}]: token ids would collide` });
        else names.set(j.name, i);
      }
    });
  });

const storeSchema = z.custom<TokenStore>((s) => {
  if (!s || typeof s !== 'object') return false;
  const o = s as Record<string, unknown>;
  return ['getApiKey', 'revoke', 'revokeSubject', 'getRevocation', 'consume', 'useApiKey', 'recordUsage', 'getUsage', 'claimOnce'].every((m) => typeof o[m] === 'function');
}, 'expected a TokenStore (getApiKey, revoke, revokeSubject, getRevocation, consume, useApiKey, recordUsage, getUsage, claimOnce)');

const fn = (what: string) => z.custom<(...args: never[]) => unknown>((v) => typeof v === 'function', `expected a function (${what})`);

const apiKeysSchema = z.strictObject({
  prefix: z.union([z.string(), z.array(z.string())], { error: 'expected a prefix or a list of prefixes' }).superRefine((prefix, ctx) => {
    const list = typeof prefix === 'string' ? [prefix] : prefix;
    if (list.length === 0) ctx.addIssue({ code: 'custom', message: 'expected at least one prefix' });
    list.forEach((x, i) => {
      const path = typeof prefix === 'string' ? [] : [i];
      if (!isValidPrefix(x)) ctx.addIssue({ code: 'custom', path, message: `${PREFIX_RULE} (got ${JSON.stringify(x)})` });
      else if (list.indexOf(x) !== i) ctx.addIssue({ code: 'custom', path, message: `duplicate prefix ${JSON.stringify(x)}` });
    });
  }),
  checksumSecret: z
    .union([z.string(), z.instanceof(Uint8Array)], { error: 'expected a string or a Uint8Array of at least 32 bytes' })
    .superRefine((secret, ctx) => {
      const problem = checksumSecretProblem(secret);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .optional(),
  maxAge: positiveDurationSchema.optional(),
  maxAgeWarning: durationSchema.optional(),
  idleTimeout: positiveDurationSchema.optional(),
});

// Two schemas, one per form of `jwt`, picked by the input's shape: a union of the two would answer a mistake in
// either with "expected one of 2 accepted forms" instead of the path that is wrong.
const policySchemaWith = (jwt: typeof jwtSchema | typeof jwtListSchema) =>
  z
    .strictObject({
      jwt: jwt.optional(),
      apiKeys: apiKeysSchema.optional(),
      introspection: introspectionSchema.optional(),
      store: storeSchema.optional(),
      storeTimeout: timerDurationSchema.optional(),
      trustProxy: trustProxySchema.optional(),
      ...policyShape(),
      rules: z.array(ruleSchema).optional(),
      extensionMethods: z
        .array(
          z
            .string()
            .regex(METHOD_TOKEN_RE, 'expected a method name (an RFC 9110 token)')
            .refine((m) => m === m.toUpperCase(), 'expected an upper-case method name'),
        )
        .min(1)
        .optional(),
      unmatched: z.enum(['deny', 'authenticate']).optional(),
      mode: modeSchema.optional(),
      caseSensitive: z.boolean().optional(),
      maxTokenBytes: z.number().int().min(64).max(1_048_576).optional(),
      resourceMetadata: z
        .string()
        .refine((v) => isLoopbackOrHttps(v), 'expected an https URL (plain http only for loopback addresses)')
        .optional(),
      realm: z
        .string()
        .regex(/^[\x20\x21\x23-\x5B\x5D-\x7E]*$/, 'expected printable characters without quotes or backslashes')
        .optional(),
      trackUsage: z.boolean().optional(),
      onDecision: fn('event) => void').optional(),
      auditTrace: z.boolean().optional(),
      telemetry: z
        .custom<object>(
          (v) => !!v && typeof v === 'object' && typeof (v as { decision?: unknown }).decision === 'function',
          'expected a telemetry sink such as otel() from token-guard/otel',
        )
        .optional(),
      onLifecycle: fn('event) => void').optional(),
      clock: fn('() => Date')
        .refine((v) => !isAsyncFunction(v), 'an async clock answers with a promise, never a Date: make it synchronous')
        .optional(),
      preflight: z.enum(['guard', 'pass']).optional(),
    })
    .superRefine((p, ctx) => {
      if (!p.jwt && !p.apiKeys && !p.introspection)
        ctx.addIssue({ code: 'custom', path: [], message: 'accept at least one token kind: give jwt, apiKeys, introspection or several' });
      // One secret, one purpose: an HMAC key shared with JWT verification would tie the two together.
      const bytes = (v: unknown) => (typeof v === 'string' ? Buffer.from(v, 'utf8') : v instanceof Uint8Array ? Buffer.from(v) : undefined);
      const keySecret = bytes(p.apiKeys?.checksumSecret);
      const jwts = p.jwt === undefined ? [] : Array.isArray(p.jwt) ? p.jwt : [p.jwt];
      for (const j of jwts) {
        const jwtSecret = bytes(j.secret);
        if (keySecret && jwtSecret && keySecret.equals(jwtSecret)) {
          ctx.addIssue({ code: 'custom', path: ['apiKeys', 'checksumSecret'], message: 'must not be jwt.secret: give API keys their own secret' });
        }
      }
      for (const [path, message] of crossIssues(p as Record<string, unknown>)) ctx.addIssue({ code: 'custom', path: [...path], message });
      // Names identify rules in decisions, audit events and rate-limit counters: two rules never share one.
      const named = new Map<string, number>();
      p.rules?.forEach((r, i) => {
        const name = ruleName(r);
        const j = named.get(name);
        if (j === undefined) named.set(name, i);
        else if (r.name === undefined && p.rules?.[j]?.name === undefined)
          ctx.addIssue({
            code: 'custom',
            path: ['rules', i, 'path'],
            message: `same methods and path as rules[${j}] ("${name}"), so it never matches: remove it or merge the two`,
          });
        else ctx.addIssue({ code: 'custom', path: ['rules', i, 'name'], message: `rule name "${name}" is already taken by rules[${j}]: names must be unique` });
      });
      if (p.trackUsage === false && p.apiKeys?.idleTimeout !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['apiKeys', 'idleTimeout'], message: 'reads the last use that trackUsage: false turns off' });
      }
      if (p.apiKeys?.maxAgeWarning !== undefined && p.apiKeys.maxAge === undefined) {
        ctx.addIssue({ code: 'custom', path: ['apiKeys', 'maxAgeWarning'], message: 'warns before maxAge: give apiKeys.maxAge too' });
      }
    });
const policySchema = policySchemaWith(jwtSchema);
const multiIssuerPolicySchema = policySchemaWith(jwtListSchema);

/** Rule methods that are neither registered nor declared in `extensionMethods` (see checkMethod). */
function methodIssues(policy: Record<string, unknown>): PolicyIssue[] {
  const declared = Array.isArray(policy['extensionMethods']) ? policy['extensionMethods'].filter((m): m is string => typeof m === 'string') : [];
  const extensions = new Set(declared);
  const issues: PolicyIssue[] = [];
  const rules = policy['rules'];
  if (!Array.isArray(rules)) return issues;
  rules.forEach((rule: unknown, i) => {
    const methods = rule && typeof rule === 'object' ? (rule as { methods?: unknown }).methods : undefined;
    if (!Array.isArray(methods)) return;
    methods.forEach((m: unknown, j) => {
      const problem = typeof m === 'string' ? checkMethod(m, extensions) : undefined;
      if (problem) issues.push({ path: formatPath(['rules', i, 'methods', j]), message: problem });
    });
  });
  return issues;
}

/** Validates a policy; throws PolicyError listing every problem with its path and, where there is one, its fix. */
export function validatePolicy(policy: unknown): TokenGuardPolicy {
  if (!policy || typeof policy !== 'object') throw new PolicyError([{ path: '', message: 'expected a policy object' }]);
  const schema = Array.isArray((policy as { jwt?: unknown }).jwt) ? multiIssuerPolicySchema : policySchema;
  const result = schema.safeParse(policy);
  // Run apart from zod: an object-level refinement would be skipped whenever another key has a problem.
  const issues = methodIssues(policy as Record<string, unknown>);
  if (result.success && !issues.length) return policy as TokenGuardPolicy;
  throw new PolicyError([...(result.success ? [] : policyIssues(schema, policy, result.error.issues)), ...issues]);
}
