// IP binding: allow/deny CIDR lists at policy, rule and token level; deny wins, unknown fails.
import { z } from 'zod';
import { checkCidr, CidrSet, type IpRule, type ParsedIp } from '../leaf/ip.js';
import { defineCheck } from './check.js';

export type { IpRule } from '../leaf/ip.js';

/** A compiled IpRule. */
export class IpConstraint {
  private readonly allow: CidrSet | undefined;
  private readonly deny: CidrSet | undefined;

  constructor(rule: IpRule) {
    this.allow = rule.allow ? new CidrSet(rule.allow) : undefined;
    this.deny = rule.deny ? new CidrSet(rule.deny) : undefined;
  }

  /** Checks a client address. An unknown address fails every constraint (fail closed). */
  check(ip: ParsedIp | null): 'ip.denied' | 'ip.unknown' | undefined {
    if (!ip) return 'ip.unknown';
    if (this.deny?.has(ip)) return 'ip.denied';
    if (this.allow && !this.allow.has(ip)) return 'ip.denied';
    return undefined;
  }
}

/** A CIDR or a single address. */
export const cidrSchema = z.string().superRefine((v, ctx) => {
  const m = checkCidr(v);
  if (m) ctx.addIssue({ code: 'custom', message: m });
});

/**
 * An IpRule. An empty allow list could be read as "nobody" or as "no restriction", and an empty `ip`
 * restricts nothing: both are refused rather than given either meaning. Policies, rules and key records
 * (`issueApiKey`, the stored-record reader) all use this one schema.
 */
export const ipSchema = z
  .strictObject({
    allow: z
      .array(cidrSchema)
      .min(1, "an empty allow list is ambiguous (nobody, or everybody?): list addresses, or to refuse every client write deny: ['0.0.0.0/0', '::/0']")
      .optional(),
    deny: z.array(cidrSchema).optional(),
  })
  // `allow: []` is reported by itself above.
  .refine((v) => v.allow !== undefined || (v.deny?.length ?? 0) > 0, 'an empty ip constraint restricts nothing: list addresses in allow or deny, or remove ip');

/** The policy's `ip`. */
export interface IpPolicySlice {
  /** Client addresses for every request. */
  ip?: IpRule;
}

/** A rule's `ip`. */
export interface IpRuleSlice {
  /** Client addresses for this rule (on top of the policy's). */
  ip?: IpRule;
}

/** Client addresses: policy, rule and key record (`ip.denied`, `ip.unknown`). */
export const ipCheck = defineCheck<IpPolicySlice, IpRuleSlice, IpRule, IpConstraint>({
  name: 'ip',
  phase: 'constraints',
  order: 10,
  policyKey: 'ip',
  ruleKey: 'ip',
  recordKey: 'ip',
  policySchema: ipSchema,
  compile: (rule) => new IpConstraint(rule),
  check: (ctx, c) => c.check(ctx.ip),
});
